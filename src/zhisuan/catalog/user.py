"""A user catalog: accelerators a center has that the packaged catalog lacks (an undisclosed code such as
Alibaba's G2), or a packaged row overridden with figures the operator measured. YAML:

    accelerators:
      - name: G2
        vendor: Alibaba (undisclosed)
        stack: cuda
        fp16_tflops: 125
        memory_gb: 32
        tdp_w: 300
        aliases: [g2]
        source: "ASSUMPTION: an internal code; sized like a V100"

A row whose name (or alias) is a packaged model replaces that model. Errors name the field
(`accelerators.0.fp16_tflops`); a source is required, and one starting with ASSUMPTION is shown as such.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zhisuan.catalog.accelerators import Accelerator, normalise


class CatalogError(ValueError):
    """A user catalog that cannot be used; the message names the file and the field."""


class UserChip(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=64)
    vendor: str = Field(min_length=1, max_length=64)
    stack: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=32)
    fp16_tflops: float = Field(gt=0, le=100_000)
    memory_gb: float | None = Field(None, gt=0, le=100_000)
    tdp_w: float | None = Field(None, gt=0, le=100_000)
    form_factor: str = Field("", max_length=64)
    release_year: int | None = Field(None, ge=1990, le=2100)
    aliases: list[str] = Field(default_factory=list, max_length=32)
    source: str = Field(min_length=1, max_length=1000)


class UserCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accelerators: list[UserChip] = Field(min_length=1, max_length=1000)


def read_user_catalog(path: str | Path) -> list[Accelerator]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CatalogError(f"user catalog {path}: {e}") from e
    try:
        parsed = UserCatalog.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top)"
        raise CatalogError(f"user catalog {path}: {where}: {first['msg']}") from e
    out = []
    for c in parsed.accelerators:
        note = {"fp16_tflops": c.source} if c.source.upper().startswith("ASSUMPTION") else {}
        out.append(Accelerator(c.name, c.vendor, c.stack, c.memory_gb, c.fp16_tflops, c.tdp_w, c.form_factor,
                               c.release_year, f"user catalog {path.name}: {c.source}", tuple(c.aliases), note))
    return out


def merge(packaged: list[Accelerator], user: list[Accelerator]) -> list[Accelerator]:
    """User rows replace the packaged model they name (by name or alias) and are added otherwise."""
    keys = {normalise(k): u for u in user for k in (u.name, *u.aliases)}
    kept, replaced = [], set()
    for a in packaged:
        hit = next((keys[normalise(k)] for k in (a.name, *a.aliases) if normalise(k) in keys), None)
        if hit is None:
            kept.append(a)
        elif hit.name not in replaced:
            replaced.add(hit.name)
            names = (n for n in (*hit.aliases, a.name, *a.aliases) if n != hit.name)
            kept.append(Accelerator(**{**hit.__dict__, "aliases": tuple(dict.fromkeys(names))}))
    return kept + [u for u in user if u.name not in replaced]
