"""Benchmarks (`zhisuan bench ...`): synthetic workloads and measurement, reported as medians."""
