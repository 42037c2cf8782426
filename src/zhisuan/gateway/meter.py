"""What the gateway served, per tenant × model: requests, failures, tokens (measured or counted apart) and
the latency to the first byte — read by /metrics and, later, the bill."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from zhisuan.gateway.usage import Tokens

LATENCIES = 10_000  # most recent first-byte latencies kept per model


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

    def _of(self, tenant: str, model: str) -> Served:
        return self.served.setdefault((tenant, model), Served())

    def done(self, tenant: str, model: str, tokens: Tokens, first_byte: float) -> None:
        s = self._of(tenant, model)
        s.requests += 1
        s.prompt_tokens += tokens.prompt
        s.completion_tokens += tokens.completion
        if not tokens.measured:
            s.counted_tokens += tokens.prompt + tokens.completion
        self.latency.setdefault(model, deque(maxlen=LATENCIES)).append(first_byte)

    def failed(self, tenant: str, model: str) -> None:
        s = self._of(tenant, model)
        s.requests += 1
        s.errors += 1
