"""The driver contract: world events in, the state's next decisions follow from them."""

import math

from tests.builders import job, named, pool
from zhisuan.scheduler import POLICIES, RunningJob, TenantState
from zhisuan.scheduler.explain import explain
from zhisuan.scheduler.ledger import HALF_LIFE
from zhisuan.scheduler.state import SchedulerState


def state(policy="zhisuan", nodes=1, size=2, tenants=("acme", "lab")):
    return SchedulerState([pool("c", "p", "a100", nodes=nodes, size=size)], POLICIES[policy],
                          {t: TenantState(t) for t in tenants})


def started(result):
    return [s.job_id for s in result.starts]


def test_fair_share_follows_recorded_usage_not_tenant_names():
    for heavy, light in [("lab", "acme"), ("acme", "lab")]:
        st = state()
        st.submit(job("warm", named(per_node=2), 0.0, 100.0, tenant=heavy))
        assert started(st.cycle(0.0)) == ["warm"]
        st.end("warm", 1000.0)  # 2 devices x 1000 s of service for the heavy tenant
        st.submit(job("older", named(per_node=2), 1001.0, tenant=heavy))
        st.submit(job("newer", named(per_node=2), 1002.0, tenant=light))
        assert started(st.cycle(1003.0)) == ["newer"], heavy
        assert st.tenants[heavy].usage == 2000.0


def test_external_load_holds_devices_until_its_expected_end():
    st = state(size=8)
    st.set_external("c/p", [RunningJob("slurm:41", "", "c/p", (0,), 6, 0.0, 500.0)])
    st.submit(job("big", named(per_node=4), 10.0))
    st.submit(job("small", named(per_node=2), 11.0))
    assert started(st.cycle(20.0)) == ["small"]
    [cand] = explain(st.snapshot(), job("q", named(per_node=4)), 20.0)
    assert cand.start_delay == 480.0  # when the center's own job is expected to end
    st.set_external("c/p", [])  # it ended early: the next report says so
    assert started(st.cycle(30.0)) == ["big"]


def test_external_report_never_overbooks_a_node():
    st = state(size=8)
    st.submit(job("mine", named(per_node=6)))
    st.cycle(0.0)
    st.set_external("c/p", [RunningJob("slurm:7", "", "c/p", (0,), 8, 0.0, math.inf)])  # a racing report
    assert sum(st.caps[0].free) == 0 and st.caps[0].allocations["slurm:7@0"].devices == 2
    st.end("mine", 5.0)
    st.set_external("c/p", [RunningJob("slurm:7", "", "c/p", (0,), 8, 0.0, math.inf)])
    assert st.caps[0].allocations["slurm:7@0"].devices == 8


def test_requeued_job_keeps_its_attained_service_and_progress():
    st = state("las")
    st.submit(job("a", named(per_node=2), 0.0, 4000.0))
    st.cycle(0.0)
    st.end("a", 100.0, requeue=True)
    requeued = job("a", named(per_node=2), 0.0, 3900.0)
    st.submit(requeued)
    assert requeued.attained == 200.0 and st.ledger.progress["a"] == 100.0
    st.cycle(200.0)
    st.end("a", 300.0)
    assert "a" not in st.ledger.attained  # ended for good


def test_started_moves_the_run_start_and_unplace_records_nothing():
    st = state()
    st.submit(job("a", named(per_node=1), 0.0, 100.0))
    st.submit(job("b", named(per_node=1), 0.0, 100.0))
    st.cycle(0.0)
    st.started("a", 30.0)
    assert st.allocation("a").end == 130.0
    st.unplace("b")
    st.end("a", 130.0)
    assert st.tenants["t"].usage == 100.0  # only a's run, from when it really started


def test_a_job_ended_for_good_leaves_only_its_tenants_usage():
    """With no book to tell (the default policy), a final end writes no per-job service only to drop it: whatever
    a requeued run had left goes, and the tenant's usage counts both runs."""
    st = state()
    st.submit(job("a", named(per_node=2), 0.0, 4000.0, tenant="acme"))
    st.cycle(0.0)
    st.end("a", 100.0, requeue=True)
    assert st.ledger.attained["a"] == 200.0 and st.ledger.progress["a"] == 100.0
    st.submit(job("a", named(per_node=2), 0.0, 3900.0, tenant="acme"))
    st.cycle(200.0)
    st.end("a", 300.0)
    assert "a" not in st.ledger.attained and "a" not in st.ledger.progress
    acme = st.tenants["acme"]
    assert acme.usage == 200.0 * 0.5 ** (200.0 / HALF_LIFE) + 200.0 and acme.usage_at == 300.0
