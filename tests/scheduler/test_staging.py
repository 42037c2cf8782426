"""Placement weighs moving a job's inputs: staging time, transfer ¥ and energy, in scores, ends and explain."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tests.builders import job, named
from zhisuan.model import SpecError, parse_job_spec, parse_network
from zhisuan.model.datasets import InputData
from zhisuan.scheduler import cycle
from zhisuan.scheduler.explain import explain, margin
from zhisuan.scheduler.feasibility import unmet
from zhisuan.scheduler.policies import DEFAULT
from zhisuan.scheduler.snapshot import RunningJob, Snapshot, pools_from_network

NETWORK = {
    "name": "east-west",
    "centers": [
        {"name": "shanghai", "region": "east", "province": "上海", "pue": 1.3, "carbon_kg_per_kwh": 0.58,
         "pools": [{"name": "a100", "accelerator": "A100-80GB", "nodes": 2, "devices_per_node": 8,
                    "price_per_device_hour": 12.0}]},
        {"name": "gansu", "region": "west", "province": "甘肃", "pue": 1.2, "carbon_kg_per_kwh": 0.25,
         "pools": [{"name": "a100", "accelerator": "A100-80GB", "nodes": 2, "devices_per_node": 8,
                    "price_per_device_hour": 6.0}]},
    ],
    "links": [{"between": ["east", "west"], "bandwidth_gbit": 10, "rtt_ms": 20, "cny_per_gb": 0.1}],
}


def _snapshot() -> Snapshot:
    return Snapshot(pools=pools_from_network(parse_network(NETWORK)))


def _with_data(gb: float, hours: float) -> object:
    return named("A100-80GB", 8, inputs=(InputData("acme:corpus", gb, frozenset({"shanghai"})),), hours=hours)


def test_a_short_job_over_big_data_stays_with_its_data_and_a_long_one_moves_to_cheap_power() -> None:
    short = job("short", _with_data(4000.0, 1.0), duration=3600.0)  # 4 TB at 10 Gbit/s: ~53 min to move
    result = cycle(replace(_snapshot(), pending=[short]), 0.0)
    assert result.starts[0].placement.center == "shanghai"
    long = job("long", _with_data(50.0, 200.0), duration=200 * 3600.0)  # 50 GB: 40 s to move, 200 h of work
    result = cycle(replace(_snapshot(), pending=[long]), 0.0)
    assert result.starts[0].placement.center == "gansu"


def test_a_data_blind_policy_ignores_the_move_but_the_run_still_takes_it() -> None:
    blind = replace(DEFAULT, weigh_data=False)
    short = job("short", _with_data(4000.0, 1.0), duration=3600.0)
    start = cycle(replace(_snapshot(), pending=[short]), 0.0, blind).starts[0]
    assert start.placement.center == "gansu"  # cheaper and greener per device-hour: blind to the 4 TB
    moving = 20e-3 + 4000e9 / (10e9 / 8)
    assert start.placement.expected_end == pytest.approx(moving + 3600.0)


def test_explain_shows_the_data_line_and_prices_the_transfer() -> None:
    pending = job("j", _with_data(2000.0, 1.0), duration=3600.0)
    cands = {c.center: c for c in explain(_snapshot(), pending, 0.0)}
    far, near = cands["gansu"], cands["shanghai"]
    assert near.staging == 0 and near.data == "inputs already here"
    assert far.data.startswith("2.0 TB from shanghai at 10 Gbit/s") and "¥200.00" in far.data
    assert far.staging == pytest.approx(1600.02)
    # devices are held while the data moves: 8 x 6 ¥/h x (1600 s + 1 h), plus 2000 GB x 0.1 ¥/GB
    assert far.cost == pytest.approx(8 * 6.0 * (1600.02 + 3600.0) / 3600.0 + 200.0)
    assert near.cost == pytest.approx(8 * 12.0)
    why = margin(explain(_snapshot(), pending, 0.0))
    assert why.startswith("shanghai/a100 over gansu/a100 by ") and (
        "starts its work 26m40s sooner (there: 2.0 TB from shanghai at 10 Gbit/s" in why)


def test_an_input_nobody_holds_is_refused_naming_the_field() -> None:
    lost = named("A100-80GB", 8, inputs=(InputData("acme:gone", 1.0, frozenset()),), hours=1.0)
    result = cycle(replace(_snapshot(), pending=[job("j", lost)]), 0.0)
    assert not result.starts
    assert result.unschedulable and "no checked replica" in result.unschedulable[0].reason
    assert unmet(lost, _snapshot().pools) == ("inputs", "no center holds a checked replica of acme:gone")


def test_a_replica_at_the_cheap_center_makes_it_local() -> None:
    both = named("A100-80GB", 8, inputs=(InputData("acme:corpus", 4000.0, frozenset({"shanghai", "gansu"})),),
                 hours=1.0)
    start = cycle(replace(_snapshot(), pending=[job("j", both)]), 0.0).starts[0]
    assert start.placement.center == "gansu" and start.placement.expected_end == pytest.approx(3600.0)


def test_links_resolve_most_specific_first_and_default_by_kind() -> None:
    net = dict(NETWORK, links=[{"between": ["east", "west"], "bandwidth_gbit": 10},
                               {"between": ["shanghai", "gansu"], "bandwidth_gbit": 40, "cny_per_gb": 0.2}])
    into_gansu = {p.center: p for p in pools_from_network(parse_network(net))}["gansu"].links
    assert into_gansu["shanghai"].gbit == pytest.approx(40.0) and into_gansu["shanghai"].cny_per_gb == 0.2
    undeclared = {p.center: p for p in pools_from_network(parse_network(dict(NETWORK, links=[])))}["gansu"].links
    assert undeclared["shanghai"].source and math.isfinite(undeclared["shanghai"].bytes_per_s)
    with pytest.raises(SpecError, match=r"links\[0\]\.between: 'mars'"):
        parse_network(dict(NETWORK, links=[{"between": ["mars", "west"], "bandwidth_gbit": 1}]))


@pytest.mark.parametrize(("inputs", "field"), [
    ({"train": "a/b"}, "inputs"), ({"train": "../etc"}, "inputs"), ({"train": "x\x00"}, "inputs"),
    ({"train": "d" * 201}, "inputs"), ({"1bad": "ok"}, "inputs"),
])
def test_bad_dataset_names_name_the_field(inputs: dict[str, str], field: str) -> None:
    spec = {"name": "j", "tenant": "acme", "resources": {"accelerators": "A100:1"}, "run": "true", "inputs": inputs}
    with pytest.raises(SpecError) as e:
        parse_job_spec(spec)
    assert e.value.errors[0][0] == field


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../b", ""])
def test_outputs_stay_inside_the_job_folder(path: str) -> None:
    spec = {"name": "j", "tenant": "acme", "resources": {"accelerators": "A100:1"}, "run": "true",
            "outputs": {"ckpt": path}}
    with pytest.raises(SpecError, match="outputs"):
        parse_job_spec(spec)


def test_data_aware_waits_for_the_data_center_when_that_is_sooner_than_moving_the_data() -> None:
    busy = RunningJob("other", "t", "shanghai/a100", (0, 1), 8, 0.0, 600.0)  # shanghai frees in 10 minutes
    big = job("j", _with_data(10_000.0, 1.0), duration=3600.0)  # 10 TB: 8,000 s to gansu
    snap = replace(_snapshot(), running=[busy], pending=[big])
    aware = cycle(snap, 0.0)
    assert not aware.starts and aware.reservations[0].pool == "shanghai/a100"
    blind = cycle(replace(_snapshot(), running=[busy], pending=[big]), 0.0, replace(DEFAULT, weigh_data=False))
    assert blind.starts[0].placement.center == "gansu"


def test_a_center_whose_store_cannot_be_reached_gets_no_job_that_needs_a_copy() -> None:
    unreachable = named("A100-80GB", 8, inputs=(InputData("acme:corpus", 10.0, frozenset({"shanghai"}),
                                                          frozenset({"shanghai"})),), hours=1.0)
    busy = RunningJob("other", "t", "shanghai/a100", (0, 1), 8, 0.0, 600.0)
    result = cycle(replace(_snapshot(), running=[busy], pending=[job("j", unreachable)]), 0.0)
    assert not result.starts and result.reservations[0].pool == "shanghai/a100"  # gansu cannot receive a copy
    assert unmet(unreachable, [p for p in _snapshot().pools if p.center == "gansu"]) == (
        "inputs", "no accepted center holds its inputs or can receive a copy (their stores are not reachable)")
