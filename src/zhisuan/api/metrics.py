"""/metrics in the Prometheus text format (prometheus-client), rendering what control.observe computes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from zhisuan.control.observe import CYCLE_BUCKETS
from zhisuan.control.service import Service
from zhisuan.gateway.meter import BUCKETS
from zhisuan.gateway.proxy import Gateway

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


class GatewayCollector:
    """Requests, failures, tokens and first-byte latency per model (and tenant), replicas per model."""

    def __init__(self, gateway: Gateway, per_tenant: bool) -> None:
        self.gateway, self.per_tenant = gateway, per_tenant

    def collect(self) -> Iterator[Metric]:
        meter = self.gateway.meter
        by = ["tenant", "model"] if self.per_tenant else ["model"]
        requests = CounterMetricFamily("zhisuan_gateway_requests", "Model requests through the gateway", labels=by)
        errors = CounterMetricFamily("zhisuan_gateway_errors", "Model requests no replica could answer", labels=by)
        tokens = CounterMetricFamily("zhisuan_gateway_tokens", "Tokens served (backend usage, else counted)",
                                     labels=[*by, "kind"])
        counted = CounterMetricFamily("zhisuan_gateway_counted_tokens", "Of those, counted or estimated by the "
                                      "gateway because the backend gave no usage", labels=by)
        sums: dict[tuple[str, ...], list[int]] = {}  # per (tenant, model), or per model for an anonymous scrape
        for (tenant, model), s in sorted(meter.served.items()):
            key = (tenant, model) if self.per_tenant else (model,)
            row = sums.setdefault(key, [0, 0, 0, 0, 0])
            for i, v in enumerate((s.requests, s.errors, s.prompt_tokens, s.completion_tokens, s.counted_tokens)):
                row[i] += v
        for key, (n, failed, prompt, completion, by_us) in sums.items():
            requests.add_metric(list(key), n)
            errors.add_metric(list(key), failed)
            tokens.add_metric([*key, "prompt"], prompt)
            tokens.add_metric([*key, "completion"], completion)
            counted.add_metric(list(key), by_us)
        yield from (requests, errors, tokens, counted)
        replicas = GaugeMetricFamily("zhisuan_gateway_replicas", "Replicas per model by state",
                                     labels=["model", "state"])
        for model in self.gateway.registry.models():
            mine = self.gateway.registry.of(model)
            for state, n in (("ready", sum(r.ready and not r.draining for r in mine)),
                             ("draining", sum(r.draining for r in mine)),
                             ("not_ready", sum(not r.ready for r in mine))):
                replicas.add_metric([model, state], n)
        yield replicas
        latency = HistogramMetricFamily("zhisuan_gateway_first_byte_seconds", "Seconds from a request to its "
                                        "first byte from a replica", labels=["model"])
        for model, h in sorted(meter.first_byte.items()):
            latency.add_metric([model], [*((str(b), float(n)) for b, n in zip(BUCKETS, h.counts, strict=True)),
                                         ("+Inf", float(h.count))], h.total)
        yield latency


def render(service: Service, gateway: Gateway | None = None, per_tenant: bool = False) -> bytes:
    """Tenants' own series (requests and tokens per tenant) only for an admin's scrape; anyone else, a job on
    the server's host included, sees them summed per model."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ZhisuanCollector(service))  # type: ignore[arg-type]
    if gateway is not None:
        registry.register(GatewayCollector(gateway, per_tenant))  # type: ignore[arg-type]
    return generate_latest(registry)
