"""Benchmarks (`make bench-…`): figures for the README, not pass/fail tests."""
