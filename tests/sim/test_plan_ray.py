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


def test_ship_sends_this_zhisuan_to_the_workers():
    """`--ship`: the workers import the zhisuan the driver sent (Ray's runtime environment), not one installed
    on the cluster — so a cluster with only the dependencies can run a plan."""
    if not CLIENT:
        pytest.skip("no Ray head")
    import ray

    from zhisuan.sim.plan.runner import code_env, connect_ray

    @ray.remote
    def where() -> str:
        import zhisuan

        return zhisuan.__file__

    connect_ray(CLIENT, code_env())  # retried as a plan's driver is: the proxy's first start can fail under load
    try:
        path = ray.get(where.remote(), timeout=120)
    finally:
        ray.shutdown()
    assert "runtime_resources" in path and not path.startswith(str(ROOT)), path
    plan, network = load_plan(ROOT / "examples" / "plans" / "cn10-growth.yaml")
    plan = plan.model_copy(update={"demand": plan.demand.model_copy(update={"limit": 300})})
    shipped = run_plan(plan, network, ray_address=CLIENT, ship=True)
    assert [r.cell.p95_wait for r in shipped.rows] == [r.cell.p95_wait for r in run_plan(plan, network).rows]
