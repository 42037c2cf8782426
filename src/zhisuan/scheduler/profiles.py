"""A network's scheduler profile -> the Policy both drivers run: a built-in policy with its weights,
plugin arguments, backfill and preemption overridden. Checked when built, errors naming the field
(`scheduler.weights.prize: unknown score`), so a typo never silently means the default.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from pydantic import TypeAdapter, ValidationError

from zhisuan.model import SchedulerProfile, SpecError
from zhisuan.model.units import parse_duration
from zhisuan.scheduler.framework import Policy
from zhisuan.scheduler.policies import POLICIES

FIXED = {"name", "priority_ordered", "dynamic"}  # plugin fields that are what it is, not its arguments


def _plugins(policy: Policy) -> list[object]:
    return [policy.queue_sort, policy.priority_of, *policy.filters, *(s for s, _ in policy.scores), *policy.admits]


def _arguments(plugin: object) -> dict[str, Any]:
    """Argument name -> type, for plugins that are dataclasses."""
    if not dataclasses.is_dataclass(plugin):
        return {}
    hints = typing.get_type_hints(type(plugin))
    return {f.name: hints[f.name] for f in dataclasses.fields(plugin) if f.name not in FIXED}


def _value(kind: Any, raw: Any, where: str) -> Any:
    try:
        if isinstance(raw, str) and kind is float:
            raw = parse_duration(raw)
        if isinstance(raw, list) and typing.get_origin(kind) is tuple:
            raw = [parse_duration(x) if isinstance(x, str) else x for x in raw]
        value = TypeAdapter(kind).validate_python(raw)
    except ValidationError as e:
        raise SpecError([(where, e.errors()[0]["msg"])]) from e
    except ValueError as e:
        raise SpecError([(where, str(e))]) from e
    numbers = value if isinstance(value, tuple) else (value,)
    if any(isinstance(x, float) and not math.isfinite(x) for x in numbers):
        raise SpecError([(where, f"must be finite, got {raw!r}")])
    return value


def _with_args(policy: Policy, args: dict[str, dict[str, Any]]) -> dict[int, object]:
    """id(plugin) -> the plugin with its arguments replaced."""
    plugins = _plugins(policy)
    replaced: dict[int, object] = {}
    for name, given in args.items():
        mine = [p for p in plugins if getattr(p, "name", None) == name]
        own = bool(mine)
        if not own:  # kept for policies named by `--policy` or compared by `zhisuan sim`: checked all the same
            mine = [p for other in POLICIES.values() for p in _plugins(other) if getattr(p, "name", None) == name]
            if not any(_arguments(p) for p in mine):
                known = sorted({str(getattr(p, "name", "")) for other in POLICIES.values()
                                for p in _plugins(other) if _arguments(p)})
                raise SpecError([(f"scheduler.args.{name}", f"no plugin {name!r} takes arguments; these do: "
                                                            f"{', '.join(known)}")])
        for key in given:
            if not any(key in _arguments(p) for p in mine):
                fields = sorted({k for p in mine for k in _arguments(p)})
                raise SpecError([(f"scheduler.args.{name}.{key}",
                                  f"unknown argument; {name} takes {', '.join(fields) or 'none'}")])
        for p in mine:
            kinds = _arguments(p)
            values = {k: _value(kinds[k], v, f"scheduler.args.{name}.{k}") for k, v in given.items() if k in kinds}
            if values and own:
                replaced[id(p)] = dataclasses.replace(p, **values)  # type: ignore[type-var]
    return replaced


def policy_for(profile: SchedulerProfile, name: str | None = None) -> Policy:
    """The policy a network's profile asks for. `name` (`--policy`, or each policy a simulation compares)
    overrides its `policy`: then the profile's weights and plugin arguments still apply where that policy
    has the score or plugin, while backfill, reservations and preemption stay the named policy's own."""
    chosen = name or profile.policy
    base = POLICIES.get(chosen)
    if base is None:
        field = "policy" if name else "scheduler.policy"
        raise SpecError([(field, f"unknown policy {chosen!r}; known: {', '.join(POLICIES)}")])
    if base.name != profile.policy:
        own = POLICIES.get(profile.policy)
        if own is None:
            raise SpecError([("scheduler.policy", f"unknown policy {profile.policy!r}; known: {', '.join(POLICIES)}")])
        policy_for(profile)  # the profile must be valid for its own policy
        args = {k: v for k, v in profile.args.items() if any(getattr(p, "name", None) == k for p in _plugins(base))}
        has = {s.name for s, _ in base.scores}
        tuned = SchedulerProfile(policy=base.name, weights={k: w for k, w in profile.weights.items() if k in has},
                                 args=args)
        return policy_for(tuned)
    scores = {s.name: w for s, w in base.scores}
    unknown = sorted(set(profile.weights) - set(scores))
    if unknown:
        raise SpecError([(f"scheduler.weights.{unknown[0]}", f"unknown score; policy {chosen} scores "
                                                              f"{', '.join(scores)}")])
    weights = {**scores, **profile.weights}
    if not any(w > 0 for w in weights.values()):
        raise SpecError([("scheduler.weights", "at least one score needs a positive weight")])
    new = _with_args(base, profile.args)

    def swap(p: Any) -> Any:
        return new.get(id(p), p)

    changes: dict[str, Any] = {
        "queue_sort": swap(base.queue_sort), "priority_of": swap(base.priority_of),
        "filters": tuple(swap(f) for f in base.filters), "admits": tuple(swap(a) for a in base.admits),
        "scores": tuple((swap(s), weights[s.name]) for s, _ in base.scores),
    }
    for key in ("backfill", "reservations", "backfill_depth", "preemption", "defer"):
        value = getattr(profile, key)
        if value is not None:
            changes[key] = value
    return dataclasses.replace(base, **changes)
