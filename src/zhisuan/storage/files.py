"""Files of a job's own folder read as a hostile tenant may have left them: symbolic links and anything but
regular files skipped, never followed; each file opened without following a link; bounded in count and
bytes. Used wherever a job's outputs are made a dataset (the server for its own centers, an agent for its)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def inside(work: Path, rel: str) -> Path | None:
    """`work/rel` when no part of `rel` is a link, `..` or absolute (None otherwise): the job made its folder,
    and a link in it (`out -> /`) could name anything the reader may read."""
    here = work
    for part in Path(rel).parts:
        if part in ("", ".", "..", "/") or "\x00" in part:
            return None
        here = here / part
        if os.path.islink(here):
            return None
    return here


def regular_files(root: Path, limit_bytes: float, max_files: int) -> list[tuple[str, Path]]:
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
            if len(out) >= max_files or total > limit_bytes:
                raise ValueError(f"more than {max_files:,} files or {limit_bytes / 1e9:,.1f} GB")
            out.append((path.relative_to(root).as_posix(), path))
    return out


def copy_file(src: Path, dest: Path) -> tuple[int, str]:
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
