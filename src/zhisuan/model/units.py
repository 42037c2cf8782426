"""Parsing of human units in specs: durations (`90m`, `2h30m`) and memory sizes (`256Gi`)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?|[KMGT]B?|B)?\s*$", re.IGNORECASE)
_GIB = {"": 1.0, "b": 2**-30, "k": 1e3 / 2**30, "m": 1e6 / 2**30, "g": 1e9 / 2**30, "t": 1e12 / 2**30,
        "ki": 2**-20, "mi": 2**-10, "gi": 1.0, "ti": 1024.0}


def slurm_time(text: str) -> float | None:
    """Seconds from Slurm's time forms — `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS` — or None
    if `text` is none of them (a bare number is left to the caller: Slurm reads minutes, specs seconds)."""
    days, _, clock = text.rpartition("-") if "-" in text else ("", "", text)
    parts = clock.split(":")
    if not (days or len(parts) > 1) or len(parts) > 3 or not all(p.isdigit() for p in parts):
        return None
    if days and not days.isdigit():
        return None
    if days:  # D-HH[:MM[:SS]]
        h, m, sec = (int(x) for x in [*parts, "0", "0"][:3])
    elif len(parts) == 2:  # MM:SS
        h, m, sec = 0, int(parts[0]), int(parts[1])
    else:  # HH:MM:SS
        h, m, sec = (int(x) for x in parts)
    return (int(days or 0) * 24 + h) * 3600.0 + m * 60.0 + sec


def parse_duration(value: str | float | int) -> float:
    """Seconds from `3600`, `90m`, `2h30m`, `1d`, or Slurm's `04:00:00` and `1-00:00:00`. A bare number is
    seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as 90m, 2h or 3600, got {type(value).__name__}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be a positive duration")
        return float(value)
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return parse_duration(float(text))
    clock = slurm_time(text)
    parts = _DURATION.findall(text)
    if clock is None and (not parts or "".join(n + u for n, u in parts) != text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 90m, 2h, 1h30m, 3600, 04:00:00, 1-00:00:00)")
    seconds = clock if clock is not None else sum(float(n) * _SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be a positive duration")
    return seconds


def parse_memory_gib(value: str | float | int) -> float:
    """GiB from `256Gi`, `64G`, `512Mi` or a bare number of GiB."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a memory size such as 256Gi, got {type(value).__name__}")
    if isinstance(value, int | float):
        return float(value)
    m = _MEMORY.match(value)
    if not m:
        raise ValueError(f"not a memory size: {value!r} (use e.g. 256Gi, 64G, 512Mi)")
    unit = (m.group(2) or "").lower().rstrip("b")
    return float(m.group(1)) * _GIB[unit]


def format_duration(seconds: float) -> str:
    """`+1h05m` style for tables; `now` for zero."""
    if seconds <= 0.5:
        return "now"
    s = round(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
