"""The environment every member of a gang gets, on every engine, so multi-node jobs start without
wrappers: zhisuan's own names, the ones `torch.distributed` reads (MASTER_ADDR/PORT, WORLD_SIZE, RANK,
counted in nodes: one process per node, as engines start them) and torchrun's `PET_*` defaults (so a bare
`torchrun --nproc-per-node 8 train.py` joins the gang).

| variable | meaning |
|---|---|
| ZHISUAN_MASTER_ADDR, MASTER_ADDR, PET_MASTER_ADDR | address of member 0 |
| ZHISUAN_MASTER_PORT, MASTER_PORT, PET_MASTER_PORT | a port free for this job on member 0 |
| ZHISUAN_NODELIST | the members' hosts, comma-separated, in rank order |
| ZHISUAN_NNODES, WORLD_SIZE, PET_NNODES | members |
| ZHISUAN_NODE_RANK, RANK, NODE_RANK, PET_NODE_RANK | this member's rank (0 …) |
| ZHISUAN_DEVICES_PER_NODE, PET_NPROC_PER_NODE | devices each member holds |
| ZHISUAN_LOCAL_DEVICES | this member's device ids (as the stack's *_VISIBLE_DEVICES) |
| LOCAL_RANK | 0 (torchrun sets its workers' own) |

Values may be shell expressions where the engine fills them in on the node (Slurm).
"""

from __future__ import annotations

import socket
import zlib


def gang_env(addr: str, port: str, nodelist: str, nnodes: str, rank: str, per_node: str,
             devices: str) -> dict[str, str]:
    return {
        "ZHISUAN_MASTER_ADDR": addr, "ZHISUAN_MASTER_PORT": port, "ZHISUAN_NODELIST": nodelist,
        "ZHISUAN_NNODES": nnodes, "ZHISUAN_NODE_RANK": rank, "ZHISUAN_DEVICES_PER_NODE": per_node,
        "ZHISUAN_LOCAL_DEVICES": devices,
        "MASTER_ADDR": addr, "MASTER_PORT": port, "WORLD_SIZE": nnodes, "RANK": rank, "NODE_RANK": rank,
        "LOCAL_RANK": "0",
        "PET_MASTER_ADDR": addr, "PET_MASTER_PORT": port, "PET_NNODES": nnodes, "PET_NODE_RANK": rank,
        "PET_NPROC_PER_NODE": per_node,
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (the job binds it moments later; a clash fails the job, not others)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_for(job_id: str, attempt: int) -> int:
    """A port in 20000-29999 derived from the job, for engines that cannot ask the member's host."""
    return 20000 + zlib.crc32(f"{job_id}/{attempt}".encode()) % 10000
