"""Measured busy, watts and memory of running jobs, stored as samples: NVML on NVML-discovered pools, each
center's Prometheus where the network file names one (one read per center). The server samples on a
thread of its own (`ControlLoop.start_sampling`), so a slow Prometheus or driver holds no control step
up; without that thread the loop samples within its step (tests, embedded use)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.engines import nvml
from zhisuan.engines.prometheus import MetricsError, PrometheusMetrics, job_reading
from zhisuan.model import Network
from zhisuan.store import UsageStore

log = logging.getLogger("zhisuan.control")


@dataclass(frozen=True)
class Sampled:
    """A running job as the sampler needs it (copied out of the loop's runs under its lock)."""

    job_id: str
    center: str
    pool: str
    nodes: tuple[int, ...]
    devices: tuple[tuple[str, ...], ...]


class DeviceSampler:
    def __init__(self, network: Network, usage: UsageStore) -> None:
        self.network, self.usage = network, usage
        self.pool_of = {(c.name, p.name): p for c in network.centers for p in c.pools}
        self._metrics: dict[str, PrometheusMetrics] = {}  # a center's Prometheus reader, made when first needed

    def sample(self, jobs: list[Sampled], now: float) -> None:
        self._prometheus(jobs, now)
        for job in jobs:
            pool = self.pool_of.get((job.center, job.pool))
            if pool is None or pool.discover != "nvml" or not job.devices:
                continue
            try:
                s = nvml.sample([int(d) for ids in job.devices for d in ids])
            except Exception as e:  # NVML's errors are classes of their own; a sampler must not stop
                log.warning("NVML sample of %s failed: %s", job.job_id, e)
                continue
            self.usage.add_sample(job.job_id, now, s.busy_fraction, "nvml", s.watts, s.memory_gib)

    def _prometheus(self, jobs: list[Sampled], now: float) -> None:
        for center in self.network.centers:
            mine = [j for j in jobs if j.center == center.name and j.devices]
            if center.metrics is None or not mine:
                continue
            reader = self._metrics.get(center.name)
            if reader is None:
                reader = self._metrics[center.name] = PrometheusMetrics(
                    center.metrics.prometheus, center.metrics.exporter, timeout=2.0)
            try:
                readings = reader.readings()
            except MetricsError as e:
                log.warning("metrics of %s unknown: %s", center.name, e)
                continue
            source = f"prometheus {center.metrics.exporter}"
            for job in mine:
                pool = self.pool_of.get((job.center, job.pool))
                names = pool.node_names if pool is not None else []
                pairs = [(names[n] if n < len(names) else str(n), d)
                         for n, ids in zip(job.nodes, job.devices, strict=False) for d in ids]
                got = job_reading(readings, pairs)
                if got is not None:
                    self.usage.add_sample(job.job_id, now, got.busy, source, got.watts, got.memory_gib)


def sample_in_thread(sample: Callable[[], object], every: float, stop: threading.Event) -> threading.Thread:
    """Run `sample` every `every` seconds on a thread of its own until `stop`; a bad round is logged."""

    def run() -> None:
        while not stop.is_set():
            try:
                sample()
            except Exception:  # a bad round must not end the sampler
                log.exception("device sampling failed")
            stop.wait(every)

    thread = threading.Thread(target=run, name="zhisuan-sampler", daemon=True)
    thread.start()
    return thread
