"""/metrics in the Prometheus text format (prometheus-client), rendering what control.observe computes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from zhisuan.control.observe import CYCLE_BUCKETS
from zhisuan.control.service import Service

HELP = {
    "queue_depth": ("gauge", "Pending jobs that a center's pools accept (a job counts at every such center)"),
    "jobs": ("gauge", "Jobs in the store by state"),
    "running_jobs": ("gauge", "Running jobs per center"),
    "devices": ("gauge", "Accelerator devices per center and chip"),
    "devices_allocated": ("gauge", "Devices held by scheduled or running jobs"),
    "devices_external": ("gauge", "Devices held by the center's own load (its users' jobs, nodes drained or down)"),
    "devices_busy": ("gauge", "Devices busy by the latest measurement of running jobs (unmeasured jobs count 0)"),
    "center_up": ("gauge", "1 when the center's engine answers its health check"),
    "energy_kwh": ("counter", "Facility energy metered for finished runs (kWh)"),
    "carbon_kg": ("counter", "Carbon metered for finished runs (kg CO2)"),
    "billed_cny": ("counter", "CNY billed for finished runs"),
}


class ZhisuanCollector:
    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        values, cycles = self.service.metrics()
        for name, rows in values.items():
            kind, doc = HELP[name]
            labels = [k for k, _ in rows[0][0]] if rows else []
            family: GaugeMetricFamily | CounterMetricFamily = (
                GaugeMetricFamily(f"zhisuan_{name}", doc, labels=labels) if kind == "gauge"
                else CounterMetricFamily(f"zhisuan_{name}", doc, labels=labels))
            for label_values, value in rows:
                family.add_metric([v for _, v in label_values], value)
            yield family
        cumulative = [(str(b), float(n)) for b, n in zip(CYCLE_BUCKETS, cycles.buckets, strict=True)]
        yield HistogramMetricFamily("zhisuan_scheduler_cycle_duration_seconds", "Duration of scheduling cycles",
                                    buckets=[*cumulative, ("+Inf", float(cycles.count))], sum_value=cycles.total)


def render(service: Service) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ZhisuanCollector(service))  # type: ignore[arg-type]
    return generate_latest(registry)
