"""Benchmarks: speed and memory against baselines (run by hand; never part of CI pass/fail)."""
