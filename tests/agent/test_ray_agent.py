"""The Ray head (scripts/ray-up.sh) joined as a center through its agent: the agent beside the head reaches it
at its Jobs API, the server reaches the center only through the agent (across a fault proxy, 20 ms each way).
The head stays on loopback (Ray binds its servers to one address; see scripts/ray-up.sh), so its agent does
too; the Slurm clusters' agents are the ones in namespaces (test_slurm_agents.py)."""

import json
import os

import pytest
import yaml

from zhisuan.bench.wanet import Wan

ADDRESS = os.environ.get("ZHISUAN_TEST_RAY", "")


@pytest.fixture
def wan(tmp_path):
    if not ADDRESS:
        if os.environ.get("CI"):
            pytest.fail("no Ray head: run the suite with `make test`, which starts one (scripts/ray-up.sh)")
        pytest.skip("no Ray head (run `make test` or scripts/ray-up.sh and set ZHISUAN_TEST_RAY)")
    w = Wan(tmp_path, "", tls=False)
    w.center("rayc", 0, engine="ray", namespace=False, config={
        "address": ADDRESS, "resources": {"A100": "A100 SXM4 80GB", "910B": "Ascend 910B3"},
        "prices": {"A100": 12, "910B": 8}, "run_as_uid": 65534})
    pools = yaml.safe_load(w.inventory("rayc"))["pools"]
    w.write_network(json.dumps({"name": "ray-agent", "tenants": [{"name": "acme"}], "centers": [
        {"name": "rayc", "region": "east", "join": "agent", "engine": "ray", "pue": 1.2, "carbon_kg_per_kwh": 0.5,
         "pools": pools}]}))
    try:
        w.start()
        w.start_agent("rayc")
        w.wait_connected("rayc")
        yield w
    finally:
        w.stop()


def test_a_ray_head_runs_jobs_through_its_agent(wan):
    acme = wan.client("acme")
    job = wan.job("acme", "name: r\nresources: {accelerators: 'a100:2'}\nrun: echo hello from ray; id -u\n")
    rec = wan.until("acme", job, {"succeeded", "failed"}, limit=90)
    assert rec["state"] == "succeeded" and rec["center"] == "rayc", rec["history"]
    logs = acme.get(f"/v1/jobs/{job}/logs").text
    assert "hello from ray" in logs and "65534" in logs  # the agent's engine dropped it to nobody
