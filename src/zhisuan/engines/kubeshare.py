"""Device resources of a Kubernetes pod: whole devices, a share of one GPU, or none (CPU-only).

Kubernetes has no share of a device of its own; a cluster that shares GPUs runs a device plugin that
does, and the pod names that plugin's resources. Two are supported (`engine_config.sharing`):

- `hami` (default), HAMi's device plugin and scheduler: `nvidia.com/gpu: 1` (one vGPU),
  `nvidia.com/gpucores` (percent of the GPU's cores) and `nvidia.com/gpumem` (MiB of device memory).
  Source: github.com/Project-HAMi/HAMi README, "Running GPU Jobs".
- `volcano`, Volcano's vGPU (volcano-vgpu-device-plugin, scheduler `volcano`): `volcano.sh/vgpu-number: 1`,
  `volcano.sh/vgpu-cores` (percent) and `volcano.sh/vgpu-memory` (MB). Source: github.com/volcano-sh/volcano
  docs/user-guide/how_to_use_volcano_vgpu.md, "HAMI-core Usage".

Both enforce the share inside the container (HAMi-core hooks CUDA), so only CUDA chips are shared.
"""

from __future__ import annotations

import math

from zhisuan.engines.base import Launch

DEVICE_RESOURCE = {"cuda": "nvidia.com/gpu", "cann": "huawei.com/Ascend910", "rocm": "amd.com/gpu",
                   "dtk": "hygon.com/dcu", "neuware": "cambricon.com/mlu", "synapseai": "habana.ai/gaudi"}
SHARE_RESOURCES = {  # sharing -> (number, cores in percent, memory in MiB)
    "hami": ("nvidia.com/gpu", "nvidia.com/gpucores", "nvidia.com/gpumem"),
    "volcano": ("volcano.sh/vgpu-number", "volcano.sh/vgpu-cores", "volcano.sh/vgpu-memory"),
}


def device_limits(launch: Launch, sharing: str) -> dict[str, str]:
    """The container's device limits for a launch: {} for a CPU-only job."""
    stack = launch.pool.chip.stack
    if not launch.devices_per_node:
        return {}
    if not launch.milli:
        return {DEVICE_RESOURCE.get(stack, "nvidia.com/gpu"): str(launch.devices_per_node)}
    if stack != "cuda":
        raise ValueError(f"a share of a {launch.pool.accelerator} device: only CUDA GPUs are shared on Kubernetes")
    number, cores, memory = SHARE_RESOURCES[sharing]
    limits = {number: "1", cores: str(max(1, math.ceil(launch.milli / 10)))}
    if launch.pool.chip.memory_gb:
        limits[memory] = str(int(launch.pool.chip.memory_gb * 1024 * launch.milli / 1000))
    return limits


def devices_of(limits: dict[str, str]) -> float:
    """Devices a container's limits hold, a share counted as its fraction (percent of cores)."""
    whole = sum(int(v) for k, v in limits.items() if k in DEVICE_RESOURCE.values())
    for number, cores, _ in SHARE_RESOURCES.values():
        if cores in limits:
            return int(limits.get(number, "1")) * int(limits[cores]) / 100
    return float(whole)
