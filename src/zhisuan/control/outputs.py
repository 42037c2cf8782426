"""A succeeded job's `outputs` copied to datasets: `outputs: {ckpt: out}` makes the job's `out` (a file or a
folder in its own folder) the dataset `ckpt` of its tenant, at the center it ran in (a dataset of that name
is replaced). The job's folder is the job's: its files are read as a hostile tenant may have left them —
symbolic links and anything but regular files are skipped, never followed; each file is opened without
following links; the copy is bounded by the center's store and the files a dataset may hold."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import time
from pathlib import Path

from zhisuan.control.datasets import MAX_FILES, DataService, check_file
from zhisuan.model import SpecError
from zhisuan.storage import S3Store, TransferFailed, put, remove, verify

log = logging.getLogger("zhisuan.data")


def regular_files(root: Path, limit_bytes: float) -> list[tuple[str, Path]]:
    """(path inside the output, file) for the regular files under `root` (or `root` itself), links skipped."""
    try:
        top = os.lstat(root)
    except OSError:
        return []
    if stat.S_ISREG(top.st_mode):
        return [(root.name, root)]
    if not stat.S_ISDIR(top.st_mode):
        return []
    out: list[tuple[str, Path]] = []
    total = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in sorted(files):
            path = Path(folder) / name
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            total += st.st_size
            if len(out) >= MAX_FILES or total > limit_bytes:
                raise ValueError(f"more than {MAX_FILES:,} files or {limit_bytes / 1e9:,.1f} GB")
            out.append((path.relative_to(root).as_posix(), path))
    return out


def _copy(src: Path, dest: Path) -> tuple[int, str]:
    """A regular file copied without following a link at its last component; (bytes, MD5)."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    digest, size = hashlib.md5(usedforsecurity=False), 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(fd, "rb") as f, dest.open("wb") as out:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def publish(data: DataService, store: S3Store, tenant: str, center: str, work: Path,
            outputs: dict[str, str]) -> list[str]:
    """Each output made a dataset of `tenant` at `center`; the datasets made (errors are logged, per output)."""
    made = []
    capacity = data.capacity_gb(center) * 1e9
    for name, rel in outputs.items():
        try:
            found = []
            for p, src in regular_files(work / rel, capacity):
                try:
                    check_file(p, 0, "0" * 32, "outputs")
                    found.append((p, src))
                except SpecError:
                    log.warning("outputs.%s: skipped %r (not a path a dataset holds)", name, p[:64])
            if not found:
                raise ValueError(f"{rel!r} holds no regular file")
            with tempfile.TemporaryDirectory(prefix="zhisuan-outputs-") as tmp:
                staged = Path(tmp)
                files = [(p, *_copy(src, staged / p)) for p, src in found]
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
