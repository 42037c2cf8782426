"""A job's inputs as every engine hands them: the checked local copy of each dataset linked into the job's own
folder, read-only, and named in $ZHISUAN_INPUT_<MOUNT>. The folder must be on a filesystem the job's nodes
see (a Slurm cluster's shared filesystem; the machine a local or Ray job runs on)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def hand_inputs(work: Path, inputs: dict[str, str]) -> dict[str, str]:
    """Each input's checked local copy linked into the job's own folder (read-only: root's files, a root
    folder the job cannot change), and the variables naming where: $ZHISUAN_INPUT_<MOUNT>."""
    out = {}
    for mount, source in inputs.items():
        src = Path(source)
        dest = work / "inputs" / mount
        for f in sorted(src.rglob("*")):
            target = dest / f.relative_to(src)
            if f.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif f.is_file() and not f.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, target)
                except OSError:  # another filesystem: a copy
                    shutil.copy2(f, target)
        dest.mkdir(parents=True, exist_ok=True)
        for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
            d.chmod(0o555)
        (work / "inputs").chmod(0o555)
        out[f"ZHISUAN_INPUT_{mount.upper()}"] = str(dest)
    return out
