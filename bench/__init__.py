"""Benchmarks: side-by-side HTTP load (wrk) and in-process predict throughput. Not run in CI."""
