"""The worker as a process: the Celery app and tasks, broker fixes, heartbeats, the reaper, metrics."""
