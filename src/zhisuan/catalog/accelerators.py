"""The accelerator catalog: one row per SKU, looked up by name or alias.

Capacity everywhere in zhisuan is normalised to dense FP16/BF16 TFLOPS from this table, so "P"
(PFLOPS) means the same thing for every vendor.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

_DATA = "zhisuan.catalog"


def normalise(name: str) -> str:
    """Lookup key: lowercase letters and digits only, so `A100-80GB` == `a100 80gb`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _stack(label: str) -> str:
    """`dtk (rocm-like)` -> `dtk`: the stack name without the editorial remark."""
    return label.split("(")[0].strip().lower()


def pflops(devices: int, tflops: float) -> float:
    """Capacity in "P" (FP16 PFLOPS) of `devices` accelerators of `tflops` each."""
    return devices * tflops / 1000.0


@dataclass(frozen=True)
class Accelerator:
    """One catalog row. `assumptions` names each field that is our ASSUMPTION, with why."""

    name: str
    vendor: str
    stack: str
    memory_gb: float | None
    fp16_tflops: float
    tdp_w: float | None
    form_factor: str
    release_year: int | None
    source: str
    aliases: tuple[str, ...] = ()
    assumptions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def pflops(self, devices: int) -> float:
        return pflops(devices, self.fp16_tflops)


CPU_ONLY = Accelerator("none", "-", "none", None, 0.0, None, "-", None,
                       "not an accelerator: the pool's nodes have CPUs only (network files: accelerator none)")


class UnknownAcceleratorError(ValueError):
    """Raised for a name the catalog does not know; the message lists close matches."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown accelerator {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions


def _num(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


class Catalog:
    """All accelerators plus the alias index."""

    def __init__(self, accelerators: list[Accelerator]) -> None:
        self.accelerators = accelerators
        self._index: dict[str, Accelerator] = {}
        for acc in accelerators:
            for key in (acc.name, *acc.aliases):
                k = normalise(key)
                other = self._index.get(k)
                if other is not None and other is not acc:
                    raise ValueError(f"alias {key!r} names both {other.name!r} and {acc.name!r}")
                self._index[k] = acc

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.accelerators)

    def __len__(self) -> int:
        return len(self.accelerators)

    @property
    def stacks(self) -> list[str]:
        return sorted({a.stack for a in self.accelerators})

    def lookup(self, name: str) -> Accelerator:
        acc = self._index.get(normalise(name))
        if acc is None:
            raise UnknownAcceleratorError(name, self.suggest(name))
        return acc

    def suggest(self, name: str, n: int = 4) -> list[str]:
        """Close matches by key similarity, plus models whose key contains the asked key."""
        key = normalise(name)
        close = difflib.get_close_matches(key, list(self._index), n=n * 2, cutoff=0.6)
        names = [self._index[k].name for k in close]
        if key:
            names += [a.name for a in self.accelerators if key in normalise(a.name)]
        return list(dict.fromkeys(names))[:n]


def _read_text(name: str) -> str:
    return resources.files(_DATA).joinpath("data", name).read_text(encoding="utf-8")


CATALOG_ENV = "ZHISUAN_CATALOG"  # a user catalog file (YAML) that extends or overrides the packaged one


def _packaged() -> list[Accelerator]:
    """accelerators.csv (Epoch's rows, copied), accelerators_more.csv (more of Epoch's rows, ours to pick),
    aliases.yaml and gap_fills.csv from the package data."""
    aliases: dict[str, list[str]] = yaml.safe_load(_read_text("aliases.yaml"))
    fills: dict[str, dict[str, tuple[str, str]]] = {}
    for row in csv.DictReader(_read_text("gap_fills.csv").splitlines()):
        fills.setdefault(row["model"], {})[row["field"]] = (row["value"], f"{row['basis']}: {row['why']}")
    accs = []
    rows = [*csv.DictReader(_read_text("accelerators.csv").splitlines()),
            *csv.DictReader(_read_text("accelerators_more.csv").splitlines())]
    for row in rows:
        model = row["model"]
        gap = fills.get(model, {})
        tdp = _num(row["tdp_w"])
        assumptions = {}
        if tdp is None and "tdp_w" in gap:
            tdp = float(gap["tdp_w"][0])
            assumptions["tdp_w"] = gap["tdp_w"][1]
        if row["fp16_basis"] == "int8_half":
            assumptions["fp16_tflops"] = f"ASSUMPTION: {row['notes']}"
        year = _num(row["release_year"])
        accs.append(
            Accelerator(
                name=model,
                vendor=row["vendor"],
                stack=_stack(row["software_stack"]),
                memory_gb=_num(row["memory_gb"]),
                fp16_tflops=float(row["dense_fp16_bf16_tflops"]),
                tdp_w=tdp,
                form_factor=row["form_factor"],
                release_year=int(year) if year else None,
                source=row["source"],
                aliases=tuple(str(a) for a in aliases.get(model, [])),
                assumptions=assumptions,
            )
        )
    unknown = set(aliases) - {a.name for a in accs}
    if unknown:
        raise ValueError(f"aliases.yaml names models not in the catalog files: {sorted(unknown)}")
    return accs


@cache
def load_catalog() -> Catalog:
    """The packaged catalog, extended or overridden by the user catalog named in $ZHISUAN_CATALOG (once)."""
    accs = _packaged()
    path = os.environ.get(CATALOG_ENV)
    if path:
        from zhisuan.catalog.user import merge, read_user_catalog

        accs = merge(accs, read_user_catalog(path))
    return Catalog(accs)


def use_catalog(path: str | None) -> Catalog:
    """Make `path` this process's user catalog (and its children's: the variable is inherited), checked
    now; None goes back to the packaged one."""
    if path:
        from zhisuan.catalog.user import read_user_catalog

        read_user_catalog(path)  # fail here, naming the field, not at the first lookup
        os.environ[CATALOG_ENV] = str(path)
    else:
        os.environ.pop(CATALOG_ENV, None)
    load_catalog.cache_clear()
    return load_catalog()
