"""The simulator stages inputs as the live network does: the run holds its devices while data moves, the
transfer is billed, and the replica it leaves makes the next job's data local."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.scheduler.test_staging import NETWORK
from zhisuan.bench import data as data_bench
from zhisuan.model import parse_network
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.sim.datasets import Dataset, DataWorld
from zhisuan.sim.engine import Simulator
from zhisuan.sim.metrics import summarize
from zhisuan.sim.scenario import network_scenario
from zhisuan.sim.trace import Trace, TraceJob


def _replay(jobs: list[TraceJob], policy: object = DEFAULT) -> tuple[Simulator, object]:
    world = DataWorld([Dataset("corpus", 1000.0, "shanghai")])
    sim = Simulator(Trace("t", jobs, "A100-80GB"), network_scenario(parse_network(NETWORK), False),
                    policy, data=world)  # type: ignore[arg-type]
    return sim, sim.run()


def test_a_moved_input_is_billed_held_for_and_left_as_a_replica() -> None:
    blind = replace(DEFAULT, weigh_data=False)  # goes to cheap gansu whatever the data
    first = TraceJob("a", 0.0, 3600.0, 8, inputs=("corpus",))
    second = TraceJob("b", 2 * 3600.0, 3600.0, 8, inputs=("corpus",))
    sim, result = _replay([first, second], blind)
    moving = 20e-3 + 1000e9 / (10e9 / 8)  # the declared east-west link: 800 s
    log = result.jobs  # type: ignore[attr-defined]
    assert log.end[0] - log.first_start[0] == pytest.approx(moving + 3600.0)  # held while the data moved
    assert log.end[1] - log.first_start[1] == pytest.approx(3600.0)  # the replica was there: nothing moved
    t = result.transfers  # type: ignore[attr-defined]
    assert len(t) == 1 and t[0, 1] == 1000.0 and t[0, 2] == pytest.approx(1000.0 * 0.1)
    assert sim.data is not None and sim.data.datasets["corpus"].at == {"shanghai", "gansu"}
    assert summarize(result).cny == pytest.approx(8 * 6.0 * (moving + 2 * 3600.0) / 3600.0)  # type: ignore[arg-type]


def test_the_east_west_bench_runs_the_three_placements_on_a_small_case() -> None:
    ew, rows = data_bench.run(jobs=120, devices=80)
    assert [r.policy for r in rows] == ["data-blind", "move-job-to-data", "data-aware"]
    by = {r.policy: r for r in rows}
    assert by["data-blind"].finished == by["data-aware"].finished == 120  # moving data, any pool can run them
    assert by["move-job-to-data"].finished <= 120  # a gang larger than its data's center never runs there
    assert by["move-job-to-data"].transfers == 0 and by["data-blind"].transfers > 0
    assert all(d.born in {c.name for c in ew.network.centers} for d in ew.datasets)
    jct, cny = data_bench.versus_best_baseline(rows)
    assert jct > 0 and cny > 0


def test_a_csv_trace_carries_inputs_and_replays_them_on_a_network(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from zhisuan.sim.runner import run_all
    from zhisuan.sim.trace import TraceError, parse_csv

    text = ("submit,duration,devices,chip,tenant,input,input_gb,input_at\n"
            "0,3600,8,A100-80GB,acme,corpus,1000,shanghai\n"
            "7200,3600,8,A100-80GB,acme,corpus,1000,shanghai\n"
            "7300,600,1,A100-80GB,acme,,,\n")
    path = tmp_path / "t.csv"
    path.write_text(text)
    trace = parse_csv(text)
    assert trace.datasets == {"corpus": (1000.0, "shanghai")} and trace.jobs[0].inputs == ("corpus",)
    _, results = run_all(str(path), ["zhisuan"], "network", network=parse_network(NETWORK), interval=0)
    assert results[0].jobs.end[~np.isnan(results[0].jobs.end)].size == 3
    with pytest.raises(TraceError, match=r"line 2: input 'corpus': give its size"):
        parse_csv("submit,duration,devices,chip,input\n0,60,1,A100-80GB,corpus\n")
    with pytest.raises(TraceError, match=r"line 3: input 'x': 2\.0 GB at b, but an earlier row said 1\.0 GB at a"):
        parse_csv("submit,duration,devices,chip,input,input_gb,input_at\n0,60,1,A100-80GB,x,1,a\n"
                  "1,60,1,A100-80GB,x,2,b\n")
    with pytest.raises(ValueError, match=r"input_at: 'shanghai' is not a center"):
        run_all(str(path), ["zhisuan"], "network")
