"""Run a set of policies over a trace in one or more scenarios (what `zhisuan sim` does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zhisuan.model import Network
from zhisuan.scheduler import Policy, get_policy
from zhisuan.scheduler.profiles import policy_for
from zhisuan.sim.datasets import Dataset, DataWorld
from zhisuan.sim.engine import Outage, SimResult, Simulator
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import Scenario, network_scenario, trace_cluster
from zhisuan.sim.trace import Trace


@dataclass(frozen=True)
class PolicyRun:
    """`qssf` uses oracle durations as estimates; `qssf-pred` the history-based prediction."""

    name: str
    estimates: str

    @classmethod
    def parse(cls, text: str) -> PolicyRun:
        name, pred = (text[:-5], "predicted") if text.endswith("-pred") else (text, "oracle")
        get_policy(name)  # unknown names fail here, before anything runs
        return cls(name, pred)


def policy_of(name: str, network: Network | None) -> Policy:
    """A named policy, with the network's scheduler profile (weights, plugin arguments) when replaying on one:
    the live network with the same file decides with the same policy."""
    return policy_for(network.scheduler, name) if network is not None else get_policy(name)


def scenarios(trace: Trace, mode: str, per_node: int, network: Network | None) -> list[Scenario]:
    modes = {"both": [True, False], "siloed": [True], "network": [False]}.get(mode)
    if modes is None:
        raise ValueError(f"unknown mode {mode!r}; use network, siloed or both")
    if network is not None:
        homes = {j.home for j in trace.jobs if j.home}
        unknown = sorted(homes - {c.name for c in network.centers})
        if True in modes and (not homes or unknown):
            raise ValueError(f"a siloed replay on network {network.name} needs the trace's `home` column to name "
                             f"its centers; unknown homes: {unknown[:5] or 'none given'}")
        return [network_scenario(network, s) for s in modes]
    return [trace_cluster(trace, s, per_node) for s in modes]


def world(trace: Trace, network: Network | None) -> DataWorld | None:
    """The trace's datasets at the centers it says they are born at (a fresh world per replay)."""
    if not trace.datasets:
        return None
    centers = {c.name for c in network.centers} if network is not None else set()
    unknown = sorted({at for _, at in trace.datasets.values()} - centers)
    if unknown:
        raise ValueError(f"input_at: {unknown[0]!r} is not a center of the network replayed on (inputs need --network)")
    return DataWorld([Dataset(n, gb, at) for n, (gb, at) in sorted(trace.datasets.items())])


def run_all(trace_name: str, policies: list[str], mode: str = "both", *, per_node: int = 2,
            interval: float = 60.0, limit: int | None = None, skip_bad: bool = False,
            network: Network | None = None, outages: tuple[Outage, ...] = (),
            on_progress: Callable[[str, int], None] = lambda _run, _n: None, chip: str | None = None,
            rescale: bool = True) -> tuple[Trace, list[SimResult]]:
    runs = [PolicyRun.parse(p) for p in policies]
    trace = load_trace(trace_name, skip_bad=skip_bad, gpus_per_node=per_node, chip=chip).limit(limit)
    results = []
    for sc in scenarios(trace, mode, per_node, network):
        for run in runs:
            label = f"{sc.name}/{run.name}" + ("-pred" if run.estimates == "predicted" else "")
            sim = Simulator(trace, sc, policy_of(run.name, network), interval=interval,
                            estimates="predicted" if run.estimates == "predicted" else "oracle", outages=outages,
                            rescale=rescale, data=world(trace, network))
            results.append(sim.run(lambda n, label=label: on_progress(label, n)))  # type: ignore[misc]
    return trace, results
