"""Tokens a request used: the backend's `usage` when it gives one, else counted by the gateway from what
it relayed (one token per streamed content chunk, as llama.cpp and vLLM stream; the prompt at four
characters a token — an estimate, kept apart from measured counts)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Tokens:
    prompt: int = 0
    completion: int = 0
    measured: bool = True  # False: counted or estimated by the gateway


def from_body(body: Any) -> Tokens | None:
    """The `usage` of a JSON answer, if any."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    if not all(isinstance(x, int) and 0 <= x < 10**9 for x in (prompt, completion)):
        return None
    return Tokens(prompt, completion)


def prompt_estimate(request: dict[str, Any]) -> int:
    """Four characters a token over the prompt or the messages' text (an estimate)."""
    text = request.get("prompt") or request.get("input") or ""
    if not isinstance(text, str):
        text = json.dumps(text)
    for m in request.get("messages") or []:
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            text += m["content"]
    return math.ceil(len(text) / 4)


class StreamCounter:
    """Reads a relayed SSE stream as it passes: the last `usage` seen, else content chunks counted."""

    MAX_EVENT = 1 << 20  # an event longer than this is not parsed (still relayed)

    def __init__(self) -> None:
        self.buffer = b""
        self.chunks = 0
        self.usage: Tokens | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            self._event(event)
        if len(self.buffer) > self.MAX_EVENT:
            self.buffer = b""

    def _event(self, event: bytes) -> None:
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                obj = json.loads(payload)
            except (ValueError, RecursionError):
                continue
            usage = from_body(obj)
            if usage is not None:
                self.usage = usage
            for choice in (obj.get("choices") or []) if isinstance(obj, dict) else []:
                delta = choice.get("delta") or {}
                if (isinstance(delta, dict) and delta.get("content")) or choice.get("text"):
                    self.chunks += 1

    def tokens(self, request: dict[str, Any]) -> Tokens:
        if self.usage is not None:
            return self.usage
        return Tokens(prompt_estimate(request), self.chunks, measured=False)
