"""What the gateway served, per tenant × model: requests, failures, tokens (measured or counted apart) and
the latency to the first byte — read by /metrics and, later, the bill."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from zhisuan.gateway.usage import Tokens

LATENCIES = 10_000  # most recent first-byte latencies kept per model
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds to the first byte


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))  # cumulative per bucket bound
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.count += 1
        self.total += seconds


@dataclass
class Served:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted_tokens: int = 0  # of those, counted or estimated by the gateway (the backend gave no usage)


@dataclass
class GatewayMeter:
    served: dict[tuple[str, str], Served] = field(default_factory=dict)
    latency: dict[str, deque[float]] = field(default_factory=dict)
    first_byte: dict[str, Histogram] = field(default_factory=dict)
    pending: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # not yet in the store
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _pend(self, tenant: str, model: str, **counts: int) -> None:
        with self._lock:
            row = self.pending.setdefault((tenant, model), {})
            for k, v in counts.items():
                row[k] = row.get(k, 0) + v

    def drain(self) -> list[tuple[str, str, dict[str, int]]]:
        """What was served since the last drain, for the store (TokenUsageStore.add)."""
        with self._lock:
            pending, self.pending = self.pending, {}
        return [(t, m, counts) for (t, m), counts in sorted(pending.items())]

    def restore(self, rows: list[tuple[str, str, dict[str, int]]]) -> None:
        """Drained rows the store did not take: counted again at the next drain."""
        for tenant, model, counts in rows:
            self._pend(tenant, model, **counts)

    def _of(self, tenant: str, model: str) -> Served:
        return self.served.setdefault((tenant, model), Served())

    def done(self, tenant: str, model: str, tokens: Tokens, first_byte: float) -> None:
        s = self._of(tenant, model)
        s.requests += 1
        s.prompt_tokens += tokens.prompt
        s.completion_tokens += tokens.completion
        if not tokens.measured:
            s.counted_tokens += tokens.prompt + tokens.completion
        self._pend(tenant, model, requests=1, prompt_tokens=tokens.prompt, completion_tokens=tokens.completion,
                   counted_tokens=0 if tokens.measured else tokens.prompt + tokens.completion)
        self.latency.setdefault(model, deque(maxlen=LATENCIES)).append(first_byte)
        self.first_byte.setdefault(model, Histogram()).observe(first_byte)

    def failed(self, tenant: str, model: str) -> None:
        s = self._of(tenant, model)
        s.requests += 1
        s.errors += 1
        self._pend(tenant, model, requests=1, errors=1)
