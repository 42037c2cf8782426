"""Properties that must hold for every snapshot, checked on random small networks and queues."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import pool
from zhisuan.model import Request
from zhisuan.scheduler import POLICIES, PendingJob, RunningJob, Snapshot, TenantState, cycle

CHIPS = ["a100", "910b", "h800"]


@st.composite
def snapshots(draw):
    n_pools = draw(st.integers(1, 4))
    pools = [pool(f"c{i}", "p", draw(st.sampled_from(CHIPS)), nodes=draw(st.integers(1, 4)),
                  size=draw(st.sampled_from([1, 2, 4, 8])), price=draw(st.floats(1, 30)),
                  healthy=draw(st.booleans()) or i == 0)
             for i in range(n_pools)]
    running = []
    for p in pools:
        free = [p.devices_per_node] * p.nodes
        for k in range(draw(st.integers(0, 3))):
            d = draw(st.integers(1, p.devices_per_node))
            nodes = tuple(n for n in range(p.nodes) if free[n] >= d)[: draw(st.integers(1, p.nodes))]
            if nodes:
                for n in nodes:
                    free[n] -= d
                running.append(RunningJob(f"r-{p.center}-{k}", draw(st.sampled_from("xyz")), p.key, nodes, d,
                                          0.0, draw(st.floats(1, 1e4)), draw(st.integers(0, 3))))
    pending = []
    for j in range(draw(st.integers(0, 25))):
        chip = draw(st.sampled_from(CHIPS))
        per_node = draw(st.sampled_from([1, 2, 4, 8]))
        nodes = draw(st.integers(1, 3))
        req = Request(per_node, nodes, stacks=frozenset({"cuda", "cann"}), ref_tflops=300) \
            if draw(st.booleans()) else Request(per_node, nodes, model=pool(chip=chip).chip.name,
                                                stacks=frozenset({pool(chip=chip).chip.stack}), ref_tflops=300)
        pending.append(PendingJob(f"j{j}", draw(st.sampled_from("xyz")), req, draw(st.floats(0, 100)),
                                  draw(st.floats(10, 1e4)), draw(st.integers(0, 5))))
    tenants = {t: TenantState(t, quota_devices=draw(st.one_of(st.none(), st.integers(0, 40)))) for t in "xyz"}
    return Snapshot(pools=pools, running=running, pending=pending, tenants=tenants)


def apply(snap, res):
    """Node usage after the cycle's preemptions and starts; asserts no node goes negative or over size."""
    size = {p.key: p.devices_per_node for p in snap.pools}
    used = {p.key: [0] * p.nodes for p in snap.pools}
    preempted = {p.job_id for p in res.preemptions}
    held = {}
    for r in snap.running:
        if r.id not in preempted:
            for n in r.nodes:
                used[r.pool][n] += r.devices_per_node
            held[r.tenant] = held.get(r.tenant, 0) + r.devices
    for s in res.starts:
        key = f"{s.placement.center}/{s.placement.pool}"
        for n in s.placement.nodes:
            used[key][n] += s.placement.devices_per_node
    for key, nodes in used.items():
        assert all(0 <= u <= size[key] for u in nodes), (key, nodes)
    return held


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(snapshots(), st.sampled_from(sorted(POLICIES)))
def test_never_over_allocates_and_gangs_are_whole(snap, policy):
    res = cycle(snap, 0.0, POLICIES[policy])
    apply(snap, res)
    jobs = {j.id: j for j in snap.pending}
    for s in res.starts:
        req = jobs[s.job_id].request
        assert len(s.placement.nodes) == req.nodes == len(set(s.placement.nodes))
        assert s.placement.devices_per_node == req.devices_per_node
    decided = [s.job_id for s in res.starts] + [u.job_id for u in res.unschedulable] + \
        [j for ids in res.waiting.values() for j in ids]
    assert sorted(decided) == sorted(jobs)  # every pending job gets exactly one outcome


@SETTINGS
@given(snapshots(), st.sampled_from(sorted(POLICIES)))
def test_quotas_never_exceeded_by_starts(snap, policy):
    res = cycle(snap, 0.0, POLICIES[policy])
    held = apply(snap, res)
    started = {}
    jobs = {j.id: j for j in snap.pending}
    for s in res.starts:
        t = jobs[s.job_id].tenant
        started[t] = started.get(t, 0) + s.placement.devices
    for t, n in started.items():
        quota = snap.tenants[t].quota_devices
        if quota is not None:
            assert held.get(t, 0) + n <= quota


@SETTINGS
@given(snapshots(), st.sampled_from(sorted(POLICIES)))
def test_same_snapshot_same_decisions(snap, policy):
    def key(res):
        return ([(s.job_id, s.placement) for s in res.starts], [(p.job_id, p.pool) for p in res.preemptions],
                [(r.job_id, r.pool, r.start) for r in res.reservations], res.unschedulable, res.waiting)

    assert key(cycle(snap, 0.0, POLICIES[policy])) == key(cycle(snap, 0.0, POLICIES[policy]))


# Gavel's rounds are memory a snapshot does not carry (which round it is, when the LP was last solved):
# a fresh state starts a round where the incremental one is in the middle of one. Both drivers keep one
# incremental state, so they still decide alike (tests/sim/test_policy_definitions.py, bench fidelity).
MEMORYLESS = sorted(p for p in POLICIES if p != "gavel")


@SETTINGS
@given(snapshots(), st.sampled_from(MEMORYLESS), st.integers(0, 5), st.data())
def test_incremental_state_decides_like_a_fresh_snapshot(snap, policy, finish, data):
    """Cycle, end some jobs, submit more, cycle again: same pools and preemptions as a fresh snapshot."""
    from zhisuan.scheduler.state import SchedulerState

    pol = POLICIES[policy]
    state = SchedulerState.from_snapshot(snap, pol)
    first = state.cycle(0.0)
    for s in first.starts[:finish]:
        state.end(s.job_id, 5.0)
    extra = data.draw(snapshots()).pending
    for j in extra:
        j.id = "new-" + j.id
        state.submit(j)
    fresh = cycle(state.snapshot(), 10.0, pol)
    again = state.cycle(10.0)

    def pools(res):
        return ([(s.job_id, s.placement.center, s.placement.pool) for s in res.starts],
                [p.job_id for p in res.preemptions], {k: sorted(v) for k, v in res.waiting.items()},
                sorted(u.job_id for u in res.unschedulable))

    assert pools(again) == pools(fresh)
    for cap in state.caps:  # a pool's free total, counted from its nodes' free levels, is its nodes' sum
        if cap.shares is None:
            assert cap.free_amount() == sum(cap.free)
