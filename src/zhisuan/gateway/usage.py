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
    """Four characters a token over the prompt or the messages' text (an estimate). Content in OpenAI's list
    form counts its text parts, and any other part (an image's URL, say) by its strings: no shape is free."""
    return math.ceil(sum(_chars(request.get(k)) for k in ("prompt", "input", "messages")) / 4)


def _chars(value: Any) -> int:
    """Characters of text in a request's value; a walk with a stack of its own (a body nested as deep as the
    JSON parser allows must not overflow Python's)."""
    total, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            if isinstance(v.get("content"), str | list):  # a message: its content, not its role
                stack.append(v["content"])
            elif isinstance(v.get("text"), str):  # a text part
                total += len(v["text"])
            else:
                stack.extend(v.values())
        elif v is not None:
            total += len(str(v))
    return total


class StreamCounter:
    """Reads a relayed SSE stream as it passes: the last `usage` seen, else content chunks counted."""

    MAX_EVENT = 1 << 20  # an event longer than this is not parsed (still relayed)

    def __init__(self) -> None:
        self.buffer = bytearray()  # the event not ended yet
        self.chunks = 0
        self.usage: Tokens | None = None

    def feed(self, data: bytes) -> None:
        """Linear in what passes: only the new bytes (and the one before them: a separator may straddle two
        chunks) are searched, and a chunk of many events is split once (it was re-split per event)."""
        if b"\n\n" not in self.buffer[-1:] + data:
            self.buffer.extend(data)
        else:
            *events, rest = (self.buffer + data).split(b"\n\n")
            self.buffer = bytearray(rest)
            for event in events:
                if event:
                    self._event(bytes(event))
        if len(self.buffer) > self.MAX_EVENT:
            self.buffer.clear()

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
