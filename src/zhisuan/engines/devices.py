"""What a job is told about its devices, on every engine: which ones it may use (the stack's own
`*_VISIBLE_DEVICES` variable) and, holding a share of one, how much of it."""

from __future__ import annotations

import math

VISIBLE = {"cuda": "CUDA_VISIBLE_DEVICES", "cann": "ASCEND_RT_VISIBLE_DEVICES", "rocm": "HIP_VISIBLE_DEVICES",
           "dtk": "HIP_VISIBLE_DEVICES", "neuware": "MLU_VISIBLE_DEVICES", "synapseai": "HABANA_VISIBLE_MODULES"}


def share_env(stack: str, milli: int, memory_gb: float | None) -> dict[str, str]:
    """What a job holding `milli` thousandths of its one device is told, so it keeps to its share while
    others use the rest: ZHISUAN_DEVICE_SHARE (0.5) for every stack; on CUDA, the client settings of
    NVIDIA MPS (honoured when the machine runs nvidia-cuda-mps-control): CUDA_MPS_ACTIVE_THREAD_PERCENTAGE
    (the share in percent, rounded up) and, when the chip's memory is known, CUDA_MPS_PINNED_DEVICE_MEM_LIMIT
    as share x memory for device 0, the job's only visible device (MPS counts devices as the client sees
    them). Nothing enforces the share without MPS: the job is trusted, as on any shared GPU."""
    env = {"ZHISUAN_DEVICE_SHARE": f"{milli / 1000:g}"}
    if stack == "cuda":
        env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(max(1, math.ceil(milli / 10)))
        if memory_gb:
            mib = int(memory_gb * 1024 * milli / 1000)
            env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={mib // 1024}G" if mib % 1024 == 0 else f"0={mib}MB"
    return env
