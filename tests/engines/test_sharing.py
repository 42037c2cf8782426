"""Shares of one device on the local engine, through the live loop: two A100:0.5 jobs run at the same
time on the one device of a pool and are told their share (MPS settings); the device ids the loop picks."""

import time

import pytest

from zhisuan.control import ControlLoop
from zhisuan.control.devices import device_ids
from zhisuan.engines import LocalEngine
from zhisuan.engines.devices import share_env
from zhisuan.model import JobState, parse_job_spec, parse_network
from zhisuan.store import JobStore, connect, migrate

NETWORK = parse_network("""
name: one
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 1, price_per_device_hour: 10, device_ids: [g7]}
""")

SHOW = ("echo start=$(date +%s.%N) dev=$CUDA_VISIBLE_DEVICES mps=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE "
        "mem=$CUDA_MPS_PINNED_DEVICE_MEM_LIMIT share=$ZHISUAN_DEVICE_SHARE; sleep 1.5; echo end=$(date +%s.%N)")


@pytest.fixture
def store(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    return JobStore(db)


def spec(name, acc, run):
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: '{acc}'}}\n"
                          f"constraints: {{time_limit: 60}}\nrun: {run!r}")


def fields(log):
    return dict(part.split("=", 1) for part in log.split() if "=" in part)


def test_two_half_shares_run_at_once_on_the_one_device(store, tmp_path):
    engine = LocalEngine(tmp_path / "runs", grace=0.5)
    jobs = [store.submit(spec(n, "a100:0.5", SHOW), time.time()) for n in ("a", "b")]
    loop = ControlLoop(store, NETWORK, engine)
    end = time.time() + 20
    while time.time() < end and not all(store.get(j).state.terminal for j in jobs):
        loop.step(time.time())
        time.sleep(0.05)
    recs = [store.get(j) for j in jobs]
    assert [r.state for r in recs] == [JobState.SUCCEEDED] * 2
    assert [r.devices for r in recs] == [(("g7",),), (("g7",),)]  # the same device for both
    seen = [fields(loop.fleet.of(r.center).logs(r.engine_handle)) for r in recs]
    for s in seen:
        assert (s["dev"], s["mps"], s["mem"], s["share"]) == ("g7", "50", "0=40G", "0.5")
    assert max(float(s["start"]) for s in seen) < min(float(s["end"]) for s in seen)  # side by side


def test_a_whole_device_job_waits_for_the_shares_to_end(store, tmp_path):
    engine = LocalEngine(tmp_path / "runs", grace=0.5)
    share = store.submit(spec("share", "a100:0.5", "sleep 1"), time.time())
    whole = store.submit(spec("whole", "a100:1", "true"), time.time() + 0.001)
    loop = ControlLoop(store, NETWORK, engine)
    loop.step(time.time())
    assert store.get(share).state is JobState.RUNNING and store.get(whole).state is JobState.PENDING


def test_share_env_per_stack_and_memory():
    assert share_env("cuda", 250, 80.0) == {"ZHISUAN_DEVICE_SHARE": "0.25", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "25",
                                            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=20G"}
    assert share_env("cuda", 333, 80.0)["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=27279MB"
    assert share_env("cuda", 5, None) == {"ZHISUAN_DEVICE_SHARE": "0.005", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "1"}
    assert share_env("cann", 500, 64.0) == {"ZHISUAN_DEVICE_SHARE": "0.5"}  # no MPS outside CUDA


def test_device_ids_pack_shares_and_keep_whole_devices_free():
    slots = ["0", "1", "2"]
    held = [((0,), (("1",),), 300)]  # a 0.3 share on device 1
    assert device_ids(slots, held, (0,), 1, 500) == [["1"]]  # the fullest device it fits
    assert device_ids(slots, held, (0,), 1, 800) == [["0"]]  # does not fit on 1: the first free one
    assert device_ids(slots, held, (0,), 2) == [["0", "2"]]  # whole devices skip a shared one
    assert device_ids(slots, [*held, ((0,), (("0",),), 0)], (0,), 1, 700) == [["1"]]
    assert device_ids(slots, held, (0,), 0) == [[]]  # CPU-only: no device


def test_a_cpu_only_job_runs_live_on_a_cpu_only_pool(store, tmp_path):
    net = parse_network("""
name: mixed
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 1, price_per_device_hour: 10}
      - {name: cpu, accelerator: none, nodes: 1, devices_per_node: 0, cpus_per_node: 16, price_per_cpu_hour: 0.15}
""")
    engine = LocalEngine(tmp_path / "runs", grace=0.5)
    cpu = store.submit(parse_job_spec("name: c\ntenant: acme\nresources: {accelerators: none, cpus: 8}\n"
                                      "constraints: {time_limit: 60}\nrun: echo dev=[$CUDA_VISIBLE_DEVICES]"),
                       time.time())
    loop = ControlLoop(store, net, engine)
    end = time.time() + 20
    while time.time() < end and not store.get(cpu).state.terminal:
        loop.step(time.time())
        time.sleep(0.05)
    rec = store.get(cpu)
    assert rec.state is JobState.SUCCEEDED and rec.pool == "cpu", [t.reason for t in store.transitions(cpu)]
    assert "dev=[]" in loop.fleet.of(rec.center).logs(rec.engine_handle)  # no device is visible to it
