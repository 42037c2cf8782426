"""The live loop on a real Slurm cluster shared with its own users (scripts/slurm-up.sh, started by `make
test`): their jobs steer placement and expected starts, a job stuck in Slurm's queue is withdrawn and
placed again, and a preemption is carried out with `scancel --signal=TERM` and a requeue."""

import contextlib
import json
import os
import subprocess
import time

import pytest

from tests.builders import step_until
from tests.engines.test_slurm import clusters  # noqa: F401 (fixture)
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import EngineDown, build_fleet, with_inventory
from zhisuan.model import JobState, parse_network
from zhisuan.store import JobStore, Principal, connect, migrate


def network_yaml(root, policy="zhisuan", load_every="1s", queue_limit="10m"):
    return f"""
name: shared
centers:
  - name: alpha
    region: east
    pue: 1.25
    carbon_kg_per_kwh: 0.58
    engine: slurm
    engine_config: {{conf: {root}/alpha/etc/slurm.conf, chips: {{a100: A100 SXM4 80GB, 910b: Ascend 910B3}},
                    prices: {{a100: 10, 910b: 8}}}}
  - name: lab
    region: east
    pue: 1.5
    carbon_kg_per_kwh: 0.58
    pools: [{{name: a100, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 12}}]
tenants: [{{name: acme}}]
scheduler: {{policy: {policy}}}
control: {{grace: 5s, queue_limit: {queue_limit}, load_every: {load_every}}}
"""


@pytest.fixture
def make(clusters, tmp_path):  # noqa: F811
    made = []

    def world(**kw):
        declared = parse_network(network_yaml(clusters, **kw))
        fleet = build_fleet(declared, tmp_path / "runs")
        network = with_inventory(declared, fleet)
        db = connect(f"sqlite:///{tmp_path / 'z.db'}")
        migrate(db)
        store = JobStore(db)
        loop = ControlLoop(store, network, fleet, health_every=60.0)
        made.append((store, fleet))
        return store, loop, Service(store, network, loop)

    yield world
    slurm(clusters, "scancel", "--partition=gpu")  # the cluster's own jobs and zhisuan's: empty for the next test
    for store, fleet in made:
        for rec in store.find(states={JobState.RUNNING, JobState.SCHEDULED}):
            if rec.engine_handle and rec.center == "lab":
                with contextlib.suppress(OSError, EngineDown):
                    fleet.of("lab").cancel(rec.engine_handle)


def slurm(root, *args):
    env = {**os.environ, "SLURM_CONF": str(root / "alpha" / "etc" / "slurm.conf")}
    return subprocess.run(list(args), env=env, capture_output=True, text=True, check=True).stdout.strip()


def fill_alpha_a100(root, minutes=10):
    """Alpha's own users take both A100 nodes, straight through sbatch (not through zhisuan)."""
    ids = [slurm(root, "sbatch", "--parsable", "--gres=gpu:a100:8", f"--time={minutes}", f"--nodelist=a100-{n}",
                 "--output=/dev/null", "--wrap", "sleep 300") for n in (0, 1)]
    end = time.time() + 30
    while time.time() < end:
        states = slurm(root, "squeue", "-h", "-o", "%T", "-j", ",".join(ids)).split()
        if states == ["RUNNING", "RUNNING"]:
            return ids
        time.sleep(0.3)
    raise AssertionError(f"alpha's own jobs did not start: {states}")


def spec(name, run, acc="a100:2", nodes=1, priority=0, limit=120):
    return f"name: {name}\ntenant: acme\npriority: {priority}\nresources: {{accelerators: '{acc}', nodes: {nodes}}}\n" \
           f"constraints: {{time_limit: {limit}}}\nrun: {json.dumps(run)}\n"


ACME = Principal("acme", False)


def test_slurms_own_jobs_steer_placement_and_the_quote_says_why(make, clusters):  # noqa: F811
    store, loop, svc = make()
    loop.step(time.time())
    _, free = svc.quote(spec("probe", "true"), ACME, time.time())
    assert free[0].center == "alpha" and free[0].start_delay == 0.0  # cheaper, and free: zhisuan would go there
    own = fill_alpha_a100(clusters, minutes=10)
    loop.step(time.time() + 1.0)  # the next look at alpha's own load
    _, quote = svc.quote(spec("probe", "true"), ACME, time.time())
    alpha = next(c for c in quote if c.center == "alpha" and c.pool == "gpu-a100")
    assert 9 * 60 <= alpha.start_delay <= 10 * 60 + 5  # until the first of its own jobs' time limits
    assert any(f"slurm job {own[0]}" in w or f"slurm job {own[1]}" in w for w in alpha.waits_for), alpha.waits_for
    assert next(c for c in quote if c.center == "lab").start_delay == 0.0
    row = next(p for c in svc.centers() if c["name"] == "alpha" for p in c["pools"] if p["name"] == "gpu-a100")
    assert (row["free"], row["own_load"]) == (0, 16)
    job = svc.submit(spec("steered", "echo on $ZHISUAN_JOB_ID"), ACME, time.time()).id
    rec = step_until(loop, store, job, {JobState.SUCCEEDED})
    assert rec.center == "lab"  # not queued behind alpha's own users


def test_a_job_stuck_in_slurms_queue_is_withdrawn_and_placed_again(make, clusters):  # noqa: F811
    store, loop, svc = make(load_every="1h", queue_limit="3s")  # zhisuan looks at alpha's load once, now
    loop.step(time.time())
    fill_alpha_a100(clusters)  # ... and alpha's own users take the A100s right after
    job = svc.submit(spec("stuck", "echo ran on $SLURM_CLUSTER_NAME$ZHISUAN_JOB_ID"), ACME, time.time()).id
    rec = step_until(loop, store, job, {JobState.SCHEDULED})
    assert rec.center == "alpha"  # its stale view said alpha was free and cheapest
    end = time.time() + 10
    while time.time() < end and not (store.get(job).wait_reason or "").startswith("queued at alpha"):
        loop.step(time.time())
        time.sleep(0.3)
    assert "queued at alpha: slurm" in store.get(job).wait_reason  # Slurm's own Reason, shown to the user
    rec = step_until(loop, store, job, {JobState.SUCCEEDED}, limit=30)
    assert rec.center == "lab" and rec.attempts == 1  # withdrawn from alpha, placed on lab, ran once
    reasons = [t.reason for t in store.transitions(job)]
    assert any(r.startswith("withdrawn from alpha's queue after") for r in reasons), reasons
    handle = next(h for h in [rec.engine_handle] if h)
    assert svc.logs(job, ACME).strip() == f"ran on {job}" and handle


def test_a_preemption_on_slurm_signals_the_victim_and_requeues_it(make, clusters, tmp_path):  # noqa: F811
    store, loop, svc = make(policy="priority")
    resumable = ('if [ -f "$ZHISUAN_CHECKPOINT_DIR/saved-$SLURM_NODEID" ]; then echo "node $SLURM_NODEID resumes '
                 'attempt $ZHISUAN_ATTEMPT"; exit 0; fi; trap \': > "$ZHISUAN_CHECKPOINT_DIR/saved-$SLURM_NODEID";'
                 ' exit 0\' TERM; echo "node $SLURM_NODEID ready"; sleep 120 & wait')
    low = svc.submit(spec("low", resumable, "a100:8", nodes=2), ACME, time.time()).id
    rec = step_until(loop, store, low, {JobState.RUNNING})
    victim = rec.engine_handle
    end = time.time() + 30  # both members have set their trap: a SIGTERM before that would meet the default
    while time.time() < end and svc.logs(low, ACME).count("ready") < 2:
        loop.step(time.time())
        time.sleep(0.2)
    assert svc.logs(low, ACME).count("ready") == 2, svc.logs(low, ACME)
    high = svc.submit(spec("high", "echo high on $SLURMD_NODENAME", "a100:8", nodes=2, priority=5), ACME,
                      time.time()).id
    rec = step_until(loop, store, high, {JobState.SUCCEEDED})
    assert "high on a100-0" in svc.logs(high, ACME)
    engine = loop.fleet.of("alpha")
    assert engine.poll(victim).state == "succeeded"  # it caught SIGTERM, saved and exited within its grace
    saved = sorted(p.name for p in tmp_path.glob(f"runs/**/{low}/checkpoint/saved-*"))
    try:
        rec = step_until(loop, store, low, {JobState.SUCCEEDED})
    except AssertionError as e:
        raise AssertionError((e, saved, svc.logs(low, ACME), slurm(clusters, "squeue", "-a"),
                              slurm(clusters, "sinfo", "-N", "-o", "%N %T %E"))) from None
    assert rec.attempts == 2 and "node 1 resumes attempt 2" in svc.logs(low, ACME)
    states = [t.to_state.value for t in store.transitions(low)]
    assert states[:5] == ["pending", "scheduled", "running", "preempted", "pending"]
