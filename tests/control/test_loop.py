"""The control loop end to end on SQLite with the real local engine (no HTTP yet)."""

import os
import signal
import time

import pytest

from zhisuan.control import ControlLoop
from zhisuan.engines import LocalEngine
from zhisuan.model import JobState, parse_job_spec, parse_network
from zhisuan.store import JobStore, connect, migrate

NETWORK = parse_network("""
name: one
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10,
         device_ids: ["g0", "g1"]}
""")


def spec(name, devices, run, tenant="acme"):
    return parse_job_spec(f"name: {name}\ntenant: {tenant}\nresources: {{accelerators: a100:{devices}}}\n"
                          f"constraints: {{time_limit: 60}}\nrun: {run!r}")


@pytest.fixture
def world(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store = JobStore(engine)
    return store, LocalEngine(tmp_path / "runs", grace=0.5)


def run_until_done(loop, store, limit=15.0):
    end = time.time() + limit
    while time.time() < end:
        loop.step(time.time())
        if all(r.state.terminal for r in store.find()):
            return
        time.sleep(0.05)
    raise AssertionError([(r.name, r.state) for r in store.find()])


def test_jobs_run_to_their_end_on_their_own_devices(world):
    store, engine = world
    a = store.submit(spec("a", 1, "echo a=$CUDA_VISIBLE_DEVICES; sleep 0.3"), time.time())
    b = store.submit(spec("b", 1, "echo b=$CUDA_VISIBLE_DEVICES; sleep 0.3"), time.time())
    c = store.submit(spec("c", 2, "exit 3"), time.time())
    loop = ControlLoop(store, NETWORK, engine)
    run_until_done(loop, store)
    ra, rb, rc = store.get(a), store.get(b), store.get(c)
    assert (ra.state, rb.state, rc.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED)
    assert {ra.devices, rb.devices} == {(("g0",),), (("g1",),)}  # concurrent jobs got different devices
    here = loop.fleet.of("here")  # the center as the loop reaches it: through its agent
    assert here.logs(ra.engine_handle).strip() == f"a={ra.devices[0][0]}"  # it saw the device it was given
    assert here.logs(rb.engine_handle).strip() == f"b={rb.devices[0][0]}"
    assert rc.exit_code == 3 and rc.devices == (("g0", "g1"),)
    assert [t.to_state for t in store.transitions(a)] == [JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING,
                                                          JobState.SUCCEEDED]


def test_recover_requeues_unstarted_and_readopts_started(world):
    store, engine = world
    now = time.time()
    lost = store.submit(spec("lost", 1, "true"), now)
    store.transition(lost, JobState.SCHEDULED, now, "placed", center="here", pool="gpu", nodes=(0,),
                     devices_per_node=1, devices=[["g0"]])  # then the process died before submitting
    started = store.submit(spec("started", 1, "sleep 0.2"), now)
    store.transition(started, JobState.SCHEDULED, now, "placed", center="here", pool="gpu", nodes=(0,),
                     devices_per_node=1, devices=[["g1"]])
    engine.run(started, "sleep 0.2", [["g1"]], "cuda")  # ...and died before recording 'running'
    loop = ControlLoop(store, NETWORK, LocalEngine(engine.root))  # a fresh process
    loop.recover(time.time())
    assert store.get(lost).state is JobState.PENDING
    assert store.get(started).engine_handle == f"{started}#1"  # re-adopted: its agent found its run
    loop.step(time.time())
    assert store.get(started).state in (JobState.RUNNING, JobState.SUCCEEDED)
    run_until_done(loop, store)
    assert store.get(lost).state is JobState.SUCCEEDED and store.get(lost).attempts == 1
    assert store.get(started).state is JobState.SUCCEEDED


def test_a_killed_job_is_failed_with_the_reason(world):
    store, engine = world
    job = store.submit(spec("victim", 1, "sleep 30"), time.time())
    loop = ControlLoop(store, NETWORK, engine)
    loop.step(time.time())
    rec = store.get(job)
    assert rec.state is JobState.RUNNING
    pid = int(__import__("json").loads((engine.attempt_dir(job, 1) / "handle.json").read_text())["pids"][0])
    os.killpg(pid, signal.SIGKILL)
    time.sleep(0.2)
    loop.step(time.time())
    rec = store.get(job)
    assert rec.state is JobState.FAILED and "without an exit code" in rec.reason


def test_a_job_cancelled_while_starting_is_stopped(world):
    store, engine = world

    class CancelDuringSubmit(LocalEngine):
        def submit(self, launch):
            handle = super().submit(launch)
            store.transition(launch.job_id, JobState.CANCELLED, time.time(), "cancelled by acme")  # the API, meanwhile
            return handle

    racing = CancelDuringSubmit(engine.root, grace=0.5)
    job = store.submit(spec("race", 1, "sleep 30"), time.time())
    ControlLoop(store, NETWORK, racing).step(time.time())
    assert store.get(job).state is JobState.CANCELLED
    assert racing.poll(racing.handle_of(job, 1)).state == "failed"  # its process was killed, not left running


def test_recover_leaves_a_job_on_a_silent_center_to_failover(world):
    from zhisuan.engines import EngineDown

    store, engine = world

    class Silent(LocalEngine):
        def handle_of(self, job_id, attempt=None):
            raise EngineDown("here: does not answer")

        def health(self):
            raise EngineDown("here: does not answer")

    now = time.time()
    job = store.submit(spec("limbo", 1, "true"), now)
    store.transition(job, JobState.SCHEDULED, now, "placed", center="here", pool="gpu", nodes=(0,),
                     devices_per_node=1, devices=[["g0"]])
    loop = ControlLoop(store, NETWORK, Silent(engine.root), health_every=0.0, misses=1)
    loop.recover(now)  # does not raise, does not guess
    assert store.get(job).state is JobState.SCHEDULED
    loop.step(time.time())  # the health check finds the center down: the job goes back to the queue
    assert store.get(job).state is JobState.PENDING and "here" in loop.down


def test_cancel_is_recorded_before_the_engine_stops_the_job(world):
    from zhisuan.control.service import Service
    from zhisuan.store import Principal

    store, engine = world
    steps = []

    class PolledMeanwhile(LocalEngine):
        def cancel(self, handle):
            super().cancel(handle)
            steps.append(loop.step(time.time()))  # the control loop polls while the cancel is under way

    racing = PolledMeanwhile(engine.root, grace=0.5)
    loop = ControlLoop(store, NETWORK, racing)
    job = store.submit(spec("stubborn", 1, "sleep 30"), time.time())
    loop.step(time.time())
    assert store.get(job).state is JobState.RUNNING
    rec = Service(store, NETWORK, loop).cancel(job, Principal("acme", False), time.time())
    assert steps and rec.state is JobState.CANCELLED and store.get(job).state is JobState.CANCELLED
    assert [t.to_state for t in store.transitions(job)][-1] is JobState.CANCELLED


def test_a_job_that_cannot_start_or_be_tracked_fails_alone(world):
    store, engine = world

    class Brittle(LocalEngine):
        def submit(self, launch):
            if launch.name == "unstartable":
                raise ValueError("embedded null byte")  # whatever the engine meets, not only OSError
            return super().submit(launch)

        def poll(self, handle):
            if "lost" in handle:
                raise RuntimeError("handle unreadable")
            return super().poll(handle)

    brittle = Brittle(engine.root, grace=0.5)
    bad = store.submit(spec("unstartable", 2, "true"), time.time())
    good = store.submit(spec("good", 2, "true"), time.time() + 0.01)
    loop = ControlLoop(store, NETWORK, brittle)
    run_until_done(loop, store)
    assert store.get(bad).state is JobState.FAILED and "embedded null byte" in store.get(bad).reason
    assert store.get(good).state is JobState.SUCCEEDED  # the devices it held were given back

    class Lost(Brittle):
        def submit(self, launch):
            return super().submit(launch) + "/lost"

    lost = store.submit(spec("untrackable", 2, "sleep 30"), time.time())
    loop = ControlLoop(store, NETWORK, Lost(engine.root, grace=0.5))
    for _ in range(5):
        loop.step(time.time())
    rec = store.get(lost)
    assert rec.state is JobState.FAILED and "cannot be tracked" in rec.reason
    assert not loop.state.placed  # its devices are free again
    engine.cancel(engine.handle_of(lost))  # what the test's broken engine could not stop
