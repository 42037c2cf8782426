"""Datasets to and from centers whose stores only their agents reach, relayed through the server.

The server holds no key to a `join: agent` center's store. A move there is its agent's: it fetches each file
from the server over HTTP it opens itself (`GET /v1/agent/relay/<transfer>/<path>`, at the link's rate) into
the center's store, or gives files from that store (`PUT` to the same address). The server grants a
transfer's declared files to that one center, in that one direction, while the move runs; counts the bytes
as they pass (the transfer's progress); cuts every file at its declared size; and asks the agent every second
how the move stands. An agent that restarted answers `unknown` and is asked again: it skips the files it
already holds whole, so the move resumes rather than starts over. No byte for `STALL` seconds fails the
attempt (the mover retries it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from zhisuan.agent.protocol import Move, Moved, MoveFile
from zhisuan.control.errors import Forbidden, NotFound
from zhisuan.engines.base import EngineDown
from zhisuan.storage import Progress, TransferCancelled, TransferFailed
from zhisuan.storage.run import StorageError

STALL = 60.0  # seconds without a byte moved (through the server or at the agent) that fail an attempt
ASK_EVERY = 1.0  # seconds between questions to the agent about a move
Direction = Literal["give", "take"]  # give: the agent reads the files from the server; take: it writes them


class RelayFailed(TransferFailed):
    """A move through a center's agent did not complete (the agent said why, or went silent)."""

    def __init__(self, center: str, why: str) -> None:
        StorageError.__init__(self, f"relay through {center}'s agent: {why}")
        self.operation, self.stores, self.returncode, self.lines = "relay", (center,), 1, [why]


class Mover(Protocol):
    """What a move needs of a center's link (control/link.py's CenterLink)."""

    name: str

    def move(self, move: Move) -> Moved: ...


@dataclass
class Grant:
    center: str
    direction: Direction
    folder: Path
    files: dict[str, tuple[int, str]]
    bytes: int = 0  # passed through the server so far
    received: set[str] = field(default_factory=set)  # files written whole (take)


class Relay:
    """The grants of the transfers under way through agents, shared by the mover and the API's relay routes."""

    def __init__(self) -> None:
        self.grants: dict[int, Grant] = {}
        self.lock = threading.Lock()

    def grant(self, transfer: int, center: str, direction: Direction, folder: Path,
              files: dict[str, tuple[int, str]]) -> Grant:
        g = Grant(center, direction, folder, files)
        with self.lock:
            self.grants[transfer] = g
        return g

    def revoke(self, transfer: int) -> None:
        with self.lock:
            self.grants.pop(transfer, None)

    def file(self, center: str, transfer: int, path: str, direction: Direction) -> tuple[Path, int]:
        """The local file a center's agent may read (give) or write (take) for `transfer`, and its declared
        size; NotFound unless that center holds that grant and `path` is one of its files."""
        with self.lock:
            g = self.grants.get(transfer)
        if g is None or g.center != center:
            raise NotFound(str(transfer), "transfer under way for this center")
        if g.direction != direction:
            verb = "read" if direction == "give" else "write"
            raise Forbidden(f"transfer {transfer} is not one center {center} may {verb}")
        declared = g.files.get(path)
        if declared is None:
            raise NotFound(path[:200], "file of this transfer")
        target = (g.folder / path).resolve()
        if not target.is_relative_to(g.folder.resolve()):
            raise Forbidden(f"{path[:200]!r} is outside the transfer's folder")
        return target, declared[0]

    def count(self, transfer: int, n: int) -> None:
        with self.lock:
            g = self.grants.get(transfer)
            if g is not None:
                g.bytes += n

    def arrived(self, transfer: int, path: str) -> None:
        with self.lock:
            g = self.grants.get(transfer)
            if g is not None:
                g.received.add(path)


def relay_move(link: Mover, relay: Relay, transfer: int, prefix: str, direction: Direction, folder: Path,
               files: dict[str, tuple[int, str]], rate: float, cancel: threading.Event,
               progress: Callable[[Progress], None], share: tuple[float, float] = (0.0, 1.0),
               clock: Callable[[], float] = time.monotonic) -> None:
    """One leg of a transfer through `link`'s agent: `give` — the files in `folder` into its center's store;
    `take` — the center's files into `folder` (checked by the caller). `share`: the part of the whole transfer
    this leg is (offset, fraction), for progress. TransferCancelled, or TransferFailed naming the center."""
    total = sum(s for s, _ in files.values())
    op: Literal["receive", "send"] = "receive" if direction == "give" else "send"
    begin = Move(rid=1, op=op, transfer=transfer, prefix=prefix, rate=rate,
                 files=[MoveFile(path=p, size=s, md5=m) for p, (s, m) in sorted(files.items())])
    status = Move(rid=1, op="status", transfer=transfer, prefix=prefix)
    g = relay.grant(transfer, link.name, direction, folder, files)
    asked_to_begin = False
    last, moved_at, why = (-1, -1), clock(), ""
    try:
        while True:
            if cancel.is_set():
                with contextlib.suppress(EngineDown):  # an agent away: its move fails on the grant revoked below
                    link.move(Move(rid=1, op="cancel", transfer=transfer, prefix=prefix))
                raise TransferCancelled(f"transfer {transfer} cancelled")
            try:
                m = link.move(status if asked_to_begin else begin)
                asked_to_begin = True
                if m.state == "unknown":
                    m = link.move(begin)  # the agent restarted: it resumes what its disk holds
            except EngineDown as e:
                m, why = None, str(e)
            if m is not None and m.state == "done":
                return
            if m is not None and m.state == "failed":
                raise RelayFailed(link.name, m.error or "failed")
            now = clock()
            seen = (g.bytes, m.bytes if m is not None else last[1])
            if seen != last:
                last, moved_at = seen, now
            elif now - moved_at > STALL:
                raise RelayFailed(link.name, f"no byte moved for {STALL:.0f} s{': ' + why if why else ''}")
            done = share[0] * total + share[1] * min(g.bytes, total)
            progress(Progress(int(done), total, 0.0, len(g.received), len(files)))
            cancel.wait(ASK_EVERY)
    finally:
        relay.revoke(transfer)
