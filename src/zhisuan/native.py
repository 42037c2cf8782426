"""Which modules mypyc compiles to C, and the guard that runs their Python source when the build is stale.

`make install` (tools/compile.py) builds the scheduler's and the simulator's hot modules with mypyc, the compiler
that ships with mypy: the same annotated source, about twice as fast, no second implementation to keep in step.
The extension modules sit beside the sources, and Python's import prefers them. A stamp records each source's
hash at build time; when a source changed since (an edit without `make install`) or `ZHISUAN_PURE=1` asks,
every listed module loads from its source instead, all of them together (compiled modules call each other
directly in C, so a mix would hold two kinds of the same class). What runs is always what the source says.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED: tuple[str, ...] = (
    "zhisuan.scheduler.assign",
    "zhisuan.scheduler.capacity",
    "zhisuan.scheduler.decisions",
    "zhisuan.scheduler.queue",
    "zhisuan.scheduler.ranking",
    "zhisuan.scheduler.shape",
    "zhisuan.scheduler.state",
    "zhisuan.scheduler.timeline",
    "zhisuan.sim.engine",
)
PACKAGE = Path(__file__).parent
STAMP = PACKAGE / "_compiled.json"
PURE_ENV = "ZHISUAN_PURE"


def source_of(module: str) -> Path:
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def digests() -> dict[str, str]:
    """Each compiled module's source hash, as the build stamp records it."""
    return {m: hashlib.sha256(source_of(m).read_bytes()).hexdigest() for m in COMPILED}


def built(everywhere: bool = False) -> list[Path]:
    """The extension modules a build left beside the listed sources (`everywhere`: anywhere in the package, as
    a build from an older list may have), and mypyc's shared library beside the package."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    if everywhere:
        out = [p for p in PACKAGE.rglob("*.*") if p.name.endswith(suffixes)]
    else:
        out = [p for m in COMPILED for p in source_of(m).parent.glob(source_of(m).stem + ".*")
               if p.name.endswith(suffixes)]
    return out + [p for p in PACKAGE.parent.glob("*__mypyc.*") if p.name.endswith(suffixes)]


def stale() -> list[str]:
    """Compiled modules whose source is not what was compiled (all of them when the stamp is missing)."""
    try:
        recorded = json.loads(STAMP.read_text())["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return list(COMPILED)
    if set(recorded) != set(COMPILED):  # built from another list: modules no longer listed would still load
        return sorted(set(recorded) ^ set(COMPILED))
    now = digests()
    return [m for m in COMPILED if recorded.get(m) != now[m]]


def compiled() -> bool:
    """Whether the scheduler runs from the compiled build (import this after zhisuan's guard ran)."""
    from zhisuan.scheduler import assign

    return not (assign.__file__ or "").endswith(".py")


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the listed modules' .py files, ahead of the extension modules beside them."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def guard() -> str | None:
    """Run the sources when asked to or when the build is stale; returns why, or None when the build runs."""
    if not built():
        return None  # never compiled: Python finds the sources anyway
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        why = f"{PURE_ENV} is set"
    else:
        changed = stale()
        if not changed:
            return None
        why = f"{source_of(changed[0]).relative_to(PACKAGE.parent)} changed since the compiled build"
        print(f"zhisuan: {why}; running the Python source (`make install` compiles it again)", file=sys.stderr)
    sys.meta_path.insert(0, _FromSource(COMPILED))
    return why
