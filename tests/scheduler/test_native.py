"""The mypyc build decides exactly as the Python source does, and is what runs after `make install`.

Each side runs in a process of its own (one with ZHISUAN_PURE=1): a Philly slice under every benchmarked policy
and one cycle of the synthetic network the scheduler bench uses; every start time, end, pool, preemption and
placement is hashed and compared.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from zhisuan import native

DECISIONS = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from zhisuan import native
    from zhisuan.bench import SIM_POLICIES, synthetic
    from zhisuan.scheduler import DEFAULT, get_policy
    from zhisuan.scheduler.state import SchedulerState
    from zhisuan.sim.engine import Simulator
    from zhisuan.sim.readers import load_trace
    from zhisuan.sim.scenario import trace_cluster

    out = {"compiled": native.compiled()}
    trace = load_trace("philly").limit(2500)
    for name in SIM_POLICIES:
        r = Simulator(trace, trace_cluster(trace, False, 2), get_policy(name)).run()
        log = r.jobs
        h = hashlib.sha256()
        for a in (log.first_start, log.end, log.run_seconds, log.pool, log.preemptions, log.restarts, r.runs,
                  r.utilization, np.asarray(r.device_seconds)):
            h.update(np.ascontiguousarray(a).tobytes())
        out[name] = [r.cycles, int(np.isfinite(log.end).sum()), h.hexdigest()]
    snap = synthetic.snapshot(centers=4, nodes=200, jobs=2000)
    cycle = SchedulerState.from_snapshot(snap, DEFAULT).cycle(0.0)
    starts = sorted((s.job_id, s.placement.pool, s.placement.nodes, s.placement.expected_end) for s in cycle.starts)
    out["cycle"] = [cycle.placed, len(cycle.reservations), hashlib.sha256(repr(starts).encode()).hexdigest()]
    print(json.dumps(out))
""")


def decide(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    run = subprocess.run([sys.executable, "-c", DECISIONS], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_the_compiled_scheduler_and_simulator_decide_as_the_source_does():
    if not native.built():
        pytest.fail("no compiled build: `make install` compiles the modules zhisuan/native.py lists")
    if native.stale():
        pytest.fail(f"the compiled build is stale ({', '.join(native.stale())}): `make install` rebuilds it")
    compiled, pure = decide(pure=False), decide(pure=True)
    assert compiled.pop("compiled") is True and pure.pop("compiled") is False
    assert compiled == pure
    assert all(v[0] > 0 for v in compiled.values())  # something was decided on every side


@pytest.mark.parametrize("how", ["a source changed", "a dependency changed", "an extension is missing"])
def test_a_stale_build_runs_the_source(how):
    """An edited source (or a module the compiled ones import) without a rebuild, or a build missing a module:
    the guard loads every listed module from source, together, and says why."""
    if not native.built():
        pytest.skip("no compiled build")
    probe = "import zhisuan, zhisuan.native as n; print(zhisuan.PURE_BECAUSE); print(n.compiled())"
    stamp = native.STAMP.read_text()
    recorded = json.loads(stamp)
    moved = None
    if how == "a source changed":
        recorded["sources"][native.COMPILED[0]] = "0" * 64
        expect = "zhisuan/scheduler/assign.py is not as compiled"
    elif how == "a dependency changed":
        first = sorted(recorded["depends"])[0]
        recorded["depends"][first] = "0" * 64
        expect = f"{first} is not as compiled"
    else:
        moved = native.extension("zhisuan.scheduler.queue")
        assert moved is not None
        moved.rename(moved.with_name(moved.name + ".away"))
        expect = "zhisuan/scheduler/queue.py is not as compiled"
    try:
        native.STAMP.write_text(json.dumps(recorded))
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != native.PURE_ENV})
    finally:
        native.STAMP.write_text(stamp)
        if moved is not None:
            moved.with_name(moved.name + ".away").rename(moved)
    assert run.returncode == 0, run.stderr
    why, compiled = run.stdout.splitlines()
    assert why == expect and compiled == "False"
    assert "make install" in run.stderr


def test_a_pending_job_pickles_and_copies_whole():
    """PendingJob is compiled: it crosses to plan workers and is copied by field, every field kept."""
    import copy
    import pickle

    from tests.builders import named
    from zhisuan.scheduler.snapshot import PendingJob

    job = PendingJob("j", "t", named(), 1.5, 60.0, 2, attained=3.0, deadline=99.0, release=4.0, entered=5.0,
                     base=6.0, rank=7.0)
    for twin in (pickle.loads(pickle.dumps(job)), copy.copy(job), copy.deepcopy(job)):
        assert twin == job and twin is not job


def test_the_fair_share_sort_pickles_and_copies_whole():
    """FairShare is compiled and frozen: a policy holding it crosses to plan workers."""
    import copy
    import pickle

    from zhisuan.scheduler.plugins.fair_share import FairShare

    sort = FairShare(half_life=3600.0, name="fs", priority_ordered=True)
    for twin in (pickle.loads(pickle.dumps(sort)), copy.copy(sort), copy.deepcopy(sort)):
        assert twin == sort and twin is not sort
