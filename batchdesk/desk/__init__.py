"""The desk: the process that runs the broker, the worker pool and the scheduler for a data dir."""
