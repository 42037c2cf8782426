"""Measured busy, power and memory per device for every vendor, read from the Prometheus server a center
already runs over its exporters (NVIDIA DCGM, Huawei Ascend npu-exporter, AMD device metrics exporter, HAMi's
vGPU monitor). One table says which metric, unit and labels each exporter uses; one instant query per
quantity reads a whole center, so sampling costs three HTTP requests a round, however many jobs run.

The answer is untrusted input: it is bounded in size and time, and a value that is not a finite number is
dropped, not stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

MAX_BYTES = 8 * 2**20  # an answer larger than this is refused (a center with ~50k devices fits)


@dataclass(frozen=True)
class Exporter:
    """Where one exporter puts each quantity: a PromQL selection (`a or b` where versions renamed a metric),
    the multiplier to our unit, and the labels naming the node and the device, first present wins. `power` is
    None where the exporter does not report it."""

    name: str
    busy: str
    busy_scale: float  # × value = busy fraction 0..1
    power: str | None  # watts
    memory: str | None
    memory_scale: float  # × value = bytes
    node_labels: tuple[str, ...]
    device_labels: tuple[str, ...]


MIB = 2**20  # the Ascend and AMD exporters say "MB"; whether 10^6 or 2^20 is not documented: taken as MiB
EXPORTERS: dict[str, Exporter] = {
    # NVIDIA/dcgm-exporter default-counters.csv; the host label is Hostname (renamed hostname on main)
    "dcgm": Exporter("dcgm", "DCGM_FI_DEV_GPU_UTIL", 0.01, "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_FB_USED", MIB,
                     ("Hostname", "hostname"), ("gpu",)),
    # Ascend mind-cluster npu-exporter: no node label of its own; relabel the target so `node` names the node
    "npu": Exporter("npu", "npu_chip_info_utilization", 0.01, "npu_chip_info_power",
                    "npu_chip_info_hbm_used_memory or npu_chip_info_used_memory", MIB, ("node", "instance"), ("id",)),
    # ROCm/device-metrics-exporter (gpu_power_usage on every generation; MI3xx also has gpu_package_power)
    "amd": Exporter("amd", "gpu_gfx_activity", 0.01, "gpu_power_usage", "gpu_used_vram", MIB, ("hostname",),
                    ("gpu_id",)),
    # Project-HAMi vGPUmonitor: v2.9+ names, and the legacy ones (before v2.9, or --legacy-metrics); no power
    "hami": Exporter("hami", "hami_host_gpu_utilization_ratio or HostCoreUtilization", 0.01, None,
                     "hami_host_gpu_memory_used_bytes or HostGPUMemoryUsage", 1.0, ("node", "nodeid"),
                     ("device_index", "deviceidx")),
}


@dataclass(frozen=True)
class DeviceReading:
    node: str
    device: str
    busy: float | None  # fraction 0..1
    watts: float | None
    memory_bytes: float | None


class MetricsError(RuntimeError):
    """Prometheus did not answer usefully (down, refused, malformed, too large)."""


class PrometheusMetrics:
    """A center's Prometheus, read through one exporter's names."""

    def __init__(self, url: str, exporter: str | Exporter, client: httpx.Client | None = None,
                 timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.exporter = EXPORTERS[exporter] if isinstance(exporter, str) else exporter
        self.client = client or httpx.Client(timeout=timeout)

    def _vector(self, metric: str, at: float | None) -> list[tuple[dict[str, str], float]]:
        params = {"query": metric} | ({"time": f"{at:.3f}"} if at is not None else {})
        try:
            with self.client.stream("GET", f"{self.url}/api/v1/query", params=params) as r:
                body = b""
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise MetricsError(f"answer to {metric} over {MAX_BYTES} bytes: refused")
                r.raise_for_status()
            data = httpx.Response(200, content=body).json()
        except (httpx.HTTPError, ValueError) as e:
            raise MetricsError(f"Prometheus at {self.url}: {metric}: {e}") from e
        if not isinstance(data, dict) or data.get("status") != "success":
            raise MetricsError(f"Prometheus at {self.url}: {metric}: {str(data)[:200]}")
        result = data.get("data", {}).get("result", [])
        out = []
        for item in result if isinstance(result, list) else []:
            try:
                labels, value = item["metric"], float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if isinstance(labels, dict) and math.isfinite(value):
                out.append(({str(k): str(v) for k, v in labels.items()}, value))
        return out

    def readings(self, at: float | None = None) -> list[DeviceReading]:
        """Every device the exporter reports, its latest busy, watts and memory (at `at`, default now)."""
        e = self.exporter
        got: dict[tuple[str, str], dict[str, float]] = {}
        for field, metric, scale in (("busy", e.busy, e.busy_scale), ("watts", e.power, 1.0),
                                     ("memory", e.memory, e.memory_scale)):
            if metric is None:
                continue
            for labels, value in self._vector(metric, at):
                key = (_first(labels, e.node_labels), _first(labels, e.device_labels))
                if key[1]:
                    got.setdefault(key, {})[field] = value * scale
        return [DeviceReading(node, device, None if "busy" not in v else min(1.0, max(0.0, v["busy"])),
                              v.get("watts"), v.get("memory"))
                for (node, device), v in sorted(got.items())]


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")


@dataclass(frozen=True)
class JobReading:
    busy: float  # mean over the job's devices, 0..1
    watts: float | None
    memory_gib: float | None
    devices: int  # how many of its devices the exporter reported


def job_reading(readings: list[DeviceReading], devices: list[tuple[str, str]]) -> JobReading | None:
    """A job's share of a center's readings: its (node, device) pairs; None if none of them is reported.
    A reading without a node label matches the device on any node (single-node exporters)."""
    by_key = {(r.node, r.device): r for r in readings}
    mine = [by_key.get(d) or by_key.get(("", d[1])) for d in devices]
    seen = [r for r in mine if r is not None and r.busy is not None]
    if not seen:
        return None
    watts = [r.watts for r in seen if r.watts is not None]
    memory = [r.memory_bytes for r in seen if r.memory_bytes is not None]
    return JobReading(sum(r.busy or 0.0 for r in seen) / len(seen), sum(watts) if watts else None,
                      sum(memory) / 2**30 if memory else None, len(seen))
