"""A succeeded job's `outputs` copied to datasets: `outputs: {ckpt: out}` makes the job's `out` (a file or a
folder in its own folder) the dataset `ckpt` of its tenant, at the center it ran in (a dataset of that name
is replaced). The job's folder is the job's: its files are read as a hostile tenant may have left them —
symbolic links and anything but regular files are skipped, never followed; each file is opened without
following links; the copy is bounded by the center's store and the files a dataset may hold."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from zhisuan.agent.protocol import Move, Moved
from zhisuan.control.datasets import MAX_FILES, DataService, check_file
from zhisuan.control.relay import ASK_EVERY, STALL, Mover
from zhisuan.engines.base import EngineDown
from zhisuan.model import SpecError
from zhisuan.storage import S3Store, TransferFailed, put, remove, verify
from zhisuan.storage.files import copy_file, inside, regular_files
from zhisuan.store.datasets import Exists, new_id, prefix_of

log = logging.getLogger("zhisuan.data")


def publish(data: DataService, store: S3Store, tenant: str, center: str, work: Path,
            outputs: dict[str, str]) -> list[str]:
    """Each output made a dataset of `tenant` at `center`; the datasets made (errors are logged, per output)."""
    made = []
    capacity = data.capacity_gb(center) * 1e9
    for name, rel in outputs.items():
        try:
            found = []
            root = inside(work, rel)
            if root is None:
                raise ValueError(f"{rel!r} passes through a link: not read")
            for p, src in regular_files(root, capacity, MAX_FILES):
                try:
                    check_file(p, 0, "0" * 32, "outputs")
                    found.append((p, src))
                except SpecError:
                    log.warning("outputs.%s: skipped %r (not a path a dataset holds)", name, p[:64])
            if not found:
                raise ValueError(f"{rel!r} holds no regular file")
            with tempfile.TemporaryDirectory(prefix="zhisuan-outputs-") as tmp:
                staged = Path(tmp)
                files = [(p, *copy_file(src, staged / p)) for p, src in found]
                now = time.time()
                old = data.datasets.get(tenant, name)
                if old is not None:
                    data.datasets.remove(old.id, now)  # replaced: its objects go with the mover's sweep
                d = data.datasets.begin(tenant, name, center, files, now)
                put(staged, store, d.prefix)
                bad = verify(store, d.prefix, {p: m for p, _, m in files})
                if bad:
                    remove(store, d.prefix)
                    data.datasets.remove(d.id, time.time())
                    raise ValueError(f"the store holds other checksums for {bad[:5]}")
                data.datasets.commit(d.id, time.time())
                made.append(d.ref)
        except (OSError, ValueError, TransferFailed) as e:
            log.warning("outputs.%s of a job of %s: %s", name, tenant, e)
    return made


def publish_through(data: DataService, link: Mover, tenant: str, center: str, handle: str,
                    outputs: dict[str, str], clock: Callable[[], float] = time.monotonic) -> list[str]:
    """At a center whose store only its agent reaches: the agent puts each output into the store (under the
    prefix of a dataset id chosen here) and lists its files; the dataset is recorded once that is done."""
    made = []
    capacity = data.capacity_gb(center) * 1e9
    for name, rel in outputs.items():
        dataset_id = new_id()
        prefix = prefix_of(tenant, name, dataset_id)
        try:
            m = _follow(link, Move(rid=1, op="publish", transfer=0, prefix=prefix, handle=handle, path=rel), clock)
            files = []
            for f in m.files:
                try:
                    check_file(f.path, f.size, f.md5, "outputs")
                    files.append((f.path, f.size, f.md5))
                except SpecError:
                    log.warning("outputs.%s: skipped %r (not a path a dataset holds)", name, f.path[:64])
            if not files or sum(f[1] for f in files) > capacity:
                _follow(link, Move(rid=1, op="remove", transfer=0, prefix=prefix), clock)
                raise ValueError(f"{rel!r} holds no file a dataset may, or more than {center}'s store holds")
            now = time.time()
            old = data.datasets.get(tenant, name)
            if old is not None:
                data.datasets.remove(old.id, now)  # replaced: its objects go with the mover's sweep
            d = data.datasets.begin(tenant, name, center, files, now, dataset_id=dataset_id)
            data.datasets.commit(d.id, time.time())
            made.append(d.ref)
        except (EngineDown, ValueError, Exists) as e:
            log.warning("outputs.%s of a job of %s at %s: %s", name, tenant, center, e)
    return made


def _follow(link: Mover, move: Move, clock: Callable[[], float]) -> Moved:
    """Ask until the agent says the move ended (the agent away for STALL seconds: EngineDown)."""
    heard = clock()
    while True:
        try:
            m = link.move(move)
            heard = clock()
            if m.state in ("done", "failed"):
                if m.state == "failed":
                    raise ValueError(m.error or "failed")
                return m
        except EngineDown:
            if clock() - heard > STALL:
                raise
        time.sleep(ASK_EVERY)
