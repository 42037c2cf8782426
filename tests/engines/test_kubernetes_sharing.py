"""Shares of one GPU and CPU-only jobs on Kubernetes: the pod's resources for HAMi (the default) and for
Volcano's vGPU, checked on the manifests the real client sends to replayed API answers (no API server
can run here; the resource names are the plugins' documented ones, see engines/kubeshare.py)."""

from dataclasses import replace

import pytest

from tests.engines.test_kubernetes import NS, api, engine, launch  # noqa: F401 (fixture)
from zhisuan.engines.kubeshare import devices_of


def sent_pod(api):  # noqa: F811
    method, path, body = api.sent[-1]
    assert (method, path) == ("POST", NS)
    return body["spec"]["template"]["spec"]


def share(eng, milli=500):
    return replace(launch(eng, "a100-sxm4-80gb", nodes=(0,), devices=1), milli=milli)


def test_a_half_gpu_asks_hami_for_one_vgpu_with_half_the_cores_and_memory(api):  # noqa: F811
    eng = engine(api)
    eng.submit(share(eng))
    pod = sent_pod(api)
    assert pod["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu": "1", "nvidia.com/gpucores": "50", "nvidia.com/gpumem": "40960"}  # 0.5 x 80 GiB in MiB
    assert "schedulerName" not in pod  # HAMi's webhook sends shared pods to its own scheduler


def test_volcano_vgpu_names_and_its_scheduler_when_the_center_says_so(api):  # noqa: F811
    eng = engine(api, sharing="volcano")
    eng.submit(share(eng, 250))
    pod = sent_pod(api)
    assert pod["containers"][0]["resources"]["limits"] == {
        "volcano.sh/vgpu-number": "1", "volcano.sh/vgpu-cores": "25", "volcano.sh/vgpu-memory": "20480"}
    assert pod["schedulerName"] == "volcano"
    eng.submit(launch(eng, "a100-sxm4-80gb", nodes=(0,), devices=2))  # whole GPUs stay nvidia.com/gpu
    assert sent_pod(api)["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert "schedulerName" not in sent_pod(api)


def test_a_cpu_only_job_asks_no_device(api):  # noqa: F811
    eng = engine(api)
    eng.submit(replace(launch(eng, "a100-sxm4-80gb", nodes=(0,), devices=0), cpus=4.0))
    resources = sent_pod(api)["containers"][0]["resources"]
    assert resources == {"limits": {}, "requests": {"cpu": "4"}}


def test_only_cuda_gpus_are_shared_and_the_option_is_checked(api):  # noqa: F811
    eng = engine(api)
    with pytest.raises(ValueError, match="only CUDA GPUs"):
        eng.submit(replace(launch(eng, "ascend-910b3", nodes=(0,), devices=1), milli=500))
    with pytest.raises(ValueError, match="sharing"):
        engine(api, sharing="mig")


def test_usage_counts_a_share_as_its_fraction():
    assert devices_of({"nvidia.com/gpu": "1", "nvidia.com/gpucores": "50", "nvidia.com/gpumem": "40960"}) == 0.5
    assert devices_of({"volcano.sh/vgpu-number": "1", "volcano.sh/vgpu-cores": "25"}) == 0.25
    assert devices_of({"nvidia.com/gpu": "8"}) == 8 and devices_of({}) == 0
