"""How a network is scheduled and how its decisions are carried out, set per network file (like a
kube-scheduler profile): the policy, score weights, plugin arguments, backfill and preemption; and
the control loop's timings. The shape is checked here; names of scores and plugins are checked against
the scheduler's plugins when the policy is built (`zhisuan.scheduler.profiles`), errors naming the field.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhisuan.model.units import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchedulerProfile(_Strict):
    """`policy` names a built-in policy; every other field overrides a part of it."""

    policy: str = "zhisuan"
    weights: dict[str, float] = Field(default_factory=dict, description="score name -> weight (0 switches it off)")
    args: dict[str, dict[str, Any]] = Field(default_factory=dict, description="plugin name -> its arguments")
    backfill: Literal["none", "easy"] | None = None
    reservations: int | None = Field(None, ge=0, le=10_000, description="blocked jobs reserved for per pool (EASY: 1)")
    backfill_depth: int | None = Field(None, ge=0, le=10_000_000,
                                       description="jobs tried after the first blocked one per cycle (0: all)")
    preemption: bool | None = None
    defer: bool | None = Field(None, description="jobs with a deadline wait for a cheaper tariff hour within it")

    @field_validator("weights")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        for name, w in v.items():
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {w}")
        return v


def _seconds(v: Any) -> float:
    seconds = parse_duration(v)
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration")
    return seconds


class ControlSettings(_Strict):
    """How the live loop carries out decisions (the simulator has no use for them)."""

    grace: float = Field(30.0, description="a preempted job gets SIGTERM, then SIGKILL after this many seconds")
    queue_limit: float = Field(600.0, description="a job waiting longer in a center's own queue is placed again")
    load_every: float = Field(10.0, description="seconds between asking engines what else occupies their pools")
    center_timeout: float = Field(60.0, gt=0, le=86400.0,
                                  description="a center whose agent is silent this long is down: its placements "
                                  "that had not started go elsewhere (its agent stops them first)")
    beat_every: float = Field(2.0, gt=0, le=3600.0, description="seconds between an agent's heartbeats")
    timezone: str = Field("Asia/Shanghai", max_length=64,
                          description="the zone the dashboard shows times in (bills use Asia/Shanghai)")
    funds_webhook: str | None = Field(None, max_length=2048, pattern=r"^https?://\S+$",
                                      description="URL told (POST, JSON) when a project's funds cross 50/80/100%")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Asia/Shanghai)") from e
        return v

    @field_validator("grace", "queue_limit", "load_every", "center_timeout", "beat_every", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return _seconds(v)
