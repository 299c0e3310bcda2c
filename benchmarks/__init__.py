"""Benchmarks for stoppable: `make bench` runs them all (`python -m benchmarks`)."""
