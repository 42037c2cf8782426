"""The live loop drives the scheduler as the simulator does: fair share by recorded usage, preemptions
carried out with a grace period, the service ledger rebuilt after a restart. Real local engine, SQLite."""

import json
import time

import pytest

from tests.builders import step_until
from zhisuan.control import ControlLoop
from zhisuan.engines import LocalEngine
from zhisuan.model import JobState, parse_job_spec, parse_network
from zhisuan.store import JobStore, connect, migrate

NET = """
name: one
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10,
         device_ids: ["g0", "g1"]}}
tenants: [{{name: acme}}, {{name: lab}}]
scheduler: {{policy: {policy}}}
control: {{grace: {grace}}}
"""


def network(policy="zhisuan", grace="1s"):
    return parse_network(NET.format(policy=policy, grace=grace))


def spec(name, tenant, run, priority=0, devices=2):
    return parse_job_spec(f"name: {name}\ntenant: {tenant}\npriority: {priority}\n"
                          f"resources: {{accelerators: a100:{devices}}}\nconstraints: {{time_limit: 60}}\n"
                          f"run: {json.dumps(run)}")


@pytest.fixture
def store(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    return JobStore(engine)


def test_fair_share_orders_tenants_by_their_recorded_usage_also_after_a_restart(store, tmp_path):
    engine = LocalEngine(tmp_path / "runs", grace=0.5)
    loop = ControlLoop(store, network(), engine)
    warm = store.submit(spec("warm", "acme", "sleep 0.3"), time.time())  # acme uses both devices a while
    step_until(loop, store, warm, {JobState.SUCCEEDED})
    assert loop.state.tenants["acme"].usage > 0.5
    older = store.submit(spec("older", "acme", "sleep 5"), time.time())
    newer = store.submit(spec("newer", "lab", "sleep 5"), time.time() + 0.01)
    restarted = ControlLoop(store, network(), LocalEngine(tmp_path / "runs", grace=0.5))
    restarted.recover(time.time())  # a restarted server rebuilds the usage from the metered runs
    assert restarted.state.tenants["acme"].usage == pytest.approx(loop.state.tenants["acme"].usage, rel=1e-6)
    assert [s.job_id for s in restarted.state.cycle(time.time()).starts] == [newer]  # (its state only)
    loop.step(time.time())
    assert store.get(newer).state is JobState.RUNNING  # lab has used less: it goes first, though acme asked first
    assert store.get(older).state is JobState.PENDING
    waiting = store.get(older)
    assert waiting.wait_reason.startswith("reserved on here/gpu")  # the head of the queue, EASY-reserved ...
    assert waiting.expected_start == pytest.approx(time.time() + 60, abs=5)  # ... for when newer's time limit ends
    loop.fleet.of("here").cancel(store.get(newer).engine_handle)


def test_a_preemption_stops_the_victim_gracefully_then_starts_the_job_and_requeues_the_victim(store, tmp_path):
    engine = LocalEngine(tmp_path / "runs", grace=2.0)
    loop = ControlLoop(store, network("priority", "3s"), engine)
    resumable = ('if [ -f "$ZHISUAN_CHECKPOINT_DIR/step" ]; then echo "attempt $ZHISUAN_ATTEMPT resumes at '
                 '$(cat $ZHISUAN_CHECKPOINT_DIR/step)"; exit 0; fi; '
                 'trap \'sleep 0.3; echo 41 > "$ZHISUAN_CHECKPOINT_DIR/step"; exit 0\' TERM; echo ready; '
                 'sleep 30 & wait')
    low = store.submit(spec("low", "lab", resumable), time.time())
    rec = step_until(loop, store, low, {JobState.RUNNING})
    end = time.time() + 10
    while time.time() < end and "ready" not in loop.fleet.of("here").logs(rec.engine_handle):  # its trap is set
        time.sleep(0.02)
    high = store.submit(spec("high", "acme", "echo high on $CUDA_VISIBLE_DEVICES", priority=5), time.time())
    loop.step(time.time())
    assert store.get(low).state is JobState.PENDING and store.get(high).state is JobState.SCHEDULED
    assert "waiting for preempted" in store.get(high).wait_reason  # the victim is saving its checkpoint
    rec = step_until(loop, store, high, {JobState.SUCCEEDED})
    assert loop.fleet.of("here").logs(rec.engine_handle).strip() == "high on g0,g1"
    victim_exit = (engine.attempt_dir(low, 1) / "exit-0").stat().st_mtime
    started = next(t.at for t in store.transitions(high) if t.to_state is JobState.RUNNING)
    assert started >= victim_exit  # never on the devices while the victim was still on them
    rec = step_until(loop, store, low, {JobState.SUCCEEDED})
    assert rec.attempts == 2 and loop.fleet.of("here").logs(rec.engine_handle).strip() == "attempt 2 resumes at 41"
    states = [t.to_state.value for t in store.transitions(low)]
    assert states == ["pending", "scheduled", "running", "preempted", "pending", "scheduled", "running", "succeeded"]
    assert loop.meter.usage.intervals(tenant="lab")[0]["attempt"] == 1  # the preempted run was billed as it ended


def test_a_victim_that_ignores_sigterm_is_killed_when_its_grace_is_over(store, tmp_path):
    engine = LocalEngine(tmp_path / "runs", grace=1.0)
    loop = ControlLoop(store, network("priority", "1s"), engine)
    stubborn = store.submit(spec("stubborn", "lab", "trap '' TERM; echo ready; sleep 30 & wait"), time.time())
    rec = step_until(loop, store, stubborn, {JobState.RUNNING})
    end = time.time() + 10
    while time.time() < end and "ready" not in loop.fleet.of("here").logs(rec.engine_handle):
        time.sleep(0.02)
    t0 = time.time()
    high = store.submit(spec("high", "acme", "true", priority=5), t0)
    step_until(loop, store, high, {JobState.SUCCEEDED})
    assert time.time() - t0 >= 1.0  # it waited the grace period out, then the victim was killed
    assert store.get(stubborn).state in (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING)
    handle = store.get(stubborn).engine_handle
    if handle:
        loop.fleet.of("here").cancel(handle)


def test_a_deferrable_job_waits_for_the_cheaper_hour_live_as_in_the_simulator(store, tmp_path):
    from datetime import datetime

    text = NET.format(policy="zhisuan", grace="1s")
    text = text.replace("carbon_kg_per_kwh: 0.5\n", "carbon_kg_per_kwh: 0.5\n    tou_zone: CN-SH\n")
    net = parse_network(text.replace("scheduler: {policy: zhisuan}", "scheduler: {policy: zhisuan, defer: true}"))
    peak = datetime.fromisoformat("2026-06-01T08:30:00+08:00").timestamp()  # CN-SH: peak until 11:00
    loop = ControlLoop(store, net, LocalEngine(tmp_path / "runs", grace=0.5))
    job = store.submit(parse_job_spec("name: nightly\ntenant: lab\nresources: {accelerators: a100:1}\nrun: 'true'\n"
                                      "constraints: {time_limit: 30m, deadline: '2026-06-01T20:00:00+08:00'}"), peak)
    loop.step(peak)
    rec = store.get(job)
    assert rec.state is JobState.PENDING and rec.wait_reason.startswith("deferred to a cheaper tariff hour")
    assert rec.expected_start == datetime.fromisoformat("2026-06-01T11:00:00+08:00").timestamp()
    loop.step(rec.expected_start - 60)
    assert store.get(job).state is JobState.PENDING
    loop.step(rec.expected_start)
    assert store.get(job).state is JobState.RUNNING


def test_why_here_and_quotes_show_easy_reservations_live(store, tmp_path):
    from zhisuan.control.service import Principal, Service

    loop = ControlLoop(store, network("easy"), LocalEngine(tmp_path / "runs", grace=0.5))
    service = Service(store, network("easy"), loop)
    first = store.submit(spec("first", "acme", "sleep 30", devices=1), time.time())
    step_until(loop, store, first, {JobState.RUNNING})
    head = store.submit(spec("head", "lab", "true", devices=2), time.time())
    loop.step(time.time())
    rec = store.get(head)
    assert rec.state is JobState.PENDING and rec.wait_reason.startswith("reserved on here/gpu")
    own = service.candidates(head, Principal("lab", False), time.time())[0]
    assert any(w.startswith("reserved for this job") for w in own.waits_for), own.waits_for
    probe = "name: probe\ntenant: acme\nresources: {accelerators: a100:1}\nconstraints: {time_limit: 10m}\nrun: 'true'"
    _, quote = service.quote(probe, Principal("acme", False), time.time())
    assert quote[0].start_delay >= 50  # a free device, but a 10-minute job would delay lab's reserved head
    assert any(w.startswith("reserved for a job of another tenant") for w in quote[0].waits_for), quote[0].waits_for
    _, seen = service.quote(probe, Principal("ops", True), time.time())
    assert any(w.startswith(f"reserved for zhisuan job {head}") for w in seen[0].waits_for), seen[0].waits_for
    short = probe.replace("10m", "5")
    assert service.quote(short, Principal("acme", False), time.time())[1][0].start_delay == 0.0  # it backfills
    service.cancel(first, Principal("acme", False), time.time())
    step_until(loop, store, head, {JobState.SUCCEEDED})


def test_a_running_job_is_metered_as_it_runs_in_reports_and_invoices(store, tmp_path):
    from zhisuan.control.service import Principal, Service
    from zhisuan.metering.invoice import local_month

    loop = ControlLoop(store, network(), LocalEngine(tmp_path / "runs", grace=0.5))
    service = Service(store, network(), loop)
    job = store.submit(spec("holds", "acme", "sleep 30", devices=2), time.time())
    rec = step_until(loop, store, job, {JobState.RUNNING})
    now = rec.updated_at + 1800.0  # half an hour into the run, nothing stored yet (it has not ended)
    report = service.utilization(Principal("ops", True), now - 3600, now, 3600, now=now)
    here = [r for r in report["rows"] if r["center"] == "here"]
    assert sum(r["allocated_device_hours"] for r in here) == pytest.approx(1.0, rel=1e-3)  # 2 devices × 0.5 h
    assert report["tenants"]["acme"]["allocated_device_hours"] == pytest.approx(1.0, rel=1e-3)
    bill = service.invoice("acme", local_month(now), Principal("acme", False), now=now)
    assert [line.job_id for line in bill.lines] == [job] and bill.lines[0].allocated_device_hours == pytest.approx(1.0)
    service.cancel(job, Principal("acme", False), time.time())
