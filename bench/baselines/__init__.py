"""Baseline servers the benchmark measures ours against."""
