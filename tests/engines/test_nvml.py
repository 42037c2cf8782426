"""NVML discovery. This machine has no NVIDIA driver: the real nvidia-ml-py shows how discovery fails
here; the mapping from NVML's answers to pools is tested with a stand-in module giving NVML's answers."""

import sys
import types

import pytest

from zhisuan.engines.nvml import DiscoveryError, Gpu, bind_discovered, nvml_gpus
from zhisuan.model import parse_network

NETWORK = """
name: box
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10, discover: nvml}
      - {name: npu, accelerator: 910b3, nodes: 1, devices_per_node: 2, price_per_device_hour: 8}
"""


def test_without_a_driver_discovery_fails_with_a_reason():
    with pytest.raises(DiscoveryError, match="no NVIDIA driver"):
        nvml_gpus()


def test_a_pool_takes_the_gpus_of_its_chip():
    found = [Gpu(0, "NVIDIA A100-SXM4-80GB", "GPU-a", 81920), Gpu(1, "NVIDIA GeForce RTX 4090", "GPU-b", 24564),
             Gpu(2, "NVIDIA A100-SXM4-80GB", "GPU-c", 81920)]
    net = bind_discovered(parse_network(NETWORK), lambda: found)
    gpu, npu = net.centers[0].pools
    assert (gpu.nodes, gpu.devices_per_node, gpu.device_ids) == (1, 2, ["0", "2"])
    assert (npu.devices_per_node, npu.device_ids) == (2, [])  # declared pools are left as written


def test_no_gpu_of_the_chip_names_the_field_and_what_was_seen():
    with pytest.raises(DiscoveryError, match=r"centers\.0\.pools\.0\.discover: no A100 SXM4 80GB .*0: NVIDIA L40S"):
        bind_discovered(parse_network(NETWORK), lambda: [Gpu(0, "NVIDIA L40S", "GPU-x", 46068)])


def test_nvml_answers_are_read_through_the_library(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(
        NVMLError=RuntimeError, nvmlInit=lambda: calls.append("init"), nvmlShutdown=lambda: calls.append("down"),
        nvmlDeviceGetCount=lambda: 2, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3", nvmlDeviceGetUUID=lambda h: f"GPU-{h}",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=80 * 2**30))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert nvml_gpus() == [Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-0", 81920), Gpu(1, "NVIDIA H100 80GB HBM3", "GPU-1",
                                                                                81920)]
    assert calls == ["init", "down"]


def test_running_jobs_on_nvml_pools_are_metered_from_nvml(monkeypatch, tmp_path):
    import time

    from zhisuan.control import ControlLoop
    from zhisuan.control.metering import Meter
    from zhisuan.engines import LocalEngine
    from zhisuan.model import JobState, parse_job_spec
    from zhisuan.store import JobStore, UsageStore, connect, migrate

    gpus = [Gpu(0, "NVIDIA A100-SXM4-80GB", "GPU-a", 81920), Gpu(1, "NVIDIA A100-SXM4-80GB", "GPU-b", 81920)]
    fake = types.SimpleNamespace(
        NVMLError=RuntimeError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=[90, 50][h]),
        nvmlDeviceGetPowerUsage=lambda h: [350_000, 250_000][h],  # milliwatts
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=[40, 20][h] * 2**30))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    net = bind_discovered(parse_network(NETWORK), lambda: gpus)
    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    loop = ControlLoop(store, net, LocalEngine(tmp_path / "runs"))
    loop.sample_every = 0.0
    job = store.submit(parse_job_spec("name: n\ntenant: t\nresources: {accelerators: a100:2}\nrun: sleep 0.6"),
                       time.time())
    while store.get(job).state is not JobState.SUCCEEDED:
        loop.step(time.time())
        time.sleep(0.1)
    [u] = Meter(net, UsageStore(db)).intervals()
    assert u.busy_source == "nvml" and u.peak_memory_gib == 40
    assert u.busy_device_s / u.measured_device_s == pytest.approx(0.7)  # mean of 90% and 50%
    # NVML's watts where sampled (mean 300 W), the A100's 400 W TDP before the first sample
    assert u.energy_model == "measured watts; TDP for unmeasured time (upper bound)"
    unmeasured = (u.allocated_device_s - u.measured_device_s) / 2
    expected = 2 * (300 * u.measured_device_s / 2 + 400 * unmeasured) * 1.2 / 3.6e6  # 2 devices, PUE 1.2
    assert u.kwh == pytest.approx(expected)
