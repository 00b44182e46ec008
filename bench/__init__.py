"""Benchmarks of batchdesk: ``python -m bench`` runs the throughput, submit, broker and memory benchmarks.

See docs/bench.md for what each measures and the last results.
"""
