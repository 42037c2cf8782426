"""Benchmarks (`zhisuan bench ...`): synthetic workloads and measurement, reported as medians."""

SIM_POLICIES = ["fifo", "easy", "sjf", "qssf", "las", "gavel", "zhisuan"]  # what `bench sim` replays
