"""Benchmarks: run as modules (``python -m bench.ingest``) so that no script shadows a package of the project."""
