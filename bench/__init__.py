"""Benchmarks: print figures (median, min, max over runs) with a baseline from the same run."""
