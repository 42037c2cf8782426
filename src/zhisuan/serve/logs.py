"""The server's log: one line per event on stderr — HTTP requests (uvicorn's access log), job state
changes, placements and engine trouble — as `key=value` text or JSON lines (`--log-format json`), at
`--log-level`. Fields ride on the record as `extra={"fields": {...}}`."""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

LEVELS = ("debug", "info", "warning", "error")


@functools.lru_cache(maxsize=4)
def _second(second: int) -> tuple[str, str]:
    """The date-time and zone of one second: formatted once for all its lines (the access log writes one per
    request, and strftime twice a line was a visible part of a submit's cost)."""
    at = time.localtime(second)
    return time.strftime("%Y-%m-%dT%H:%M:%S", at), time.strftime("%z", at)


def _stamp(record: logging.LogRecord) -> str:
    day_time, zone = _second(int(record.created))
    return f"{day_time}.{int(record.msecs):03d}{zone}"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        extra = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, str) and (' ' in v or not v) else v}"
                         for k, v in fields.items())
        line = f"{_stamp(record)} {record.levelname.lower():7} {record.name} {record.getMessage()}"
        line = f"{line} {extra}" if extra else line
        return f"{line}\n{self.formatException(record.exc_info)}" if record.exc_info else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": _stamp(record), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "info", fmt: str = "text") -> None:
    """Route zhisuan's and uvicorn's loggers to one stderr handler at `level`."""
    if level not in LEVELS:
        raise ValueError(f"--log-level: one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format: text or json, got {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in ("zhisuan", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
