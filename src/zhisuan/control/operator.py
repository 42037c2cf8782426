"""A center operator's view and actions: their centers' pools, load, health and anonymised jobs; drain and
undrain nodes, or take the whole center out (every node drained: running jobs go on, nothing new starts).
An operator never sees a job's tenant, name, spec, logs or bill: jobs are named by an opaque reference."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from zhisuan.control.errors import Forbidden, NotFound
from zhisuan.control.observe import queue_depth
from zhisuan.control.view import LiveView
from zhisuan.model import JobState, Network, SpecError
from zhisuan.store import JobStore, Principal
from zhisuan.store.audit import By
from zhisuan.store.drains import DrainStore
from zhisuan.store.secrets import shared_secret

MAX_NODES = 4096  # nodes named in one drain


def job_ref(key: bytes, job_id: str) -> str:
    """A job as an operator sees it: stable, not the job's id (which opens its spec and logs to the tenant),
    keyed with a secret of the network's so it cannot be matched to ids by trying them."""
    return "r-" + hmac.new(key, job_id.encode(), hashlib.sha256).hexdigest()[:16]


class Operators:
    def __init__(self, store: JobStore, network: Network, changed: Callable[[], None] = lambda: None) -> None:
        self.store, self.network, self.changed = store, network, changed
        self.drains = DrainStore(store.engine)
        self._key = b""  # the references' key, read from the store when first needed

    def _center(self, who: Principal, center: str) -> Any:
        if not who.admin and center not in who.centers:
            raise Forbidden(f"center: you operate {', '.join(who.centers) or 'no center'}, not {center!r}")
        for c in self.network.centers:
            if c.name == center:
                return c
        raise NotFound(center, "center")

    def centers(self, who: Principal) -> list[str]:
        return [c.name for c in self.network.centers if who.admin or c.name in who.centers]

    def view(self, who: Principal, center: str, live: LiveView, down: dict[str, str]) -> dict[str, Any]:
        """The center as its operator sees it."""
        c = self._center(who, center)
        held = live.held()
        drained: dict[str, list[dict[str, object]]] = {}
        for d in self.drains.list(center):
            drained.setdefault(d.pool, []).append(d.json())
        if not self._key:
            self._key = shared_secret(self.store.engine, "operator-job-refs")
        jobs = [{"ref": job_ref(self._key, r.id), "pool": r.pool, "state": r.state.value, "nodes": list(r.nodes),
                 "devices": sum(len(x) for x in r.devices) if r.devices else None, "since": r.updated_at}
                for r in self.store.find(states={JobState.RUNNING, JobState.SCHEDULED}) if r.center == center]
        return {"name": c.name, "region": c.region, "engine": c.engine,
                "healthy": c.healthy and center not in down, "down_reason": down.get(center),
                "queue_depth": queue_depth(live, self.network).get(center, 0),
                "pools": [{"name": p.name, "accelerator": p.accelerator, "nodes": p.nodes,
                           "devices_per_node": p.devices_per_node, "devices": p.devices,
                           "zhisuan_devices": held.get(f"{center}/{p.name}", (0, 0))[0],
                           "own_load_devices": held.get(f"{center}/{p.name}", (0, 0))[1],
                           "drained": drained.get(p.name, [])} for p in c.pools],
                "jobs": jobs}

    def _nodes(self, c: Any, pool: str | None, nodes: list[int] | None) -> list[tuple[str, int]]:
        """(pool, node) pairs named by a request: one pool's nodes, a whole pool, or (no pool) the center."""
        if pool is None:
            if nodes:
                raise SpecError([("pool", "name the pool the nodes are in")])
            return [(p.name, n) for p in c.pools for n in range(p.nodes)]
        found = next((p for p in c.pools if p.name == pool), None)
        if found is None:
            raise SpecError([("pool", f"no pool {pool!r} in center {c.name}")])
        if nodes is None:
            return [(pool, n) for n in range(found.nodes)]
        bad = [n for n in nodes if not 0 <= n < found.nodes]
        if bad:
            raise SpecError([("nodes", f"pool {pool} has nodes 0..{found.nodes - 1}, not {bad[:5]}")])
        if len(nodes) > MAX_NODES:
            raise SpecError([("nodes", f"at most {MAX_NODES} at once")])
        return [(pool, n) for n in sorted(set(nodes))]

    def drain(self, who: Principal, center: str, pool: str | None, nodes: list[int] | None, reason: str,
              now: float) -> dict[str, Any]:
        c = self._center(who, center)
        named = self._nodes(c, pool, nodes)
        new = self.drains.drain(center, named, reason or "drained by its operator", By(who.actor, who.origin), now)
        self.changed()
        return {"center": center, "drained": len(named), "new": new}

    def undrain(self, who: Principal, center: str, pool: str | None, nodes: list[int] | None,
                now: float) -> dict[str, Any]:
        c = self._center(who, center)
        back = self.drains.undrain(center, self._nodes(c, pool, nodes), By(who.actor, who.origin), now)
        self.changed()
        return {"center": center, "undrained": back}
