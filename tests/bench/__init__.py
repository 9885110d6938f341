"""Benchmarks of the conntrack parsers on a realistic synthetic table (``scripts/bench``)."""
