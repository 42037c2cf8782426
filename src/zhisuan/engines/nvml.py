"""NVIDIA GPUs on this machine through NVML (nvidia-ml-py), for local-engine pools that say
`discover: nvml`: the pool becomes one node holding this machine's GPUs of its chip, with their
NVML indices as device ids, so the network file need not repeat what the driver already knows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zhisuan.catalog import UnknownAcceleratorError, load_catalog
from zhisuan.model import Network


class DiscoveryError(RuntimeError):
    """Discovery was asked for and cannot be done; the message names the pool's field."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str  # as NVML reports it, e.g. "NVIDIA A100-SXM4-80GB"
    uuid: str
    memory_mib: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_gpus() -> list[Gpu]:
    """This machine's NVIDIA GPUs; DiscoveryError when nvidia-ml-py or the driver is missing."""
    try:
        import pynvml  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as e:
        raise DiscoveryError("nvidia-ml-py is not installed: pip install 'zhisuan[nvidia]'") from e
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        raise DiscoveryError(f"NVML does not start ({e}): no NVIDIA driver on this machine?") from e
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(Gpu(i, _text(pynvml.nvmlDeviceGetName(h)), _text(pynvml.nvmlDeviceGetUUID(h)),
                            int(pynvml.nvmlDeviceGetMemoryInfo(h).total) // 2**20))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def chip_of(gpu: Gpu) -> str | None:
    """The catalog model of an NVML board name (aliases.yaml lists NVML's names), None if unknown."""
    try:
        return load_catalog().lookup(gpu.name).name
    except UnknownAcceleratorError:
        return None


def bind_discovered(network: Network, gpus: Callable[[], list[Gpu]] = nvml_gpus) -> Network:
    """The network with every `discover: nvml` pool sized and numbered from this machine's GPUs."""
    wanted = [(ci, pi) for ci, c in enumerate(network.centers) for pi, p in enumerate(c.pools) if p.discover]
    if not wanted:
        return network
    found = gpus()
    data = network.model_dump()
    for ci, pi in wanted:
        center, pool = network.centers[ci], network.centers[ci].pools[pi]
        field = f"centers.{ci}.pools.{pi}.discover"
        if center.engine != "local":
            raise DiscoveryError(f"{field}: NVML discovery is for local-engine centers, {center.name} is "
                                 f"{center.engine}")
        mine = [g for g in found if chip_of(g) == pool.accelerator]
        if not mine:
            seen = ", ".join(f"{g.index}: {g.name}" for g in found) or "none"
            raise DiscoveryError(f"{field}: no {pool.accelerator} among this machine's GPUs ({seen})")
        data["centers"][ci]["pools"][pi].update(
            nodes=1, devices_per_node=len(mine), device_ids=[str(g.index) for g in mine])
    return Network.model_validate(data)


@dataclass(frozen=True)
class DeviceSample:
    busy_fraction: float  # mean NVML utilisation of the devices, 0..1
    watts: float  # mean draw per device
    memory_gib: float  # largest memory in use on one device


def sample(indices: list[int]) -> DeviceSample:
    """Utilisation, power and memory of this machine's GPUs `indices` (NVML), averaged over them."""
    import pynvml  # type: ignore[import-untyped, import-not-found, unused-ignore]

    pynvml.nvmlInit()
    try:
        util, watts, mem = [], [], []
        for i in indices:
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            util.append(pynvml.nvmlDeviceGetUtilizationRates(h).gpu / 100.0)
            watts.append(pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0)  # milliwatts
            mem.append(pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**30)
        return DeviceSample(sum(util) / len(util), sum(watts) / len(watts), max(mem))
    finally:
        pynvml.nvmlShutdown()
