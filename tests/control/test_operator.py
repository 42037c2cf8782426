"""A center operator drains a node in the live loop (real local engine): the job running there goes on,
nothing new starts there (a waiting job says why), and it serves again once undrained; taking the whole
center out drains every node."""

import time

import pytest

from zhisuan.control import ControlLoop
from zhisuan.control.errors import Forbidden
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.model import JobState, parse_network
from zhisuan.store import JobStore, Principal, connect, migrate

NETWORK = parse_network("""
name: one
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools: [{name: gpu, accelerator: a100, nodes: 2, devices_per_node: 1, price_per_device_hour: 10}]
  - name: there
    region: west
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 1, price_per_device_hour: 99}]
""")
ACME = Principal("acme", False)
OPS = Principal("", False, "operator", centers=("here",))


def job(name, run):
    return f"name: {name}\ntenant: acme\nresources: {{accelerators: a100:1}}\nrun: {run!r}\n"


@pytest.fixture
def world(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store = JobStore(engine)
    loop = ControlLoop(store, NETWORK, LocalEngine(tmp_path / "runs", grace=0.5))
    svc = Service(store, NETWORK, loop)
    yield store, loop, svc
    for rec in store.find():
        if not rec.state.terminal:
            svc.cancel(rec.id, Principal("ops", True), time.time())


def steps(loop, n=12, pause=0.2):
    for _ in range(n):
        loop.step(time.time())
        time.sleep(pause)


def until(loop, check, limit=20.0):
    end = time.time() + limit
    while time.time() < end:
        loop.step(time.time())
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_drained_node_finishes_its_job_takes_no_new_one_and_serves_again_undrained(world):
    store, loop, svc = world
    a = svc.submit(job("a", "sleep 3"), ACME, time.time()).id
    until(loop, lambda: store.get(a).state is JobState.RUNNING)
    node = store.get(a).nodes[0]
    svc.operators.drain(OPS, "here", "gpu", [node], "fan replaced", time.time())
    b = svc.submit(job("b", "sleep 30"), ACME, time.time()).id
    until(loop, lambda: store.get(b).state is JobState.RUNNING)
    assert store.get(b).center == "here" and store.get(b).nodes[0] != node  # the other node of the cheap center
    c = svc.submit(job("c", "echo c ran"), ACME, time.time()).id
    until(loop, lambda: store.get(a).state is JobState.SUCCEEDED)  # the drained node's job went on to its end
    steps(loop)
    rec = store.get(c)
    # neither the drained node (free now) nor the busy one: c went to the dear center, or waits naming the drain
    assert rec.center == "there" or "drained by its operator: fan replaced" in (rec.wait_reason or ""), rec
    svc.cancel(b, ACME, time.time())
    svc.operators.drain(OPS, "here", None, None, "center out for maintenance", time.time())  # the whole center
    d = svc.submit(job("d", "echo d ran"), ACME, time.time()).id
    steps(loop)
    assert store.get(d).center != "here"
    view = svc.operators.view(OPS, "here", svc.view(), svc.down)
    assert sum(len(p["drained"]) for p in view["pools"]) == 2
    assert svc.operators.undrain(OPS, "here", None, None, time.time())["undrained"] == 2
    e = svc.submit(job("e", "echo e ran"), ACME, time.time()).id
    until(loop, lambda: store.get(e).state is JobState.SUCCEEDED)
    assert store.get(e).center == "here"  # back in service: the cheaper center again


def test_an_operator_acts_only_on_its_own_centers(world):
    _, _, svc = world
    with pytest.raises(Forbidden, match="you operate here, not 'there'"):
        svc.operators.drain(OPS, "there", None, None, "", time.time())
    with pytest.raises(Forbidden):
        svc.operators.view(OPS, "there", svc.view(), svc.down)
    assert svc.operators.centers(OPS) == ["here"]


def test_job_references_are_keyed_with_the_networks_own_secret(world, tmp_path):
    from zhisuan.control.operator import job_ref
    from zhisuan.store.secrets import shared_secret

    store, _, _ = world
    key = shared_secret(store.engine, "operator-job-refs")
    assert key == shared_secret(store.engine, "operator-job-refs") and len(key) == 32  # made once, then the same
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    migrate(other)
    assert shared_secret(other, "operator-job-refs") != key  # another network: other references
    assert job_ref(key, "j-0123456789ab") == job_ref(key, "j-0123456789ab") != job_ref(key, "j-0123456789ac")
