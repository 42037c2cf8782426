"""`zhisuan plan --ray`: the cells run as tasks on the real local Ray head (scripts/ray-up.sh, started by
`make test`) and give the same figures as worker processes here."""

import os

import pytest

from tests.builders import ROOT
from zhisuan.model.plan import load_plan
from zhisuan.sim.plan.runner import run_plan

CLIENT = os.environ.get("ZHISUAN_TEST_RAY_CLIENT", "")


def test_a_plan_runs_on_a_ray_cluster_as_it_does_here():
    if not CLIENT:
        if os.environ.get("CI"):
            pytest.fail("no Ray head: run the suite with `make test`, which starts one (scripts/ray-up.sh)")
        pytest.skip("no Ray head (run `make test` or scripts/ray-up.sh and set ZHISUAN_TEST_RAY_CLIENT)")
    plan, network = load_plan(ROOT / "examples" / "plans" / "cn10-growth.yaml")
    plan = plan.model_copy(update={"demand": plan.demand.model_copy(update={"limit": 800})})
    done = []
    on_ray = run_plan(plan, network, ray_address=CLIENT, progress=done.append)
    here = run_plan(plan, network, workers=1)
    assert len(done) == 6 * 3 + 1  # every option x scenario, and build-guiyang as silos
    key = [(r.option, r.scenario, r.cell.p95_wait, r.cell.revenue, r.money.npv) for r in on_ray.rows]
    assert key == [(r.option, r.scenario, r.cell.p95_wait, r.cell.revenue, r.money.npv) for r in here.rows]
