"""The job spec tenants write (YAML or JSON): what to run, on what, under which constraints.

Validation names the offending field (pydantic's `loc`), so a bad spec is rejected with a message a
user can act on and nothing half-valid reaches the store or the scheduler.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from zhisuan.catalog import load_catalog
from zhisuan.model.datasets import check_inputs, check_outputs
from zhisuan.model.parsing import ParseError, load_document
from zhisuan.model.units import parse_duration, parse_memory_gib

MAX_RUN = 64 * 1024  # bytes of a job's command
MAX_ENV = 256  # variables
MAX_ENV_VALUE = 32 * 1024
RESERVED_ENV = "ZHISUAN_"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")


_NAMED = re.compile(r"^\s*(?P<name>[^:]+?)\s*(?::\s*(?P<count>\d+(?:\.\d+)?|\.\d+))?\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _count(v: float) -> float:
    """Whole devices per node (1..64), or a share of one device in thousandths (0.001..0.999)."""
    if v >= 1 and v != int(v):
        raise ValueError(f"a count of whole devices is an integer; {v} is neither that nor a share below 1")
    if v < 1 and abs(v * 1000 - round(v * 1000)) > 1e-9:
        raise ValueError(f"a device share is in thousandths (0.001 .. 0.999), got {v}")
    return v


Count = Annotated[float, Field(gt=0, le=64), AfterValidator(_count)]


class _Counted(_Strict):
    count: Count = 1

    @property
    def per_node(self) -> int:
        """Devices per node (a share holds one device, in part)."""
        return max(1, int(self.count))

    @property
    def milli(self) -> int:
        """The share of one device in thousandths; 0 for whole devices."""
        return round(self.count * 1000) if self.count < 1 else 0


class AcceleratorClass(_Counted):
    """Any accelerator of a software stack at or above a speed: `{stack: cuda, min_tflops: 300, count: 8}`."""

    stack: str
    min_tflops: float = Field(0.0, ge=0)

    @field_validator("stack")
    @classmethod
    def _known_stack(cls, v: str) -> str:
        stacks = load_catalog().stacks
        if v.lower() not in stacks:
            raise ValueError(f"unknown software stack {v!r}; known: {', '.join(stacks)}")
        return v.lower()


class NamedAccelerator(_Counted):
    """A catalog accelerator by name or alias, `count` per node: parsed from `A100-80GB:8`, or a share of
    one: `A100:0.5` (Kubernetes' HAMi/Volcano vGPU, Slurm shards, MPS run such jobs side by side)."""

    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return load_catalog().lookup(v).name


class AnyOfAccelerators(_Counted):
    """Any of these catalog accelerators, `count` per node: `T4|P100|V100M16:1` or
    `{any_of: [t4, p100], count: 1}` (Kubernetes' GPU-model lists, SkyPilot's accelerator alternatives).
    Run-time estimates refer to the first."""

    any_of: list[str] = Field(min_length=1, max_length=32)

    @field_validator("any_of")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(load_catalog().lookup(name).name for name in v))


def _accelerator_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "any" if "any_of" in v else "class" if "stack" in v or "min_tflops" in v else "named"
    if isinstance(v, AnyOfAccelerators):
        return "any"
    return "class" if isinstance(v, AcceleratorClass) else "named"


AcceleratorRequest = Annotated[
    Annotated[NamedAccelerator, Tag("named")] | Annotated[AcceleratorClass, Tag("class")]
    | Annotated[AnyOfAccelerators, Tag("any")],
    Discriminator(_accelerator_kind),
]


class Resources(_Strict):
    accelerators: AcceleratorRequest | None = Field(None, description="none: a CPU-only job (give cpus)")
    nodes: int = Field(1, ge=1, le=1024)
    cpus: int | None = Field(None, ge=1, description="CPUs per node")
    memory: float | None = Field(None, gt=0, description="memory per node, GiB (accepts 256Gi, 64G)")
    portable: list[str] = Field(default_factory=list, description="stacks the job can also run on")

    @field_validator("accelerators", mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "none":
            return None
        if isinstance(v, str):
            m = _NAMED.match(v)
            if not m:
                raise ValueError(f"expected NAME:COUNT such as A100-80GB:8, got {v!r}")
            if "|" in m["name"]:
                return {"any_of": [n.strip() for n in m["name"].split("|")], "count": float(m["count"] or 1)}
            return {"name": m["name"], "count": float(m["count"] or 1)}
        if isinstance(v, dict) and "name" in v and "stack" in v:
            raise ValueError("give either a name (A100-80GB:8) or a class {stack, min_tflops, count}")
        return v

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        return None if v is None else parse_memory_gib(v)

    @field_validator("portable")
    @classmethod
    def _stacks(cls, v: list[str]) -> list[str]:
        stacks = load_catalog().stacks
        bad = [s for s in v if s.lower() not in stacks]
        if bad:
            raise ValueError(f"unknown software stack {bad[0]!r}; known: {', '.join(stacks)}")
        return sorted({s.lower() for s in v})

    @model_validator(mode="after")
    def _something(self) -> Resources:
        if self.accelerators is None and self.cpus is None:
            raise ValueError("a job asks accelerators (e.g. A100:8) or, CPU-only, cpus")
        if self.accelerators is not None and self.accelerators.milli and self.nodes > 1:
            raise ValueError("a device share (count below 1) runs on one node")
        return self

    @property
    def devices_per_node(self) -> int:
        return 0 if self.accelerators is None else self.accelerators.per_node

    @property
    def milli(self) -> int:
        return 0 if self.accelerators is None else self.accelerators.milli

    @property
    def devices(self) -> int:
        return self.devices_per_node * self.nodes


MAX_TIME_LIMIT = 366 * 86400.0  # a job's time limit: a year is a plan, more is a typo (and unbounded work to price)


class Constraints(_Strict):
    regions: list[str] = Field(default_factory=list, max_length=64)
    max_price: float | None = Field(None, gt=0, description="CNY per device-hour")
    deadline: datetime | None = None
    data: str | None = Field(None, max_length=64, description="center where the job's data lives")
    time_limit: float | None = Field(None, description="expected/maximum run time, seconds (accepts 2h, 90m)")

    @field_validator("time_limit", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if v is None:
            return None
        seconds = parse_duration(v)
        if seconds > MAX_TIME_LIMIT:
            raise ValueError(f"at most {MAX_TIME_LIMIT // 86400:.0f} days")
        return seconds

    @field_validator("deadline")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("deadline needs a UTC offset, e.g. 2026-12-01T00:00:00+08:00")
        return v


class Replicas(_Strict):
    min: int = Field(1, ge=1, le=64)
    max: int = Field(1, ge=1, le=64)

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Autoscale(_Strict):
    """Replicas follow the load: in-flight requests per replica (or tokens/s per replica) near the target."""

    inflight: float | None = Field(None, gt=0, le=10_000)
    tokens_per_s: float | None = Field(None, gt=0, le=1e7)
    up_after: float = Field(30.0, ge=0, le=86400, description="seconds between scale-ups (accepts 30s, 2m)")
    down_after: float = Field(120.0, ge=0, le=86400, description="seconds of low load before a scale-down")

    @field_validator("up_after", "down_after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration(v)

    @model_validator(mode="after")
    def _one_target(self) -> Autoscale:
        if (self.inflight is None) == (self.tokens_per_s is None):
            raise ValueError("give one target: inflight (requests per replica) or tokens_per_s (per replica)")
        return self


class ServiceSection(_Strict):
    """A model served by replicas of the job's `run` (e.g. `vllm serve MODEL --port $PORT`): each replica
    is placed by the scheduler like a job and told its port in `port_env`; the gateway routes to replicas
    whose `ready` path answers 200. A replica on several nodes (`resources.nodes`, e.g. tensor-parallel
    over two nodes) is one gang: member 0 ($ZHISUAN_NODE_RANK 0) serves, the others join it."""

    model: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    ready: str = Field("/health", max_length=256, pattern=r"^/[^\s\x00]*$")
    port_env: str = Field("PORT", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    replicas: Replicas = Field(default_factory=Replicas)
    autoscale: Autoscale | None = None


class JobSpec(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["training", "batch", "service"] = "batch"
    resources: Resources
    constraints: Constraints = Field(default_factory=Constraints)
    priority: int = Field(0, ge=-1000, le=1000)
    recovery: Literal["requeue", "fail"] | None = Field(None, description="older spelling of on_center_loss "
                                                        "(requeue | fail), used when on_center_loss is not given")
    on_center_loss: Literal["wait", "requeue", "fail"] | None = Field(
        None, description="when the job's center goes silent: wait for it (the run goes on there; the default), "
        "requeue it elsewhere from its last checkpoint (at-least-once: opt in), or fail it")
    run: str = Field(min_length=1, max_length=MAX_RUN)
    env: dict[str, str] = Field(default_factory=dict, max_length=MAX_ENV)
    image: str | None = Field(None, max_length=512, pattern=r"^[^\s\x00]+$",
                              description="container image, for engines that run containers (Kubernetes)")
    service: ServiceSection | None = Field(None, description="kind: service — the model its replicas serve")
    inputs: Annotated[dict[str, str], AfterValidator(check_inputs)] = Field(
        default_factory=dict, description="mount -> dataset (NAME or OWNER:NAME), staged where the job runs; its "
        "path is in $ZHISUAN_INPUT_<MOUNT>")
    outputs: Annotated[dict[str, str], AfterValidator(check_outputs)] = Field(
        default_factory=dict, description="dataset -> path in the job's folder, copied to the dataset on success")

    @property
    def on_loss(self) -> str:
        """What happens to the job when its center is lost: `on_center_loss`, else an explicit `recovery`,
        else wait."""
        return self.on_center_loss or self.recovery or "wait"

    @field_validator("run")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("a NUL byte cannot be part of a command")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key[:64]!r} is not a variable name (letters, digits, _; not a digit first)")
            if "\x00" in value or len(value) > MAX_ENV_VALUE:
                raise ValueError(f"the value of {key} holds a NUL byte or is over {MAX_ENV_VALUE} characters")
        return v

    @model_validator(mode="after")
    def _service_for_services(self) -> JobSpec:
        if (self.kind == "service") != (self.service is not None):
            raise ValueError("kind: service goes with a service section (model, ready, replicas), and only it")
        return self

    @model_validator(mode="after")
    def _portable_includes_own_stack(self) -> JobSpec:
        acc = self.resources.accelerators
        if isinstance(acc, NamedAccelerator) and self.resources.portable:
            own = load_catalog().lookup(acc.name).stack
            if own not in self.resources.portable:
                raise ValueError(f"resources.portable must include the accelerator's own stack {own!r}")
        return self


class SpecError(ValueError):
    """A spec that failed validation; `errors` are (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))


def _loc(loc: tuple[int | str, ...]) -> str:
    # pydantic adds the union member's model name to the path; users think in spec fields
    skip = {"named", "class"}
    return ".".join(str(p) for p in loc if str(p) not in skip)


def spec_errors(exc: ValidationError) -> SpecError:
    """Turn pydantic's errors into field-named messages; union noise is collapsed to the best one."""
    seen: dict[str, str] = {}
    for err in exc.errors():
        loc = _loc(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if loc not in seen or "unknown" in msg:
            seen[loc] = msg
    return SpecError(list(seen.items()))


def parse_job_spec(data: str | bytes | dict[str, Any], tenant: str | None = None) -> JobSpec:
    """YAML/JSON text or a mapping -> JobSpec, or SpecError naming the field. `tenant`: the one a spec
    without a `tenant` field belongs to (the caller's token names it, as `kubectl` takes the namespace
    from the context)."""
    if isinstance(data, str | bytes):
        try:
            data = load_document(data)
        except ParseError as e:
            raise SpecError([("", str(e))]) from e
    if not isinstance(data, dict):
        raise SpecError([("", "a job spec must be a mapping of fields")])
    if tenant is not None and "tenant" not in data:
        data = {**data, "tenant": tenant}
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as e:
        raise spec_errors(e) from e
    # zhisuan tells a job who it is in ZHISUAN_* variables (its id, rank, checkpoint folder, the service a
    # replica belongs to): a spec may not set them, or a job could pass itself off as another's replica
    why = f"{RESERVED_ENV}* variables are set by zhisuan; use another name"
    reserved = [k for k in spec.env if k.upper().startswith(RESERVED_ENV)]
    if reserved:
        raise SpecError([(f"env.{reserved[0][:64]}", why)])
    if spec.service is not None and spec.service.port_env.upper().startswith(RESERVED_ENV):
        raise SpecError([("service.port_env", why)])
    return spec
