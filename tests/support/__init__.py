"""Test infrastructure shared by the suite and the benchmarks: a private redis-server, a whole
stack on one machine (web, Celery workers), a webhook receiver. Benchmarks import it as
``tests.support`` when run from the repository root (``python -m bench.NAME``)."""
