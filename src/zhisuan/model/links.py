"""Links between centers and each center's object store, as a network file declares them.

A link is declared between two centers or two regions (`between: [shanghai, west]` matches every center
pair with those names or regions, either way round); the most specific declaration wins (center-center,
then center-region, then region-region), and a pair nobody declared takes the sourced default for its
kind (same province, same region, between hubs: `catalog/data/network_links.csv`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhisuan.catalog.links import LinkFigures, default_links


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Link(_Strict):
    between: list[str] = Field(min_length=2, max_length=2, description="two centers or regions")
    bandwidth_gbit: float = Field(gt=0, le=10_000, description="the rate one transfer gets, Gbit/s")
    rtt_ms: float = Field(0.0, ge=0, le=10_000)
    cny_per_gb: float = Field(0.0, ge=0, le=1_000)
    kwh_per_gb: float | None = Field(None, ge=0, le=100, description="energy per GB moved (default: its kind's)")
    assumptions: dict[str, str] = Field(default_factory=dict)


class CenterStore(_Strict):
    """A center's object store (S3). The network file says what it holds and costs; where it is and its
    keys stay with whoever runs the center's agent: for a `join: direct` center the server, reading
    `credentials_file`; for a `join: agent` center the agent's own configuration."""

    capacity_gb: float = Field(gt=0, le=1e9)
    cny_per_gb_month: float = Field(ge=0, le=1_000)
    endpoint: str | None = Field(None, pattern=r"^https?://[^\s]+$", max_length=512)
    bucket: str = Field("zhisuan", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    credentials_file: str | None = Field(None, max_length=1024, description="JSON {access_key, secret_key}")
    assumptions: dict[str, str] = Field(default_factory=dict)

    @field_validator("credentials_file")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("a NUL byte cannot be part of a path")
        return v


class Site(Protocol):
    """What link resolution needs of a center."""

    @property
    def name(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def province(self) -> str | None: ...


def kind_of(a: Site, b: Site) -> str:
    if a.name == b.name:
        return "same_center"
    if a.province and a.province == b.province:
        return "same_province"
    return "same_region" if a.region == b.region else "between_hubs"


def _figures(link: Link, kind: str) -> LinkFigures:
    default = default_links()[kind]
    kwh = link.kwh_per_gb if link.kwh_per_gb is not None else default.kwh_per_gb
    return LinkFigures(link.bandwidth_gbit * 1e9 / 8, link.rtt_ms / 1000.0, link.cny_per_gb, kwh,
                       "the network file", bool(link.assumptions) or (link.kwh_per_gb is None and default.assumed))


def link_between(src: Site, dst: Site, links: Sequence[Link]) -> LinkFigures:
    """The figures of moving data from `src` to `dst`."""
    kind = kind_of(src, dst)
    if kind == "same_center":
        return default_links()[kind]
    best: tuple[int, Link] | None = None
    for link in links:
        x, y = link.between
        for one, other in ((x, y), (y, x)):
            rank_one = 2 if one == src.name else 1 if one == src.region else 0
            rank_other = 2 if other == dst.name else 1 if other == dst.region else 0
            if rank_one and rank_other and (best is None or rank_one + rank_other > best[0]):
                best = (rank_one + rank_other, link)
    return _figures(best[1], kind) if best is not None else default_links()[kind]


def links_into(dst: Site, sites: Sequence[Site], links: Sequence[Link]) -> dict[str, LinkFigures]:
    """Source center -> the link's figures into `dst`, for every center (itself included)."""
    return {s.name: link_between(s, dst, links) for s in sites}
