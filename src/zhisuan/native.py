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
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

COMPILED: tuple[str, ...] = (
    "zhisuan.scheduler.assign",
    "zhisuan.scheduler.capacity",
    "zhisuan.scheduler.decisions",
    "zhisuan.scheduler.endorder",
    "zhisuan.scheduler.ledger",
    "zhisuan.scheduler.pending",
    "zhisuan.scheduler.plugins.fair_share",
    "zhisuan.scheduler.queue",
    "zhisuan.scheduler.ranking",
    "zhisuan.scheduler.shape",
    "zhisuan.scheduler.state",
    "zhisuan.scheduler.timeline",
    "zhisuan.sim.engine",
    "zhisuan.sim.events",
    "zhisuan.sim.joblog",
    "zhisuan.sim.predict",
    "zhisuan.sim.speed",
)
PACKAGE = Path(__file__).parent
STAMP = PACKAGE / "_compiled.json"
PURE_ENV = "ZHISUAN_PURE"


def source_of(module: str) -> Path:
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests() -> dict[str, str]:
    """Each compiled module's source hash, as the build stamp records it."""
    return {m: _digest(source_of(m)) for m in COMPILED}


def dependencies() -> dict[str, str]:
    """The hashes of the package's modules the compiled ones import (their types were compiled in: a changed
    field there makes the build stale too), by path below the package's parent."""
    import ast

    out: dict[str, str] = {}
    for m in COMPILED:
        for node in ast.walk(ast.parse(source_of(m).read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                if not name.startswith("zhisuan.") or name in COMPILED:
                    continue
                base = PACKAGE.parent.joinpath(*name.split("."))
                for path in (base.with_suffix(".py"), base / "__init__.py"):
                    if path.is_file():
                        out[str(path.relative_to(PACKAGE.parent))] = _digest(path)
    return dict(sorted(out.items()))


def extension(module: str) -> Path | None:
    """The compiled module beside its source, if a build left one."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    src = source_of(module)
    return next((p for p in src.parent.glob(src.stem + ".*") if p.name.endswith(suffixes)), None)


def built() -> list[Path]:
    """The listed modules' extension modules a build left beside their sources."""
    return [p for m in COMPILED if (p := extension(m)) is not None]


def leftovers(root: Path) -> list[Path]:
    """Every extension module in the package and mypyc's shared libraries in `root` (the source tree's top,
    not site-packages, where other packages keep theirs): what a rebuild removes first."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [p for p in [*PACKAGE.rglob("*.*"), *root.glob("*__mypyc.*")] if p.name.endswith(suffixes)]


def _stamp() -> dict[str, Any] | None:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and isinstance(stamp.get("sources"), dict) else None


def stale() -> list[str]:
    """What is not as it was compiled: listed modules changed or without their extension, a module the stamp
    lists and the list no longer does (or the reverse), a changed dependency, a missing shared library. Every
    listed module when there is no stamp."""
    stamp = _stamp()
    if stamp is None:
        return list(COMPILED)
    recorded: dict[str, str] = stamp["sources"]
    if set(recorded) != set(COMPILED):
        return sorted(set(recorded) ^ set(COMPILED))
    library = PACKAGE.parent / str(stamp.get("library", ""))
    if not stamp.get("library") or not library.is_file():
        return list(COMPILED)
    now = digests()
    out = [m for m in COMPILED if recorded[m] != now[m] or extension(m) is None]
    for path, digest in dict(stamp.get("depends", {})).items():
        file = PACKAGE.parent / path
        if not file.is_file() or _digest(file) != digest:
            out.append(path)
    return out


def compiled() -> bool:
    """Whether the scheduler runs from the compiled build (import this after zhisuan's guard ran)."""
    from zhisuan.scheduler import assign

    return not (assign.__file__ or "").endswith(".py")


class _FromSource:
    """Finds the listed modules' .py files, ahead of the extension modules beside them (a meta path finder;
    not derived from importlib.abc, whose import costs the CLI's start 20 ms)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def guard() -> str | None:
    """Run the sources when asked to or when the build is stale; returns why, or None when the build runs."""
    stamp = _stamp()
    listed = set(COMPILED) | set(stamp["sources"] if stamp else ())  # a module dropped from the list, too
    if not built() and not any(extension(m) for m in listed):
        return None  # never compiled: Python finds the sources anyway
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        why = f"{PURE_ENV} is set"
    else:
        changed = stale()
        if not changed:
            return None
        first = changed[0]
        why = f"{source_of(first).relative_to(PACKAGE.parent) if first.startswith('zhisuan.') else first} is not " \
              "as compiled"
        print(f"zhisuan: {why}; running the Python source (`make install` compiles it again)", file=sys.stderr)
    sys.meta_path.insert(0, _FromSource(sorted(listed)))
    return why
