"""Jobs from the outside: submitting folders, controlling, following and reporting on jobs."""
