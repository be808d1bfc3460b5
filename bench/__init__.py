"""Benchmarks that print side-by-side figures; run from the repository root: python -m bench.NAME."""
