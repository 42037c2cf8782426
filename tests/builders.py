"""Builders for small, hand-checkable scheduler inputs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from zhisuan.catalog import load_catalog
from zhisuan.model import Request
from zhisuan.scheduler import PendingJob, PoolState

ROOT = Path(__file__).resolve().parent.parent


def pool(center: str = "c1", name: str = "p", chip: str = "a100", nodes: int = 2, size: int = 8,
         price: float = 10.0, region: str = "east", pue: float = 1.2, grid: float = 0.5,
         healthy: bool = True) -> PoolState:
    return PoolState(center=center, name=name, chip=load_catalog().lookup(chip), region=region, nodes=nodes,
                     devices_per_node=size, price=price, pue=pue, carbon_kg_per_kwh=grid, healthy=healthy)


def named(chip: str = "a100", per_node: int = 1, nodes: int = 1, **kw: object) -> Request:
    c = load_catalog().lookup(chip)
    return Request(per_node, nodes, model=c.name, stacks=frozenset([c.stack]), ref_tflops=c.fp16_tflops,
                   **kw)  # type: ignore[arg-type]


def job(jid: str, req: Request, submit: float = 0.0, duration: float = 3600.0, tenant: str = "t",
        priority: int = 0) -> PendingJob:
    return PendingJob(jid, tenant, req, submit, duration, priority)


def step_until(loop: Any, store: Any, job_id: str, states: set[Any], limit: float = 60.0, pause: float = 0.1) -> Any:
    """Step a control loop until the job reaches one of `states`; fail with its history otherwise."""
    end = time.time() + limit
    while time.time() < end:
        loop.step(time.time())
        rec = store.get(job_id)
        if rec.state in states:
            return rec
        time.sleep(pause)
    raise AssertionError((store.get(job_id).state, [t.reason for t in store.transitions(job_id)]))


# A real rendezvous with nothing but the environment every engine gives a gang's members: member 0 listens on
# MASTER_ADDR:MASTER_PORT, the others connect and send rank + 1, member 0 sends back the sum (as an
# all-reduce would); each prints what it joined. A 2-member gang prints "joined 3" twice.
RENDEZVOUS = r"""python3 - <<'PY'
import os, socket, time
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
assert os.environ["PET_NODE_RANK"] == str(rank) and os.environ["PET_NNODES"] == str(world)
if rank == 0:
    server = socket.create_server((addr, port))
    server.settimeout(60)
    total, peers = 1, []
    for _ in range(world - 1):
        conn, _ = server.accept()
        total += int(conn.recv(16))
        peers.append(conn)
    for conn in peers:
        conn.sendall(str(total).encode())
else:
    for _ in range(600):
        try:
            conn = socket.create_connection((addr, port), timeout=60)
            break
        except OSError:
            time.sleep(0.1)
    conn.sendall(str(rank + 1).encode())
    total = int(conn.recv(16))
print(f"rank {rank}/{world} joined {total} via {addr}:{port} hosts {os.environ['ZHISUAN_NODELIST']} "
      f"devices {os.environ['ZHISUAN_LOCAL_DEVICES']} of {os.environ['PET_NPROC_PER_NODE']}")
PY"""


def live(tmp_path: Path, network: Any, engine: Any = None, **loop_kw: Any) -> tuple[Any, Any, Any]:
    """(store, control loop, service) of a live network on SQLite in `tmp_path`; the local engine unless an
    engine or fleet is given."""
    from zhisuan.control import ControlLoop
    from zhisuan.control.service import Service
    from zhisuan.engines import LocalEngine
    from zhisuan.store import JobStore, connect, migrate

    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    loop = ControlLoop(store, network, engine or LocalEngine(tmp_path / "runs", grace=0.5), **loop_kw)
    return store, loop, Service(store, network, loop)
