"""The two real Slurm clusters (scripts/slurm-up.sh) joined as their operators would: each one's agent runs
inside the cluster's own network namespace with the cluster's slurm.conf, and connects out to the server
through a fault proxy (20 ms each way). The server has no Slurm configuration at all: it reaches the
clusters only through their agents. Their pools come from the agents' `--inventory`."""

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from tests.agent.wan import Wan, need_namespaces
from tests.builders import RENDEZVOUS

ROOT = Path(os.environ.get("ZHISUAN_TEST_SLURM", "/tmp/zhisuan-slurm"))
CONFIG = {"alpha": {"chips": {"a100": "A100 SXM4 80GB", "910b": "Ascend 910B3"}, "prices": {"a100": 10, "910b": 8}},
          "beta": {"chips": {"910b": "Ascend 910B3"}, "prices": {"910b": 7}}}


@pytest.fixture(scope="module")
def clusters():
    need_namespaces()
    if not (ROOT / "alpha" / "etc" / "slurm.conf").exists() or not Path("/var/run/netns/zs-alpha").exists():
        if os.environ.get("CI"):
            pytest.fail("no Slurm clusters in namespaces: run the suite with `make test` (scripts/slurm-up.sh)")
        pytest.skip("no Slurm clusters in namespaces (run `make test` or scripts/slurm-up.sh)")
    return ROOT


@pytest.fixture
def wan(clusters, tmp_path):
    w = Wan(tmp_path, "")
    for name, index in (("alpha", 1), ("beta", 2)):
        w.center(name, index, engine="slurm", owned=False,
                 config={"conf": str(clusters / name / "etc" / "slurm.conf"), "run_as": "zhisuan-job", **CONFIG[name]})
    centers = []
    for name, region in (("alpha", "east"), ("beta", "west")):
        pools = yaml.safe_load(w.inventory(name))["pools"]
        centers.append({"name": name, "region": region, "join": "agent", "pue": 1.2, "carbon_kg_per_kwh": 0.5,
                        "engine": "slurm", "pools": pools})
    w.write_network(json.dumps({"name": "slurm-agents", "tenants": [{"name": "acme"}], "centers": centers,
                                "control": {"center_timeout": "20s", "beat_every": "1s"}}))
    try:
        w.start()
        for name in ("alpha", "beta"):
            w.start_agent(name)
        w.wait_connected("alpha", "beta")
        yield w
    finally:
        w.stop()


def spec(name, acc, run, nodes=1):
    return (f"name: {name}\nresources: {{accelerators: '{acc}', nodes: {nodes}}}\nconstraints: {{time_limit: 120}}\n"
            f"run: {json.dumps(run)}\n")


def test_the_slurm_clusters_run_jobs_through_their_agents_only(wan):
    acme = wan.client("acme")
    gang = wan.job("acme", spec("gang", "a100:8", RENDEZVOUS, nodes=2))
    ascend = wan.job("acme", spec("ascend", "910b3:8", "echo on $SLURM_CLUSTER_NAME npu=$ASCEND_RT_VISIBLE_DEVICES"))
    rec = wan.until("acme", gang, {"succeeded", "failed"}, limit=120)
    logs = acme.get(f"/v1/jobs/{gang}/logs").text
    assert rec["state"] == "succeeded" and rec["center"] == "alpha", (rec["history"], logs)
    assert logs.count("joined 3 via 198.18.1.2:") == 2  # the gang met at member 0's node, inside alpha
    rec = wan.until("acme", ascend, {"succeeded", "failed"}, limit=120)
    assert rec["state"] == "succeeded", rec["history"]
    assert f"on {rec['center']} npu=0,1,2,3,4,5,6,7" in acme.get(f"/v1/jobs/{ascend}/logs").text
    server_log = (wan.tmp / "runs" / "server.log").read_text()
    assert "sbatch" not in server_log and "slurm.conf" not in server_log  # the server never ran Slurm itself


def test_a_cancel_reaches_slurm_through_the_agent(wan):
    acme = wan.client("acme")
    job = wan.job("acme", spec("long", "a100:1", "sleep 300"))
    wan.until("acme", job, {"running"}, limit=60)
    acme.post(f"/v1/jobs/{job}/cancel")
    admin = wan.client("admin")
    end = time.time() + 30
    while time.time() < end and next(a for a in admin.get("/v1/agents").json() if a["center"] == "alpha")["runs"]:
        time.sleep(0.3)  # its agent saw Slurm end it, and the server had it forget the run
    assert next(a for a in admin.get("/v1/agents").json() if a["center"] == "alpha")["runs"] == 0
    squeue = os.popen(f"SLURM_CONF={ROOT}/alpha/etc/slurm.conf squeue -h -o %j").read()
    assert job not in squeue
