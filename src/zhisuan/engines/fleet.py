"""Which engine runs each center: built from the network file's `engine` and `engine_config`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zhisuan.engines.base import Engine, EngineDown
from zhisuan.engines.local import LocalEngine
from zhisuan.model import Center, Network


class Fleet:
    """One engine per center; centers may share one (every local center shares the local engine)."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self.engines = dict(engines)

    def of(self, center: str) -> Engine:
        return self.engines[center]

    @classmethod
    def single(cls, network: Network, engine: Engine) -> Fleet:
        return cls({c.name: engine for c in network.centers})


def engine_for(center: Center, runs: Path, local: LocalEngine | None = None) -> Engine:
    """The engine a center's `engine:` names, configured from its `engine_config`."""
    return engine_named(center.name, center.engine, center.engine_config, runs, local)


def engine_named(name: str, kind: str, cfg: Mapping[str, Any], runs: Path, local: LocalEngine | None = None) -> Engine:
    """An engine of `kind` for center `name` (a center's agent builds its engine this way from its own config)."""
    if kind == "local":
        return local or LocalEngine(runs)
    if kind == "slurm":
        from zhisuan.engines.slurm import SlurmEngine

        return SlurmEngine.from_config(name, dict(cfg), runs)
    if kind == "ray":
        from zhisuan.engines.ray import RayEngine

        return RayEngine.from_config(name, dict(cfg))
    if kind == "kubernetes":
        from zhisuan.engines.kubernetes import KubernetesEngine

        return KubernetesEngine.from_config(name, dict(cfg))
    raise ValueError(f"engine: one of local, slurm, ray, kubernetes, got {kind!r}")


def build_fleet(network: Network, runs: Path) -> Fleet:
    """The engines of the centers the server runs itself (`join: direct`); agent-joined centers run theirs."""
    direct = [c for c in network.centers if c.join == "direct"]
    local = LocalEngine(runs) if any(c.engine == "local" for c in direct) else None
    return Fleet({c.name: engine_for(c, runs, local) for c in direct})


def with_inventory(network: Network, fleet: Fleet) -> Network:
    """The network with every center that declares no pools given the pools its engine reports."""
    if all(c.pools for c in network.centers):
        return network
    data = network.model_dump()
    for i, c in enumerate(network.centers):
        if not c.pools and c.name in fleet.engines:
            pools = fleet.of(c.name).inventory()
            if not pools:
                raise EngineDown(f"centers.{i}.pools: none declared and {c.name}'s {c.engine} engine reports none")
            data["centers"][i]["pools"] = [p.model_dump() for p in pools]
    return Network.model_validate(data)
