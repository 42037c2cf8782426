"""The Slurm engine against two real Slurm clusters on loopback (scripts/slurm-up.sh, started by
`make test`): alpha (a100-0, a100-1: gpu:a100:8 each; 910b-0: gpu:910b:8) and beta (910b-1: gpu:910b:8)."""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.builders import step_until
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import EngineDown, Launch, build_fleet, with_inventory
from zhisuan.engines.slurm import gres_of, usage_of
from zhisuan.model import JobState, parse_job_spec, parse_network
from zhisuan.store import JobStore, Principal, connect, migrate

ROOT = Path(os.environ.get("ZHISUAN_TEST_SLURM", "/tmp/zhisuan-slurm"))


@pytest.fixture(scope="module")
def clusters():
    if not (ROOT / "alpha" / "etc" / "slurm.conf").exists():
        if os.environ.get("CI"):
            pytest.fail("no Slurm clusters: run the suite with `make test`, which starts them (scripts/slurm-up.sh)")
        pytest.skip("no Slurm clusters (run `make test` or scripts/slurm-up.sh)")
    return ROOT


def node_addr(cluster, node):
    """A test node's address as its cluster's slurm.conf gives it (its namespace's, or loopback)."""
    conf = (ROOT / cluster / "etc" / "slurm.conf").read_text()
    return next(w.split("=", 1)[1] for line in conf.splitlines() if line.startswith(f"NodeName={node} ")
                for w in line.split() if w.startswith("NodeAddr="))


def network_yaml(root):
    return f"""
name: two-slurm
centers:
  - name: alpha
    region: east
    pue: 1.3
    carbon_kg_per_kwh: 0.58
    engine: slurm
    engine_config: {{conf: {root}/alpha/etc/slurm.conf, chips: {{a100: A100 SXM4 80GB, 910b: Ascend 910B3}},
                    prices: {{a100: 12, 910b: 8}}}}
  - name: beta
    region: west
    pue: 1.2
    carbon_kg_per_kwh: 0.1
    engine: slurm
    engine_config: {{conf: {root}/beta/etc/slurm.conf, chips: {{910b: Ascend 910B3}}, prices: {{910b: 9}}}}
tenants: [{{name: acme}}]
"""


@pytest.fixture
def world(clusters, tmp_path):
    declared = parse_network(network_yaml(clusters))
    fleet = build_fleet(declared, tmp_path / "runs")
    network = with_inventory(declared, fleet)
    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    loop = ControlLoop(store, network, fleet, health_every=0.0, misses=2)
    yield store, loop, Service(store, network, loop)
    for rec in store.find(states={JobState.RUNNING, JobState.SCHEDULED}):  # leave the clusters empty for the next
        if rec.engine_handle:
            with contextlib.suppress(OSError, EngineDown):
                loop.fleet.of(rec.center).cancel(rec.engine_handle)


def spec(name, acc, run, nodes=1, recovery="requeue", limit=120):
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: '{acc}', nodes: {nodes}}}\n"
                          f"constraints: {{time_limit: {limit}}}\nrecovery: {recovery}\nrun: {json.dumps(run)}")


def test_gres_strings():
    assert gres_of("gpu:a100:8(S:0-1)") == ("a100", 8)
    assert gres_of("gpu:8") is None and gres_of("") is None


def test_a_center_without_tenant_accounts_is_said_to_share_one(tmp_path, caplog):
    """Without `accounts` every tenant's jobs run as one cluster account: the server says so at start."""
    import logging

    from zhisuan.engines.slurm import SlurmEngine

    with caplog.at_level(logging.WARNING):
        SlurmEngine("alpha", tmp_path, run_as="nobody")
        SlurmEngine("beta", tmp_path, run_as="nobody", accounts={"acme": "acme", "lab": "lab"})
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "alpha" in said[0] and "nobody" in said[0]


def test_busy_from_the_steps_gpuutil_when_slurm_gathers_it():
    # the shape of `sacct --json` (22.05) as seen on these clusters, plus the gres/gpuutil average a
    # cluster with acct_gather_gpu reports; ours has no GPUs to gather from
    job = {"tres": {"allocated": [{"type": "cpu", "name": None, "count": 2},
                                  {"type": "gres", "name": "gpu", "count": 4},
                                  {"type": "gres", "name": "gpu:a100", "count": 4}]},
           "time": {"elapsed": 100},
           "steps": [{"tres": {"requested": {"average": [{"type": "cpu", "name": None, "count": 0}]}}},
                     {"tres": {"requested": {"average": [{"type": "gres", "name": "gpuutil", "count": 60}]}}}]}
    usage = usage_of(job)
    assert (usage.allocated_device_seconds, usage.busy_device_seconds) == (400, pytest.approx(240))
    job["steps"] = job["steps"][:1]
    assert usage_of(job).busy_device_seconds is None
    assert usage.energy_joules is None  # these clusters gather no energy: nothing, not 0 J


def test_consumed_energy_when_the_cluster_gathers_it():
    # steps' `tres.consumed.total` energy, as `sacct --json` reports it (here 0 on a cluster without an
    # AcctGatherEnergyType plugin; a gathering cluster reports joules)
    job = {"tres": {"allocated": [{"type": "gres", "name": "gpu", "count": 2}]}, "time": {"elapsed": 60},
           "steps": [{"tres": {"consumed": {"total": [{"type": "energy", "name": None, "id": 3, "count": 0}]}}}]}
    assert usage_of(job).energy_joules is None
    job["steps"] = [{"tres": {"consumed": {"total": [{"type": "energy", "name": None, "id": 3, "count": 30_000}]}}},
                    {"tres": {"consumed": {"total": [{"type": "energy", "name": None, "id": 3, "count": 12_000}]}}}]
    assert usage_of(job).energy_joules == 42_000


def test_inventory_maps_partitions_and_gres_to_pools(world):
    _, loop, _ = world
    alpha = loop.network.center("alpha")
    pools = {p.name: p for p in alpha.pools}
    assert set(pools) == {"gpu-a100", "gpu-910b"}
    assert pools["gpu-a100"].node_names == ["a100-0", "a100-1"] and pools["gpu-a100"].devices_per_node == 8
    assert pools["gpu-a100"].accelerator == "A100 SXM4 80GB" and pools["gpu-910b"].accelerator == "Ascend 910B3"
    assert [p.node_names for p in loop.network.center("beta").pools] == [["910b-1"]]


def test_a_gang_spans_two_nodes_and_sees_its_gpus(world):
    store, loop, svc = world
    job = store.submit(spec("gang", "a100:8", "echo rank=$ZHISUAN_NODE_RANK/$ZHISUAN_NNODES node=$SLURMD_NODENAME "
                                              "gpus=$CUDA_VISIBLE_DEVICES", nodes=2), time.time())
    rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED})
    assert rec.state is JobState.SUCCEEDED and (rec.center, rec.pool) == ("alpha", "gpu-a100")
    logs = svc.logs(job, Principal("acme", False))
    assert "rank=0/2 node=a100-0 gpus=0,1,2,3,4,5,6,7" in logs and "rank=1/2 node=a100-1" in logs


def test_a_job_goes_to_the_center_that_can_start_it_first(world):
    store, loop, svc = world
    hog = store.submit(spec("hog", "910b3:8", "sleep 60"), time.time())
    first = step_until(loop, store, hog, {JobState.RUNNING})
    other = "beta" if first.center == "alpha" else "alpha"
    run = "echo on $SLURM_CLUSTER_NAME/$SLURMD_NODENAME npu=$ASCEND_RT_VISIBLE_DEVICES"
    job = store.submit(spec("next", "910b3:8", run), time.time())
    rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED})
    assert rec.state is JobState.SUCCEEDED and rec.center == other  # not queued behind the hog
    logs = svc.logs(job, Principal("acme", False))
    assert f"on {other}/" in logs and "npu=0,1,2,3,4,5,6,7" in logs


def test_a_slurm_job_runs_as_the_cluster_account_without_the_servers_secrets(world, tmp_path):
    store, loop, svc = world
    secret = tmp_path / "runs" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("the admin token")
    secret.chmod(0o600)
    os.environ["ZHISUAN_CANARY"] = "server-secret"
    try:
        job = store.submit(spec("who", "a100:1", f"id -un; cat {secret}; env"), time.time())
        rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED})
    finally:
        os.environ.pop("ZHISUAN_CANARY", None)
    logs = svc.logs(job, Principal("acme", False))
    assert rec.state is JobState.SUCCEEDED and logs.splitlines()[0] == "nobody"  # not root
    assert "the admin token" not in logs and "Permission denied" in logs
    assert "server-secret" not in logs  # sbatch --export=NONE


def test_cancel_reaches_slurm(world):
    store, loop, svc = world
    job = store.submit(spec("long", "a100:1", "sleep 120"), time.time())
    rec = step_until(loop, store, job, {JobState.RUNNING})
    svc.cancel(job, Principal("acme", False), time.time())
    engine = loop.fleet.of(rec.center)
    end = time.time() + 20
    while time.time() < end and engine.poll(rec.engine_handle).state == "running":
        time.sleep(0.3)
    assert engine.poll(rec.engine_handle).reason.startswith("slurm CANCELLED")
    assert store.get(job).state is JobState.CANCELLED


def test_a_failed_jobs_exit_code_and_log_reach_the_user(world):
    store, loop, svc = world
    job = store.submit(spec("bad", "a100:2", "echo about to fail; echo oops >&2; exit 3"), time.time())
    rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED})
    assert rec.state is JobState.FAILED and rec.exit_code == 3 and "slurm FAILED" in rec.reason
    logs = svc.logs(job, Principal("acme", False))
    assert "about to fail" in logs and "oops" in logs
    usage = loop.fleet.of("alpha").usage(rec.engine_handle)
    assert usage is not None and usage.busy_device_seconds is None and "sacct" in usage.source


def test_a_stopped_cluster_fails_over(world, clusters):
    store, loop, svc = world
    beta = loop.fleet.of("beta")
    blocker = store.submit(spec("blocker", "910b3:8", "sleep 6"), time.time())  # takes a whole 910b node ...
    step_until(loop, store, blocker, {JobState.RUNNING})
    moved = store.submit(spec("moved", "910b3:4", "sleep 100; echo done on $SLURM_CLUSTER_NAME"), time.time())
    doomed = store.submit(spec("doomed", "910b3:4", "sleep 30", recovery="fail"), time.time())
    assert {step_until(loop, store, j, {JobState.RUNNING}).center for j in (moved, doomed)} == {"beta"}  # ... the other
    old_handle = store.get(moved).engine_handle
    ctld = clusters / "beta" / "run" / "slurmctld.pid"
    pid = int(ctld.read_text())
    try:
        os.kill(pid, signal.SIGTERM)  # beta's controller stops mid-run
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        with pytest.raises(EngineDown):
            beta.health()
        rec = step_until(loop, store, doomed, {JobState.FAILED})
        assert "beta down" in rec.reason and "on_center_loss: fail" in rec.reason
        rec = step_until(loop, store, moved, {JobState.RUNNING, JobState.SUCCEEDED}, limit=30)
        assert rec.center == "alpha" and rec.attempts == 2  # requeued, then started where it could
        reasons = [t.reason for t in store.transitions(moved)]
        assert any("center beta down" in r for r in reasons)
        assert "requeued elsewhere from scratch (on_center_loss: requeue)" in reasons
        assert "beta" in loop.down
        beta_row = next(c for c in svc.centers() if c["name"] == "beta")
        assert beta_row["healthy"] is False and "slurmctld does not answer" in beta_row["down_reason"]
    finally:
        up = subprocess.run(["bash", "scripts/slurm-up.sh"], capture_output=True, text=True,
                            env={**os.environ, "ZHISUAN_SLURM_ROOT": str(clusters)})
        assert up.returncode == 0, up.stdout + up.stderr
    loop.step(time.time())
    assert "beta" not in loop.down  # answers again, and the copy left running there is stopped
    job_id = beta.native(old_handle).split("@")[0]
    env = {**os.environ, "SLURM_CONF": str(clusters / "beta" / "etc" / "slurm.conf")}

    def state() -> str:
        out = subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], env=env,
                             capture_output=True, text=True).stdout.strip()
        return out or "GONE"

    end = time.time() + 30
    while time.time() < end and state() == "RUNNING":
        loop.step(time.time())
        time.sleep(0.3)
    assert state() != "RUNNING"  # cancelled (or, if it ended meanwhile, completing): beta runs it no more


def test_zhisuan_server_runs_a_network_of_slurm_clusters(clusters, tmp_path, root):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app
    from zhisuan.serve.process import ServerProcess

    net = (root / "examples" / "networks" / "slurm2.yaml").read_text().replace("/tmp/zhisuan-slurm", str(clusters))
    (tmp_path / "net.yaml").write_text(net)
    server = ServerProcess(tmp_path / "net.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs").start()
    try:
        env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme"), "COLUMNS": "200"}
        res = CliRunner().invoke(app, ["centers"], env=env)
        assert res.exit_code == 0, res.output
        for text in ("alpha", "beta", "slurm", "local", "gpu-a100", "2×8", "Ascend 910B3"):
            assert text in res.output
        spec = tmp_path / "job.yaml"
        spec.write_text("name: over-http\ntenant: acme\nresources: {accelerators: a100:8, nodes: 2}\n"
                        "run: echo rank $ZHISUAN_NODE_RANK on $SLURMD_NODENAME\n")
        res = CliRunner().invoke(app, ["submit", str(spec), "--follow"], env=env)
        assert res.exit_code == 0, res.output
        assert "on alpha/gpu-a100" in res.output and "rank 1 on a100-1" in res.output
    finally:
        server.stop()


def test_a_two_node_gang_rendezvous_on_slurm_from_its_environment_alone(world):
    from tests.builders import RENDEZVOUS

    store, loop, svc = world
    job = store.submit(spec("rendezvous", "a100:8", RENDEZVOUS, nodes=2), time.time())
    rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED}, limit=90)
    logs = svc.logs(job, Principal("acme", False))
    assert rec.state is JobState.SUCCEEDED, logs
    addr = node_addr("alpha", "a100-0")  # member 0's node, where the master listens
    assert f"rank 0/2 joined 3 via {addr}:" in logs and f"rank 1/2 joined 3 via {addr}:" in logs
    assert "hosts a100-0,a100-1 devices 0,1,2,3,4,5,6,7 of 8" in logs


def dataset(folder: Path) -> Path:
    """A dataset's checked copy as the server or an agent keeps it: root's read-only files, a private root."""
    copy = folder / "datasets" / "acme" / "corpus"
    (copy / "sub").mkdir(parents=True)
    (copy / "a.txt").write_text("hello data\n")
    (copy / "sub" / "b.txt").write_text("more\n")
    for f in copy.rglob("*"):
        f.chmod(0o444 if f.is_file() else 0o711)
    (folder / "datasets").chmod(0o700)
    return copy


def test_a_slurm_job_reads_its_inputs_read_only(clusters, tmp_path):
    engine = build_fleet(parse_network(network_yaml(clusters)), tmp_path / "runs").of("alpha")
    pool = next(p for p in engine.inventory() if p.accelerator.startswith("A100"))
    launch = Launch("j-in", "in", "id -un; cat $ZHISUAN_INPUT_TRAIN/a.txt $ZHISUAN_INPUT_TRAIN/sub/b.txt; "
                    "touch $ZHISUAN_INPUT_TRAIN/x 2>/dev/null || echo read-only", pool, (0,), 1, [["0"]], {},
                    inputs={"train": str(dataset(tmp_path / "runs"))})
    handle = engine.submit(launch)
    end = time.time() + 60
    while engine.poll(handle).state in ("queued", "running") and time.time() < end:
        time.sleep(0.3)
    assert engine.poll(handle).state == "succeeded"
    assert engine.logs(handle).splitlines()[:4] == ["nobody", "hello data", "more", "read-only"]
