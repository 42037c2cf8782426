"""A center's datasets as its agent keeps them: the center's object store (its keys are the agent's alone, never
the server's) and the checked copies on the center's disk that its jobs read.

The server asks for moves (protocol `Move`) and the agent carries each out on a thread of its own, over HTTP it
opens to the server (`/v1/agent/relay/...`, the same address and credential as its connection), at the link's
rate: `receive` fetches a dataset's files into a folder of its own, checks every size and MD5, puts them into
the store and checks the store's listing; `send` gives files from the store (through the disk) to the server.
A move asked again while it runs is the same move; asked again after the agent restarted, it resumes: files
already on disk whole are not fetched again. `status` answers from memory at once, so the server's question
never waits for a transfer.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from zhisuan.agent.protocol import Move, Moved, MoveFile, MoveState
from zhisuan.storage import S3Store, put, remove, verify
from zhisuan.storage.fetch import fetch, local_mismatches
from zhisuan.storage.files import copy_file, inside, regular_files

log = logging.getLogger("zhisuan.agent")
CHUNK = 256 << 10
TRIES = 3  # per file, before a move fails (the server then retries the whole move, which resumes)
KEEP = 1000  # ended moves remembered (for the server's status questions)
MAX_FILES = 10_000  # of one job's outputs
LISTING = 6 << 20  # bytes of a publish's file list in its answer (a frame to the server is at most 8 MiB)
SPARE = 4 << 30  # bytes of the agent's disk a publish leaves free


class MoveFailed(RuntimeError):
    pass


@dataclass
class MoveRun:
    cancel: threading.Event = field(default_factory=threading.Event)
    state: MoveState = "running"
    bytes: int = 0
    error: str = ""
    ended: float = 0.0
    files: list[MoveFile] = field(default_factory=list)


def pace(began: float, sent: int, rate: float | None) -> None:
    """Sleep so that `sent` bytes since `began` stay within `rate` bytes/s (the link the network declares)."""
    if rate:
        ahead = sent / rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(min(ahead, 5.0))


class CenterData:
    def __init__(self, center: str, store: S3Store | None, folder: Path, server: str, token: str,
                 verify_tls: ssl.SSLContext | bool = True) -> None:
        self.center, self.store, self.folder = center, store, folder
        self.work_of: Callable[[str], Path | None] = lambda handle: None  # a run's folder (set by the agent)
        self.http = httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                                 verify=verify_tls, trust_env=False, timeout=httpx.Timeout(30.0, connect=10.0))
        self.moves: dict[int, MoveRun] = {}
        self.keyed: dict[tuple[str, str], MoveRun] = {}  # (op, prefix): removals and publishes
        self.lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def close(self) -> None:
        with self.lock:
            for run in [*self.moves.values(), *self.keyed.values()]:
                run.cancel.set()
        self.http.close()

    # ---- the server's questions ----------------------------------------------------------------------

    def handle(self, move: Move) -> Moved:
        if self.store is None:
            return Moved(state="failed", error=f"center {self.center}'s agent was given no store (--store)")
        with self.lock:
            if move.op in ("remove", "publish"):
                return self._keyed(move)
            run = self.moves.get(move.transfer)
            if move.op == "cancel":
                if run is not None:
                    run.cancel.set()
                return Moved(state="failed", error="cancelled")
            if run is None:
                if move.op == "status":
                    return Moved(state="unknown")
                run = self.moves[move.transfer] = MoveRun()
                self._forget_old()
                work = self._receive if move.op == "receive" else self._send
                threading.Thread(target=self._carry, args=(work, move, run), daemon=True,
                                 name=f"zhisuan-move-{move.transfer}").start()
            return Moved(state=run.state, bytes=run.bytes, error=run.error[:2000])

    def _forget_old(self) -> None:
        ended = sorted((r.ended, t) for t, r in self.moves.items() if r.state != "running")
        for _, t in ended[:max(0, len(self.moves) - KEEP)]:
            del self.moves[t]

    def _carry(self, work: Callable[[Move, MoveRun], None], move: Move, run: MoveRun) -> None:
        try:
            work(move, run)
            run.state = "done"
        except Exception as e:  # the server hears why; it retries
            log.warning("move %s of %s: %s", move.op, move.prefix, e)
            run.state, run.error = "failed", ("cancelled" if run.cancel.is_set() else str(e))[:2000]
            if run.cancel.is_set() and move.op == "receive":
                shutil.rmtree(self.folder / ".partial" / move.prefix, ignore_errors=True)  # nothing half-kept
        run.ended = time.monotonic()

    # ---- moves ---------------------------------------------------------------------------------------

    def _paths(self, prefix: str) -> tuple[Path, Path]:
        final = (self.folder / prefix).resolve()
        partial = (self.folder / ".partial" / prefix).resolve()
        if not final.is_relative_to(self.folder.resolve()) or not partial.is_relative_to(self.folder.resolve()):
            raise MoveFailed(f"prefix {prefix[:100]!r} leaves the agent's folder")
        return final, partial

    def _receive(self, move: Move, run: MoveRun) -> None:
        """The files from the server onto the center's disk, checked, then into its store, checked."""
        assert self.store is not None
        files = {f.path: (f.size, f.md5) for f in move.files}
        final, partial = self._paths(move.prefix)
        if not (final.is_dir() and not local_mismatches(final, files)):
            partial.mkdir(parents=True, exist_ok=True, mode=0o700)
            began, counted = time.monotonic(), 0
            for path in sorted(set(local_mismatches(partial, files))):
                counted = self._get(move, run, path, partial, began, counted)
            bad = local_mismatches(partial, files)
            if bad:
                shutil.rmtree(partial, ignore_errors=True)
                raise MoveFailed(f"checksums differ after the transfer: {', '.join(bad[:5])}")
            for f in partial.rglob("*"):
                f.chmod(0o444 if f.is_file() else 0o711)  # jobs read hard links of these
            shutil.rmtree(final, ignore_errors=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            partial.rename(final)
        put(final, self.store, move.prefix)
        bad = verify(self.store, move.prefix, {p: m for p, (_, m) in files.items()})
        if bad:
            raise MoveFailed(f"{self.center}'s store holds other checksums for {', '.join(bad[:5])}")
        run.bytes = max(run.bytes, sum(s for s, _ in files.values()))

    def _get(self, move: Move, run: MoveRun, path: str, into: Path, began: float, counted: int) -> int:
        dest = (into / path).resolve()
        if not dest.is_relative_to(into.resolve()):
            raise MoveFailed(f"{path[:100]!r} leaves the dataset's folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(TRIES):
            got = 0
            try:
                with self.http.stream("GET", f"/v1/agent/relay/{move.transfer}/{quote(path)}") as r:
                    if r.status_code != 200:
                        r.read()
                        raise MoveFailed(f"the server answered {r.status_code} for {path[:100]!r}: {r.text[:300]}")
                    with dest.open("wb") as f:
                        for chunk in r.iter_bytes(CHUNK):
                            if run.cancel.is_set():
                                raise MoveFailed("cancelled")
                            f.write(chunk)
                            got += len(chunk)
                            run.bytes += len(chunk)
                            pace(began, counted + got, move.rate)
                return counted + got
            except httpx.HTTPError as e:
                if attempt == TRIES - 1:
                    raise MoveFailed(f"fetching {path[:100]!r} from the server: {e}") from e
                time.sleep(1.0 + attempt)
                run.bytes -= got
        raise AssertionError("unreachable")

    def _send(self, move: Move, run: MoveRun) -> None:
        """Files from the center's store (through its disk) to the server."""
        assert self.store is not None
        files = {f.path: (f.size, f.md5) for f in move.files}
        final, partial = self._paths(move.prefix)
        source = final
        if not (final.is_dir() and not local_mismatches(final, files)):
            source = partial
            fetch(self.store, move.prefix, partial, cancel=run.cancel)
            bad = local_mismatches(partial, files)
            if bad:
                raise MoveFailed(f"{self.center}'s replica differs from the dataset's checksums: {', '.join(bad[:5])}")
        began, counted = time.monotonic(), 0
        for path, (size, _) in sorted(files.items()):
            counted = self._put(move, run, source / path, path, size, began, counted)
        if source == partial:
            shutil.rmtree(partial, ignore_errors=True)

    def _put(self, move: Move, run: MoveRun, local: Path, path: str, size: int, began: float, counted: int) -> int:
        for attempt in range(TRIES):
            sent = [0]
            try:
                r = self.http.put(f"/v1/agent/relay/{move.transfer}/{quote(path)}",
                                  content=self._chunks(local, run, move.rate, began, counted, sent),
                                  headers={"Content-Length": str(size)})
                if r.status_code != 204:
                    raise MoveFailed(f"the server answered {r.status_code} for {path[:100]!r}: {r.text[:300]}")
                return counted + sent[0]
            except httpx.HTTPError as e:
                if attempt == TRIES - 1:
                    raise MoveFailed(f"giving {path[:100]!r} to the server: {e}") from e
                time.sleep(1.0 + attempt)
                run.bytes -= sent[0]
        raise AssertionError("unreachable")

    @staticmethod
    def _chunks(local: Path, run: MoveRun, rate: float | None, began: float, counted: int,
                sent: list[int]) -> Iterator[bytes]:
        with local.open("rb") as f:
            while chunk := f.read(CHUNK):
                if run.cancel.is_set():
                    raise MoveFailed("cancelled")
                sent[0] += len(chunk)
                run.bytes += len(chunk)
                pace(began, counted + sent[0], rate)
                yield chunk

    def _keyed(self, move: Move) -> Moved:
        """Caller holds the lock. A removal or a publish: begun once, answered until it ended, then forgotten
        (asked again later, it is carried out again: both are idempotent)."""
        key = (move.op, move.prefix)
        run = self.keyed.get(key)
        if run is None:
            run = self.keyed[key] = MoveRun()
            work = self._remove if move.op == "remove" else self._publish
            threading.Thread(target=self._carry, args=(work, move, run), daemon=True,
                             name=f"zhisuan-{move.op}").start()
        if run.state != "running":
            del self.keyed[key]
        return Moved(state=run.state, error=run.error[:2000], files=run.files)

    def _remove(self, move: Move, run: MoveRun) -> None:
        assert self.store is not None
        remove(self.store, move.prefix)
        for path in self._paths(move.prefix):
            shutil.rmtree(path, ignore_errors=True)

    def _publish(self, move: Move, run: MoveRun) -> None:
        """A succeeded job's outputs (regular files only, links never followed) into the store under the
        prefix, checked; kept on disk too, where jobs here read it."""
        assert self.store is not None
        work = self.work_of(move.handle) if move.handle else None
        if work is None or move.path is None:
            raise MoveFailed(f"run {move.handle}'s folder is not one center {self.center}'s agent reads")
        root = inside(work, move.path)
        if root is None:
            raise MoveFailed(f"{move.path[:100]!r} passes through a link: not read")
        room = shutil.disk_usage(self.folder).free - SPARE
        found = regular_files(root, room, MAX_FILES)
        if not found:
            raise MoveFailed(f"{move.path[:100]!r} holds no regular file")
        final, partial = self._paths(move.prefix)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            files = []
            for p, src in found:
                if len(p.encode()) <= 1024:  # longer paths are not a dataset's (the server skips them too)
                    size, md5 = copy_file(src, partial / p)
                    files.append(MoveFile(path=p, size=size, md5=md5))
            if sum(len(f.model_dump_json()) for f in files) > LISTING:
                raise MoveFailed(f"the outputs at {move.path[:100]!r} are too many files to list")
            put(partial, self.store, move.prefix)
            bad = verify(self.store, move.prefix, {f.path: f.md5 for f in files})
            if bad:
                raise MoveFailed(f"{self.center}'s store holds other checksums for {', '.join(bad[:5])}")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        for f in partial.rglob("*"):
            f.chmod(0o444 if f.is_file() else 0o711)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(final)
        run.files, run.bytes = files, sum(f.size for f in files)

    # ---- jobs' inputs --------------------------------------------------------------------------------

    def local(self, prefix: str) -> Path:
        """The folder a job here reads dataset `prefix` from: the copy on disk, fetched from the store first if
        need be (rclone checks each object's MD5 against the store's)."""
        if self.store is None:
            raise MoveFailed(f"center {self.center}'s agent keeps no datasets (no --store)")
        final, partial = self._paths(prefix)
        if final.is_dir():
            return final
        fetch(self.store, prefix, partial)
        for f in partial.rglob("*"):
            f.chmod(0o444 if f.is_file() else 0o711)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(final)
        return final

