"""Where a model's replicas are and how busy each is: the gateway's routing table.

Routing is least outstanding requests (each replica's in-flight count, kept here), ties broken by the
replica's preference rank (cheaper, greener, closer: given by whoever registers it), then its id, so a
choice is reproducible. A replica that failed is skipped for a back-off; a draining one takes no new
requests (scale-down waits for its in-flight count to reach 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FAIL_BACKOFF = 5.0  # seconds a replica that failed a request is passed over


@dataclass
class Replica:
    id: str
    model: str
    url: str  # base URL of its OpenAI-compatible API, e.g. http://127.0.0.1:8001
    center: str = ""
    rank: float = 0.0  # lower first on a tie in outstanding requests (price, carbon, region preference)
    ready: bool = True
    draining: bool = False
    inflight: int = 0
    failed_at: float = -1e18
    served: int = 0

    def usable(self, now: float) -> bool:
        return self.ready and not self.draining and now - self.failed_at >= FAIL_BACKOFF


@dataclass
class Registry:
    """Replicas by model; the control loop (services) or the command line (static backends) fills it."""

    replicas: dict[str, Replica] = field(default_factory=dict)

    def add(self, replica: Replica) -> None:
        old = self.replicas.get(replica.id)
        if old is not None:
            replica.inflight, replica.served = old.inflight, old.served
        self.replicas[replica.id] = replica

    def remove(self, replica_id: str) -> None:
        self.replicas.pop(replica_id, None)

    def models(self) -> list[str]:
        return sorted({r.model for r in self.replicas.values()})

    def of(self, model: str) -> list[Replica]:
        return [r for r in self.replicas.values() if r.model == model]

    def choose(self, model: str, now: float, exclude: set[str] | frozenset[str] = frozenset()) -> Replica | None:
        """The usable replica with the fewest requests in flight (then rank, then id); None if none."""
        best = None
        for r in self.replicas.values():
            if r.model != model or r.id in exclude or not r.usable(now):
                continue
            if best is None or (r.inflight, r.rank, r.id) < (best.inflight, best.rank, best.id):
                best = r
        return best


_BACKEND = re.compile(r"^(?P<model>[A-Za-z0-9][A-Za-z0-9._:/-]{0,127})=(?P<url>https?://[^\s]{1,500})$")


def static_backends(given: list[str]) -> list[Replica]:
    """`MODEL=URL` pairs (a model served by an OpenAI-compatible server already running) as replicas."""
    out = []
    for i, text in enumerate(given):
        m = _BACKEND.match(text.strip())
        if not m:
            raise ValueError(f"expected MODEL=http://HOST:PORT, got {text[:80]!r}")
        url = m["url"].rstrip("/")
        out.append(Replica(f"{m['model']}@{i}", m["model"], url[:-3] if url.endswith("/v1") else url, rank=float(i)))
    return out
