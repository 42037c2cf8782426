"""Readiness probes of service replicas: all at once (at most `CONCURRENCY` open), each within a total
`DEADLINE` — one prober serves every tenant, so a replica that answers slowly, or drips its answer byte by
byte, is simply not ready and holds no one else's probe up. Only the status line is read, never a body.
On this machine, a replica counts only if what listens on its port runs under the replica's own uid:
another tenant's job that took a dead replica's port would otherwise get the service's prompts."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

import httpx

TIMEOUT = 1.0  # seconds to connect, and between bytes
DEADLINE = 2.0  # seconds a whole probe may take
CONCURRENCY = 64


@dataclass(frozen=True)
class Target:
    replica: str  # its job id
    host: str
    port: int
    path: str  # the service's ready path
    key: str = field(default="", repr=False)  # the replica's bearer key
    uid: int | None = None  # who must listen on the port (a replica on this machine); None: not checked


def listeners() -> dict[int, int]:
    """Port -> uid of every socket listening on this host (Linux /proc/net/tcp and tcp6), read once a round."""
    out: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table, encoding="ascii").read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and fields[3] == "0A":
                out.setdefault(int(fields[1].rsplit(":", 1)[1], 16), int(fields[7]))
    return out


def on_this_machine(host: str) -> bool:
    """Whether `host` (a name or an address an engine gave) is a loopback address of this machine."""
    try:
        return ipaddress.ip_address(host if ":" in host else socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def probe_all(targets: list[Target]) -> dict[str, bool]:
    """Replica -> its ready path answered 200 within the deadline."""
    return asyncio.run(_all(targets)) if targets else {}


async def _all(targets: list[Target]) -> dict[str, bool]:
    gate = asyncio.Semaphore(CONCURRENCY)
    owners = listeners() if any(t.uid is not None for t in targets) else {}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        async def one(t: Target) -> tuple[str, bool]:
            async with gate:
                try:
                    return t.replica, await asyncio.wait_for(_ready(client, t, owners), DEADLINE)
                except TimeoutError:
                    return t.replica, False
        return dict(await asyncio.gather(*(one(t) for t in targets)))


async def _ready(client: httpx.AsyncClient, t: Target, owners: dict[int, int]) -> bool:
    if t.uid is not None and owners.get(t.port) != t.uid:
        return False  # nothing, or someone else, listens there
    host = f"[{t.host}]" if ":" in t.host else t.host
    headers = {"Authorization": f"Bearer {t.key}"} if t.key else None
    try:
        async with client.stream("GET", f"http://{host}:{t.port}{t.path}", headers=headers) as answer:
            return answer.status_code == 200
    except httpx.HTTPError:
        return False
