"""The Ray engine against a real local Ray head (scripts/ray-up.sh, started by `make test`), loopback only,
with fake accelerators as custom resources {"A100": 8, "910B": 8}."""

import os
import time
from dataclasses import replace

import pytest

from zhisuan.engines import EngineDown, Launch
from zhisuan.engines.ray import RayEngine
from zhisuan.model import parse_network

ADDRESS = os.environ.get("ZHISUAN_TEST_RAY", "")


@pytest.fixture(scope="module")
def ray_engine():
    if not ADDRESS:
        if os.environ.get("CI"):
            pytest.fail("no Ray head: run the suite with `make test`, which starts one (scripts/ray-up.sh)")
        pytest.skip("no Ray head (run `make test` or scripts/ray-up.sh and set ZHISUAN_TEST_RAY)")
    return RayEngine.from_config("ray-center", {"address": ADDRESS, "resources": {"A100": "A100 SXM4 80GB",
                                                "910B": "Ascend 910B3"}, "prices": {"A100": 12, "910B": 8},
                                 "run_as_uid": 65534})  # the test head runs as root: jobs drop to nobody


def launch(engine, job_id, command, pool="a100", devices=2, nodes=(0,)):
    pools = {p.name: p for p in engine.inventory()}
    return Launch(job_id, job_id, command, pools[pool], nodes, devices, [[str(i) for i in range(devices)]] * len(nodes),
                  {"GREETING": "hello"})


def wait(engine, handle, limit=60.0):
    end = time.time() + limit
    while time.time() < end:
        st = engine.poll(handle)
        if st.state not in ("queued", "running"):
            return st
        time.sleep(0.3)
    raise AssertionError("still running")


def test_inventory_reads_custom_resources(ray_engine):
    pools = {p.name: p for p in ray_engine.inventory()}
    assert set(pools) == {"a100", "910b"}
    assert (pools["a100"].accelerator, pools["a100"].nodes, pools["a100"].devices_per_node) == ("A100 SXM4 80GB", 1, 8)
    assert pools["910b"].accelerator == "Ascend 910B3"


def test_a_ray_job_runs_unprivileged_and_keeps_its_checkpoint_folder(ray_engine, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("the admin token")
    secret.chmod(0o600)
    h = ray_engine.submit(launch(ray_engine, "j-ray-uid", f"id -u; cat {secret}; touch $ZHISUAN_CHECKPOINT_DIR/ok; "
                                                          "ls $ZHISUAN_CHECKPOINT_DIR"))
    assert wait(ray_engine, h).state == "succeeded"  # the last command (ls) decides; the logs tell the rest
    logs = ray_engine.logs(h)  # Ray's own lines come first
    assert "65534" in logs.splitlines() and "the admin token" not in logs and "ok" in logs.splitlines()
    assert "Permission denied" in logs


def test_a_job_runs_with_its_devices_and_logs(ray_engine):
    h = ray_engine.submit(launch(ray_engine, "j-ray1", "echo $GREETING from $ZHISUAN_JOB_ID on $CUDA_VISIBLE_DEVICES"))
    assert wait(ray_engine, h).state == "succeeded"
    assert "hello from j-ray1 on 0,1" in ray_engine.logs(h)
    assert ray_engine.handle_of("j-ray1") is None  # ended: nothing to re-adopt
    usage = ray_engine.usage(h)
    assert usage is not None and usage.busy_device_seconds is None and usage.elapsed_seconds > 0
    assert usage.allocated_device_seconds == pytest.approx(2 * usage.elapsed_seconds)  # two A100s reserved


def test_a_failed_job_keeps_its_exit_code(ray_engine):
    h = ray_engine.submit(launch(ray_engine, "j-ray2", "echo npu=$ASCEND_RT_VISIBLE_DEVICES; exit 3", pool="910b"))
    st = wait(ray_engine, h)
    assert (st.state, st.exit_code) == ("failed", 3) and "exit code 3" in st.reason
    assert "npu=0,1" in ray_engine.logs(h)


def test_stop_a_running_job_and_find_it_again(ray_engine):
    h = ray_engine.submit(launch(ray_engine, "j-ray3", "sleep 60"))
    end = time.time() + 30
    while time.time() < end and ray_engine.handle_of("j-ray3") is None:
        time.sleep(0.3)
    assert ray_engine.handle_of("j-ray3") == h  # a restarted control loop re-adopts it
    ray_engine.cancel(h)
    st = wait(ray_engine, h)
    assert st.state == "failed" and "STOPPED" in st.reason


def test_a_gang_over_ray_nodes_is_refused_with_the_reason(ray_engine):
    with pytest.raises(OSError, match="placement group"):
        ray_engine.submit(launch(ray_engine, "j-ray4", "true", nodes=(0, 1)))


def test_a_ray_center_that_does_not_answer_is_down():
    net = parse_network("name: r\ncenters:\n  - {name: r, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5, engine: ray,"
                        " engine_config: {address: 'http://127.0.0.1:9', resources: {A100: a100}}}\n")
    engine = RayEngine.from_config("r", net.centers[0].engine_config)
    with pytest.raises(EngineDown, match="does not answer"):
        engine.health()


def test_other_ray_work_is_load_and_a_job_waiting_for_resources_is_queued(ray_engine):
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(ADDRESS)
    pools = ray_engine.inventory()
    end = time.time() + 30
    while time.time() < end and ray_engine.load(pools):  # jobs of earlier tests may take a moment to let go
        time.sleep(0.5)
    assert ray_engine.load(pools) == []
    other = client.submit_job(entrypoint="sleep 60", entrypoint_resources={"A100": 5.0}, entrypoint_num_cpus=0)
    mine = ray_engine.submit(launch(ray_engine, "j-ray-load", "sleep 60", devices=2))
    try:
        end = time.time() + 60
        while time.time() < end and (str(client.get_job_status(other).value) != "RUNNING"
                                     or ray_engine.poll(mine).state != "running"):
            time.sleep(0.3)
        def a100_load():
            return [(x.nodes, x.devices_per_node) for x in ray_engine.load(pools) if x.pool == "a100"]

        while time.time() < end and a100_load() != [((0,), 5)]:  # Ray's usage report trails by a few seconds
            time.sleep(0.5)
        assert a100_load() == [((0,), 5)]  # the other job's 5, not our own 2
        waiting = ray_engine.submit(launch(ray_engine, "j-ray-wait", "true", devices=4))  # 5 + 2 of 8 are taken
        assert ray_engine.poll(waiting).state == "queued"
        ray_engine.cancel(waiting)
    finally:
        client.stop_job(other)
        ray_engine.cancel(mine)


def test_two_half_device_jobs_share_one_ray_resource_unit(ray_engine):
    """A share is a fraction of the Ray resource: two halves run at once on one A100 unit and are told so."""
    pools = {p.name: p for p in ray_engine.inventory()}
    handles = []
    for jid in ("j-ray-h1", "j-ray-h2"):
        half = Launch(jid, jid, "echo share=$ZHISUAN_DEVICE_SHARE mps=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE; sleep 3",
                      pools["a100"], (0,), 1, [["0"]], {}, milli=500)
        handles.append(ray_engine.submit(half))
    end = time.time() + 30
    while time.time() < end and not all(ray_engine.poll(h).state == "running" for h in handles):
        time.sleep(0.3)
    assert all(ray_engine.poll(h).state == "running" for h in handles)  # both at once
    for h in handles:
        assert wait(ray_engine, h).state == "succeeded"
        assert "share=0.5 mps=50" in ray_engine.logs(h)
        usage = ray_engine.usage(h)
        assert usage.allocated_device_seconds == pytest.approx(0.5 * usage.elapsed_seconds)


def test_a_ray_job_reads_its_inputs_read_only(ray_engine, tmp_path):
    copy = tmp_path / "datasets" / "corpus"
    copy.mkdir(parents=True)
    (copy / "a.txt").write_text("hello data\n")
    (copy / "a.txt").chmod(0o444)
    (tmp_path / "datasets").chmod(0o700)  # as the server keeps it: the job reads its own linked copy only
    base = launch(ray_engine, "j-ray-in", "cat $ZHISUAN_INPUT_TRAIN/a.txt; "
                                          "touch $ZHISUAN_INPUT_TRAIN/x 2>/dev/null || echo read-only", devices=1)
    h = ray_engine.submit(replace(base, inputs={"train": str(copy)}))
    assert wait(ray_engine, h).state == "succeeded"
    lines = ray_engine.logs(h).splitlines()
    assert "hello data" in lines and "read-only" in lines
