"""Benchmarks with budgets (``make bench``). They target 127.0.0.1 only."""
