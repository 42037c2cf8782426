"""Shares of one GPU and CPU-only jobs on a real Slurm cluster (scripts/slurm-up.sh: every GPU is also 100
gres/shard): two A100:0.5 jobs run at the same time on shards of one GPU of one node, and a CPU-only job
runs with no GRES at all. What Slurm gave each job is read back from squeue and sacct."""

import json
import os
import subprocess
import time

from tests.builders import step_until
from tests.engines.test_slurm import clusters, spec, world  # noqa: F401 (fixtures)
from zhisuan.engines.slurm import gpus_held, gres_args, shards_of, usage_of
from zhisuan.model import JobState, parse_job_spec
from zhisuan.store import Principal

SHOW = ("echo start=$(date +%s.%N) node=$SLURMD_NODENAME dev=$CUDA_VISIBLE_DEVICES shards=$SLURM_SHARDS_ON_NODE "
        "share=$ZHISUAN_DEVICE_SHARE mps=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE; sleep 6; echo end=$(date +%s.%N)")


def fields(log):
    return dict(part.split("=", 1) for part in log.split() if "=" in part)


def slurm_json(root, cluster, *args):
    env = {**os.environ, "SLURM_CONF": str(root / cluster / "etc" / "slurm.conf")}
    return json.loads(subprocess.run(list(args), env=env, capture_output=True, text=True, check=True).stdout)


def sacct(root, cluster, handle):
    return slurm_json(root, cluster, "sacct", "--json", "-j", handle.split("@")[0])["jobs"][0]


def slurm_job(root, job_id):
    """Slurm's record of zhisuan's job (by its name zs-<id>), from squeue while the cluster holds it."""
    jobs = slurm_json(root, "alpha", "squeue", "--json", "--states=all")["jobs"]
    return next(j for j in jobs if j["name"] == f"zs-{job_id}")


def test_two_half_gpu_jobs_share_one_gpu_through_shards(world, clusters):  # noqa: F811
    store, loop, svc = world
    jobs = [store.submit(spec(n, "a100:0.5", SHOW), time.time()) for n in ("half-a", "half-b")]
    recs = [step_until(loop, store, j, {JobState.RUNNING}) for j in jobs]
    assert {(r.center, r.pool, r.nodes) for r in recs} == {("alpha", "gpu-a100", recs[0].nodes)}  # one node
    held = [slurm_job(clusters, j) for j in jobs]
    assert [h["job_state"] for h in held] == ["RUNNING", "RUNNING"]  # at once, on ...
    assert [h["tres_per_node"] for h in held] == ["gres:shard:50"] * 2  # ... 50 of the 100 shards of a GPU
    details = {tuple(h["gres_detail"]) for h in held}
    assert len(details) == 1 and next(iter(details))[0].startswith("shard:50(IDX:")  # the same GPU
    done = [step_until(loop, store, j, {JobState.SUCCEEDED, JobState.FAILED}) for j in jobs]
    seen = [fields(svc.logs(j, Principal("acme", False))) for j in jobs]
    assert [r.state for r in done] == [JobState.SUCCEEDED] * 2, seen
    assert len({(s["node"], s["dev"]) for s in seen}) == 1  # Slurm showed both the same GPU
    for s in seen:
        assert (s["shards"], s["share"], s["mps"]) == ("50", "0.5", "50")
    assert max(float(s["start"]) for s in seen) < min(float(s["end"]) for s in seen)  # side by side
    for j, r in zip(jobs, done, strict=True):
        native = loop.links["alpha"].native(r.engine_handle)  # Slurm's job id, as alpha's agent reported it
        tres = {t["name"]: t["count"] for t in sacct(clusters, "alpha", native)["tres"]["allocated"]
                if t["type"] == "gres"}
        assert tres.get("shard") == 50 and not tres.get("gpu"), (j, tres)
        usage = loop.fleet.of("alpha").usage(r.engine_handle)
        assert usage is not None and usage.allocated_device_seconds == 0.5 * usage.elapsed_seconds


def test_a_cpu_only_job_runs_without_gres(world, clusters):  # noqa: F811
    store, loop, svc = world
    cpu = parse_job_spec("name: cpu\ntenant: acme\nresources: {accelerators: none, cpus: 2}\n"
                         "constraints: {time_limit: 60}\nrun: " + json.dumps("echo gpus=${CUDA_VISIBLE_DEVICES-none}"))
    job = store.submit(cpu, time.time())
    rec = step_until(loop, store, job, {JobState.SUCCEEDED, JobState.FAILED})
    assert rec.state is JobState.SUCCEEDED and rec.center in ("alpha", "beta")
    assert "gpus=none" in svc.logs(job, Principal("acme", False))
    alloc = sacct(clusters, rec.center, loop.links[rec.center].native(rec.engine_handle))["tres"]["allocated"]
    assert not [t for t in alloc if t["type"] == "gres" and t["count"]]  # no GPU, no shard
    assert next(t["count"] for t in alloc if t["type"] == "cpu") == 2  # --cpus-per-task from the spec



def test_gres_asked_and_held():
    assert gres_args("a100", 8, 0) == ["--gres=gpu:a100:8"]
    assert gres_args("a100", 1, 500) == ["--gres=shard:50"]  # 100 shards per GPU
    assert shards_of(333) == 34 and shards_of(1) == 1  # rounded up: never less than the share
    assert gres_args("a100", 0, 0) == []  # CPU-only
    assert gpus_held("gpu:a100:2(IDX:0-1)") == 2 and gpus_held("gpu:a100:3(IDX:0,2,5)") == 3
    assert gpus_held("shard:50(IDX:0)") == 1 and gpus_held("shard:150(IDX:0-1)") == 2  # shards hold their GPU
    assert gpus_held("") == 0 and gpus_held("gpu:a100:0(IDX:N/A)") == 0
    job = {"tres": {"allocated": [{"type": "gres", "name": "shard", "count": 25}]}, "time": {"elapsed": 100}}
    assert usage_of(job).allocated_device_seconds == 25.0  # a quarter of a GPU for 100 s
