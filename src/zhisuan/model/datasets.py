"""Datasets a job reads and writes: names, a spec's `inputs`/`outputs`, and what the scheduler needs of
an input (its size and the centers holding a checked replica).

A dataset name is one path segment: no `/`, no `..`, no NUL, at most 200 bytes — it becomes an object
prefix in every center's store and a folder name in a job's environment, so it must never climb out.
A tenant names its own datasets bare (`imagenet`) and one shared with it as `OWNER:NAME`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME = 200  # bytes
MAX_INPUTS = 16  # per job
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_dataset_name(name: str) -> str:
    """The name, or ValueError saying what is wrong with it."""
    if "\x00" in name:
        raise ValueError("a dataset name cannot hold a NUL byte")
    if len(name.encode()) > MAX_NAME:
        raise ValueError(f"a dataset name is at most {MAX_NAME} bytes")
    if "/" in name or ".." in name or not _NAME.match(name):
        raise ValueError(f"{name[:64]!r} is not a dataset name (letters, digits, . _ -; no '/' or '..')")
    return name


def split_ref(ref: str, tenant: str) -> tuple[str, str]:
    """`NAME` or `OWNER:NAME` -> (owner, name), checked."""
    owner, sep, name = ref.partition(":")
    if not sep:
        owner, name = tenant, ref
    elif not _TENANT.match(owner):
        raise ValueError(f"{owner[:64]!r} is not a tenant name")
    return owner, check_dataset_name(name)


def check_inputs(v: dict[str, str]) -> dict[str, str]:
    """`inputs: {mount: dataset}`: the mount becomes $ZHISUAN_INPUT_<MOUNT>, the path it is staged at."""
    if len(v) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} inputs")
    for mount, ref in v.items():
        if not _MOUNT.match(mount):
            raise ValueError(f"{mount[:64]!r} is not an input name (a letter, then letters, digits, _; ≤32)")
        owner, sep, name = ref.partition(":")
        check_dataset_name(name if sep else owner)
        if sep and not _TENANT.match(owner):
            raise ValueError(f"{owner[:64]!r} is not a tenant name")
    return v


def check_outputs(v: dict[str, str]) -> dict[str, str]:
    """`outputs: {dataset: path}`: the path, relative to the job's folder, is copied to the dataset when the
    job succeeds. Never absolute, never climbing out."""
    if len(v) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} outputs")
    for name, path in v.items():
        check_dataset_name(name)
        parts = path.split("/")
        if not path or len(path) > 1024 or path.startswith("/") or ".." in parts or "\x00" in path:
            raise ValueError(f"outputs.{name}: {path[:64]!r} is not a path inside the job's folder")
    return v


@dataclass(frozen=True, slots=True)
class InputData:
    """An input as the scheduler sees it: `gb` (10^9 bytes) to move to a center that has no replica, and
    the centers whose replica passed its checksums."""

    name: str  # OWNER:NAME
    gb: float
    at: frozenset[str]
    reach: frozenset[str] | None = None  # centers it can be staged to (None: any)

    def placeable(self, center: str) -> bool:
        """A job at `center` can have this input: a replica is there, or one can be copied there."""
        return center in self.at or (bool(self.at) and (self.reach is None or center in self.reach))
