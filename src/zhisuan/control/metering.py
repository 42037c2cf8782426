"""Metering in the live system: when a run ends, its usage intervals (metering.meter over the busy
samples taken while it ran) are stored in the same transaction as the state change that ends it. A run
still going is metered up to the moment a report asks (`open_intervals`), cut at hour boundaries like
any run, so reports agree with what holds devices now."""

from __future__ import annotations

import dataclasses
from typing import Any

from zhisuan.engines import Usage
from zhisuan.metering.pricebook import PriceBook
from zhisuan.metering.usage import BusySample, UsageInterval, meter
from zhisuan.model import JobState, Network, request_from_spec
from zhisuan.store import JobRecord, UsageStore

FIELDS = [f.name for f in dataclasses.fields(UsageInterval)]


class Meter:
    def __init__(self, network: Network, usage: UsageStore) -> None:
        self.book = PriceBook.from_network(network)
        self.usage = usage

    def run_rows(self, rec: JobRecord, end: float, engine: Usage | None = None) -> list[dict[str, Any]]:
        """Usage rows of the run `rec` is in (it started when the job last became running). Without samples
        of its own, a busy figure the engine measured (Slurm's gpuutil) holds for the whole run."""
        if rec.state is not JobState.RUNNING or rec.center is None or rec.pool is None:
            return []
        start = rec.updated_at
        samples = [BusySample(**s) for s in self.usage.samples(rec.id, since=start)]
        entry = self.book.of(rec.center, rec.pool)
        held = entry.held(request_from_spec(rec.spec))  # devices, and CPUs or memory beyond their share
        if not samples and engine is not None and held.devices:
            samples = engine_samples(engine, start, held.devices)
        return [{**dataclasses.asdict(u), "attempt": rec.attempts}
                for u in meter(rec.id, rec.tenant, entry, self.book.version, held.devices, start, max(end, start),
                               samples, held.cpus, held.memory_gib)]

    def intervals(self, **filters: Any) -> list[UsageInterval]:
        return [UsageInterval(**{k: row[k] for k in FIELDS}) for row in self.usage.intervals(**filters)]

    def open_intervals(self, running: list[JobRecord], now: float, since: float | None = None,
                       until: float | None = None, center: str | None = None) -> list[UsageInterval]:
        """The intervals of runs not ended yet, from their start to `now`, within [since, until)."""
        out = []
        for rec in running:
            if center is not None and rec.center != center:
                continue
            for row in self.run_rows(rec, now):
                if (since is None or row["end"] > since) and (until is None or row["start"] < until):
                    out.append(UsageInterval(**{k: row[k] for k in FIELDS}))
        return out


def engine_samples(engine: Usage, start: float, devices: float) -> list[BusySample]:
    """What the engine measured over the whole run, as one sample holding from its start: its busy share
    (Slurm's gpuutil), and its consumed energy as a draw per device (Slurm's ConsumedEnergy: the nodes'
    sensors, so CPUs and the rest of the node are in it — an upper bound for the devices)."""
    busy = None
    if engine.busy_device_seconds is not None and engine.allocated_device_seconds > 0:
        busy = engine.busy_device_seconds / engine.allocated_device_seconds
    watts = None
    if engine.energy_joules is not None and engine.elapsed_seconds > 0 and devices > 0:
        watts = engine.energy_joules / engine.elapsed_seconds / devices
    if busy is None and watts is None:
        return []
    source = engine.source if busy is not None else "slurm ConsumedEnergy"
    return [BusySample(start, busy, source, watts)]
