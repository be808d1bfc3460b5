"""Benchmarks that print side-by-side figures; run from the repository root: python -m bench.NAME."""

# The worker package's OpenMP wait policy (see worker/__init__.py) for every bench process too,
# before any bench imports torch: a bare render and the worker's must run under the same policy.
import worker  # noqa: E402, F401
