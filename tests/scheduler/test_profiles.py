"""Scheduler profiles in the network file: typed, checked when the policy is built, errors naming the field."""

import pytest

from zhisuan.model import SchedulerProfile, SpecError, parse_network
from zhisuan.scheduler import POLICIES
from zhisuan.scheduler.profiles import policy_for

NET = """
name: n
centers:
  - {name: c, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: p, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]}
scheduler:
  policy: las
  weights: {carbon: 0, price: 6}
  args:
    least-attained: {thresholds: [1h, 10h]}
  reservations: 3
control: {grace: 5s, queue_limit: 2m}
"""


def test_a_profile_overrides_weights_arguments_and_modes():
    net = parse_network(NET)
    pol = policy_for(net.scheduler)
    assert pol.name == "las" and pol.reservations == 3 and pol.preemption
    assert dict((s.name, w) for s, w in pol.scores)["carbon"] == 0.0
    assert pol.queue_sort.thresholds == (3600.0, 36000.0) == pol.priority_of.thresholds
    assert (net.control.grace, net.control.queue_limit) == (5.0, 120.0)


def test_another_policy_keeps_its_own_modes_but_takes_the_networks_tunings():
    pol = policy_for(parse_network(NET).scheduler, "fifo")
    assert pol.backfill == "none" and pol.reservations == POLICIES["fifo"].reservations
    assert dict((s.name, w) for s, w in pol.scores)["price"] == 6.0


def test_arguments_for_policies_the_profile_does_not_run_are_checked_and_kept_for_them():
    profile = SchedulerProfile(args={"least-attained": {"thresholds": [3250, 7200], "starvation": 2},
                                     "gavel": {"round": "10m"}})
    assert policy_for(profile) == POLICIES["zhisuan"]  # nothing of zhisuan's own changes
    las = policy_for(profile, "las")
    assert (las.queue_sort.thresholds, las.queue_sort.starvation) == ((3250.0, 7200.0), 2.0)
    assert policy_for(profile, "gavel").queue_sort.round == 600.0


def test_defaults_are_the_built_in_policy():
    pol = policy_for(SchedulerProfile())
    assert pol == POLICIES["zhisuan"]


@pytest.mark.parametrize(("profile", "field"), [
    ({"policy": "lasso"}, "scheduler.policy"),
    ({"weights": {"prize": 1}}, "scheduler.weights.prize"),
    ({"weights": {"start": 0, "price": 0, "carbon": 0, "locality": 0, "fragmentation": 0}}, "scheduler.weights"),
    ({"args": {"fair-share": {"halflife": 3}}}, "scheduler.args.fair-share.halflife"),
    ({"args": {"fair-share": {"half_life": "soon"}}}, "scheduler.args.fair-share.half_life"),
    ({"args": {"least-attaned": {}}}, "scheduler.args.least-attaned"),
    ({"args": {"least-attained": {"thresholds": "soon"}}}, "scheduler.args.least-attained.thresholds"),
    ({"args": {"gavel": {"rounds": 60}}}, "scheduler.args.gavel.rounds"),
])
def test_bad_profiles_name_the_field(profile, field):
    with pytest.raises(SpecError) as e:
        policy_for(SchedulerProfile(**profile))
    assert e.value.errors[0][0] == field


def test_bad_shapes_are_refused_when_the_network_is_read():
    with pytest.raises(SpecError, match=r"scheduler\.weights"):
        parse_network(NET.replace("carbon: 0", "carbon: .nan"))
    with pytest.raises(SpecError, match=r"control\.grace"):
        parse_network(NET.replace("grace: 5s", "grace: -1"))
