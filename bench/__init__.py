"""Benchmarks (run by hand or with `make bench`; not part of the test suite)."""
