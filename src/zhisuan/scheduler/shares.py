"""Devices in thousandths, CPU and memory per node of one pool: the state behind device shares.

A pool keeps this only once it holds something other than whole devices (a share, CPUs or memory);
until then its bucketed counts of whole free devices say everything. Arrays are numpy so a fit over
every node of a pool is one vector expression (no loss of the placements/s figure for the common case).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from zhisuan.scheduler.shape import WHOLE, Shape

B = npt.NDArray[np.bool_]
Picks = tuple[tuple[int, ...], ...]  # device indices per node of an allocation


class DeviceShares:
    """`dev[node, k]`: thousandths of device k free; `cpu[node]` thousandths of a CPU; `mem[node]` MiB."""

    __slots__ = ("cpu", "dev", "mem", "pods", "slots")

    def __init__(self, nodes: int, size: int, cpu: int, memory: int) -> None:
        self.dev = np.full((nodes, size), WHOLE, dtype=np.int32)
        self.cpu = np.full(nodes, cpu, dtype=np.int64)
        self.mem = np.full(nodes, memory, dtype=np.int64)
        self.slots: dict[str, Picks] = {}
        self.pods = np.zeros((nodes, 2), dtype=np.int64)  # per node: jobs holding shares, jobs holding whole devices

    def whole(self, node: int) -> int:
        """Devices of a node nobody holds any part of."""
        return int(np.count_nonzero(self.dev[node] == WHOLE))

    def node_mask(self, shape: Shape) -> B:
        """Nodes one gang member of this shape fits on now."""
        ok: B = (self.cpu >= shape.cpu) & (self.mem >= shape.memory)
        if shape.milli:
            ok &= (self.dev >= shape.milli).any(axis=1)
        elif shape.devices_per_node:
            ok &= np.count_nonzero(self.dev == WHOLE, axis=1) >= shape.devices_per_node
        return ok

    def fits(self, shape: Shape) -> bool:
        return int(np.count_nonzero(self.node_mask(shape))) >= shape.nodes

    def device_mask(self, shape: Shape) -> B:
        """[node, device] a share of this shape fits there (its node's CPU and memory included)."""
        ok: B = (self.dev >= shape.milli) & ((self.cpu >= shape.cpu) & (self.mem >= shape.memory))[:, None]
        return ok

    def devices_for(self, shape: Shape, node: int) -> tuple[int, ...]:
        """The default devices on a node: a share goes to the fullest device it fits (lowest index on a tie),
        whole devices are the lowest-numbered free ones."""
        row = self.dev[node]
        if shape.milli:
            return (int(np.argmin(np.where(row >= shape.milli, row, WHOLE + 1))),)
        return tuple(int(k) for k in np.flatnonzero(row == WHOLE)[: shape.devices_per_node])

    def best_fit(self, shape: Shape) -> tuple[int, ...]:
        """The default nodes: the fullest that fit (fewest free thousandths, then CPU), lowest index first."""
        idx = np.flatnonzero(self.node_mask(shape))
        order = np.lexsort((idx, self.cpu[idx], self.dev[idx].sum(axis=1)))
        return tuple(sorted(int(n) for n in idx[order[: shape.nodes]]))

    def apply(self, job_id: str, shape: Shape, nodes: tuple[int, ...], picks: Picks | None = None) -> None:
        """Take a shape on these nodes (devices as given, else the defaults); all or nothing."""
        take = shape.milli or WHOLE
        chosen = picks if picks is not None else tuple(self.devices_for(shape, n) for n in nodes)
        want = 1 if shape.milli else shape.devices_per_node
        for n, ks in zip(nodes, chosen, strict=True):
            row = self.dev[n]
            if (len(set(ks)) != want or any(row[k] < take for k in ks) or self.cpu[n] < shape.cpu
                    or self.mem[n] < shape.memory):
                raise ValueError(f"allocation {job_id} over-allocates node {n}")
        for n, ks in zip(nodes, chosen, strict=True):
            for k in ks:
                self.dev[n, k] -= take
            self.cpu[n] -= shape.cpu
            self.mem[n] -= shape.memory
            if shape.devices_per_node:
                self.pods[n, 0 if shape.milli else 1] += 1
        self.slots[job_id] = chosen

    def remove(self, job_id: str, shape: Shape, nodes: tuple[int, ...]) -> None:
        take = shape.milli or WHOLE
        for n, ks in zip(nodes, self.slots.pop(job_id), strict=True):
            for k in ks:
                self.dev[n, k] += take
            self.cpu[n] += shape.cpu
            self.mem[n] += shape.memory
            if shape.devices_per_node:
                self.pods[n, 0 if shape.milli else 1] -= 1

    def node_fits(self, node: int, shape: Shape) -> bool:
        if self.cpu[node] < shape.cpu or self.mem[node] < shape.memory:
            return False
        row = self.dev[node]
        if shape.milli:
            return bool(row.max(initial=0) >= shape.milli)
        return int(np.count_nonzero(row == WHOLE)) >= shape.devices_per_node

    def copy(self) -> DeviceShares:
        other = DeviceShares.__new__(DeviceShares)
        other.dev, other.cpu, other.mem = self.dev.copy(), self.cpu.copy(), self.mem.copy()
        other.slots, other.pods = dict(self.slots), self.pods.copy()
        return other

    def allocated_milli(self) -> int:
        """Thousandths of devices held, over the pool."""
        return int(self.dev.size * WHOLE - int(self.dev.sum()))
