"""Where a model's replicas are and how busy each is: the gateway's routing table.

Routing is least outstanding requests (each replica's in-flight count, kept here), ties broken by the
caller's region (a client may name one: replicas there first), then the replica's rank (cheaper, then
greener: given by whoever registers it), then its id, so a choice is reproducible. A replica that
failed is skipped for a back-off; a draining one takes no new requests (scale-down waits for its
in-flight count to reach 0). A service's replicas answer only their own tenant (its prompts and its
bill); backends given at start (`--model-backend`) answer everyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from zhisuan.control.keeper import Endpoint

FAIL_BACKOFF = 5.0  # seconds a replica that failed a request is passed over


@dataclass
class Replica:
    id: str
    model: str
    url: str  # base URL of its OpenAI-compatible API, e.g. http://127.0.0.1:8001
    center: str = ""
    tenant: str = ""  # "": anyone may call it
    rank: tuple[float, float] = (0.0, 0.0)  # lower first on a tie in outstanding requests: (price, carbon)
    region: str = ""
    ready: bool = True
    draining: bool = False
    inflight: int = 0
    failed_at: float = -1e18
    served: int = 0
    tokens: int = 0  # completion tokens served (autoscaling on tokens/s)
    key: str = field(default="", repr=False)  # bearer key the replica answers to ("" : none)
    via: tuple[str, str] | None = None  # (center, run): reached through that center's agent
    relay: bool = False  # stands for the leading server, where a follower relays: the leader meters it
    failed_for: dict[str, float] = field(default_factory=dict, repr=False)  # tenant -> its last failed request

    def blame(self, tenant: str, now: float, reached: bool) -> None:
        """A request failed here. Unreachable, the replica is passed over for everyone; reached (it dropped the
        request, or answered 5xx), only once another tenant's request failed too within the back-off — one
        tenant's malformed requests must not take a shared backend away from the rest."""
        self.failed_for = {t: at for t, at in self.failed_for.items() if now - at < FAIL_BACKOFF}
        if not reached or self.failed_for.keys() - {tenant}:
            self.failed_at = now
        self.failed_for[tenant] = now

    def usable(self, now: float, tenant: str | None = None) -> bool:
        """Ready, not draining, not failing for everyone, nor for this tenant's own requests just now."""
        mine = self.failed_for.get(tenant, -1e18) if tenant is not None else -1e18
        return self.ready and not self.draining and now - max(self.failed_at, mine) >= FAIL_BACKOFF

    def serves(self, tenant: str | None) -> bool:
        return tenant is None or not self.tenant or self.tenant == tenant


@dataclass
class Registry:
    """Replicas by model; the control loop (services) or the command line (static backends) fills it."""

    replicas: dict[str, Replica] = field(default_factory=dict)
    feed: Callable[[], tuple[int, list[Endpoint]]] | None = None  # the services' replicas (ServiceKeeper)
    deployed: Callable[[str, str], bool] | None = None  # (model, tenant): a service of it, ready or not
    _seen: int = -1
    _followed: set[str] = field(default_factory=set)
    _service_of: dict[str, str] = field(default_factory=dict)  # replica -> its service (from the feed)
    _retired: dict[str, int] = field(default_factory=dict)  # service -> tokens served by replicas since gone

    def _sync(self) -> None:
        """Take the services' replicas as the keeper last published them (kept counts carry over)."""
        if self.feed is None:
            return
        version, endpoints = self.feed()
        if version == self._seen:
            return
        self._seen = version
        now = {e.replica for e in endpoints}
        for gone in self._followed - now:
            replica, service = self.replicas.pop(gone, None), self._service_of.pop(gone, "")
            if replica is not None:  # what it served stays its service's (a replaced replica took it along)
                self._retired[service] = self._retired.get(service, 0) + replica.tokens
        for e in endpoints:
            self._service_of[e.replica] = e.service
            self.add(Replica(e.replica, e.model, e.url, e.center, e.tenant, rank=e.rank, region=e.region,
                             ready=e.ready, draining=e.draining, key=e.key, via=e.via))
        self._followed = now

    def add(self, replica: Replica) -> None:
        """A new replica, or new facts about a known one: updated in place, since requests in flight hold
        the object and count themselves out on it."""
        old = self.replicas.get(replica.id)
        if old is None:
            self.replicas[replica.id] = replica
            return
        for name in ("model", "url", "center", "tenant", "rank", "region", "ready", "draining", "key", "via"):
            setattr(old, name, getattr(replica, name))

    def remove(self, replica_id: str) -> None:
        self.replicas.pop(replica_id, None)

    def load(self) -> dict[str, tuple[int, int]]:
        """Per replica: requests in flight and completion tokens served (what autoscaling reads)."""
        self._sync()
        return {r.id: (r.inflight, r.tokens) for r in list(self.replicas.values())}

    def retired_tokens(self, service: str) -> int:
        """Completion tokens the service's replicas that are gone served (since the server started)."""
        self._sync()
        return self._retired.get(service, 0)

    def models(self, tenant: str | None = None) -> list[str]:
        self._sync()
        return sorted({r.model for r in self.replicas.values() if r.serves(tenant)})

    def of(self, model: str, tenant: str | None = None) -> list[Replica]:
        self._sync()
        return [r for r in self.replicas.values() if r.model == model and r.serves(tenant)]

    def known(self, model: str, tenant: str) -> bool:
        """Served here: a replica of it (ready or not), or the tenant's service of it whose replicas start."""
        return bool(self.of(model, tenant)) or (self.deployed is not None and self.deployed(model, tenant))

    def choose(self, model: str, now: float, exclude: set[str] | frozenset[str] = frozenset(),
               tenant: str | None = None, region: str | None = None) -> Replica | None:
        """The usable replica with the fewest requests in flight (then in `region`, then rank, then id)."""
        self._sync()
        best, best_key = None, None
        for r in self.replicas.values():
            if r.model != model or r.id in exclude or not r.usable(now, tenant) or not r.serves(tenant):
                continue
            key = (r.inflight, bool(region) and r.region != region, r.rank, r.id)
            if best_key is None or key < best_key:
                best, best_key = r, key
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
        out.append(Replica(f"{m['model']}@{i}", m["model"], url[:-3] if url.endswith("/v1") else url,
                           rank=(float(i), 0.0)))
    return out
