"""Tokens a request used: the backend's `usage` when it gives one, else counted by the gateway from what
it relayed (one token per streamed content chunk, as llama.cpp and vLLM stream; the prompt at four
characters a token — an estimate, kept apart from measured counts). A large answer passes through and is not
kept: its top-level `usage` is found as it passes (BodyUsage)."""

from __future__ import annotations

import json
import math
import re
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


_STRING = rb'"(?:[^"\\]++|\\.)*+"'
_PLAIN = rb'[^"{}\[\]]++'
_LEAF = rb"[\[{](?:" + _PLAIN + b"|" + _STRING + rb")*+[\]}]"  # an array or object with none inside
for _ in range(2):  # ... with them inside, three deep
    _LEAF = rb"[\[{](?:" + _PLAIN + b"|" + _STRING + b"|" + _LEAF + rb")*+[\]}]"


class BodyUsage:
    """The top-level `usage` of a JSON answer read as it passes, keeping a few bytes of it: the nesting depth
    outside strings is followed, and the object after a `"usage":` key of the outermost object is captured and
    parsed. Text the answer quotes cannot forge that key (its quotes are escaped). Values up to three deep pass
    in one step of the regex engine (an embedding, a token's logprobs), so Python steps over few of the bytes.
    Bounded: MAX_STEPS per answer (half a second of a core), a usage of MAX_USAGE bytes, and the regex engine's
    steps over a byte (30 ns at worst, 4 ms a MiB of embeddings); beyond, or for an answer that is not such JSON,
    `tokens` estimates as for a whole answer that does not parse."""

    MAX_STEPS = 1 << 19
    MAX_USAGE = 4096
    CARRY = 64  # a string (or `"usage" :`) cut by a chunk's end, if shorter, is read again with the next chunk
    SKIP = (re.compile(rb"[^\"{}\[\]]*+"), re.compile(rb"(?:" + _PLAIN + b"|" + _LEAF + rb")*+", re.S),
            re.compile(rb"(?:" + _PLAIN + b"|" + _STRING + b"|" + _LEAF + rb")*+", re.S))  # by depth 0, 1, deeper
    STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(")?', re.S)  # group 1: the string ends in this chunk
    STRING_END = re.compile(rb'(?:[^"\\]++|\\.)*+(")?', re.S)
    OBJECT_VALUE = re.compile(rb"\s*:\s*\{")
    CUT_KEY = re.compile(rb"\s*(?::\s*)?\Z")

    def __init__(self) -> None:
        self.depth = 0
        self.steps = 0
        self.carry = b""
        self.in_long_string = False  # inside a string longer than CARRY (never the key looked for)
        self.escaped = False  # ... and the last chunk ended on a backslash that escapes the next byte
        self.capture: bytearray | None = None  # the usage object, from its `{`, while it is read
        self.usage: Tokens | None = None
        self.done = False  # found, or given up

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        data, self.carry = self.carry + chunk, b""
        pos, keep, stop = 0, 0, len(data)  # keep: where this chunk's bytes of a usage being captured start
        if self.in_long_string:
            end = self.STRING_END.match(data, 1 if self.escaped else 0)
            assert end is not None  # it matches the empty string too
            if end.group(1) is None:  # the string goes on past this chunk
                self.escaped = end.end() < len(data)  # stopped before a last lone backslash
                self._keep(data, 0, len(data))
                return
            self.in_long_string, pos = False, end.end()
        while True:
            self.steps += 1
            if self.steps > self.MAX_STEPS:
                self.done = True
                return
            skipped = self.SKIP[min(self.depth, 2)].match(data, pos)
            assert skipped is not None  # it matches the empty string too
            pos = skipped.end()
            if pos == len(data):
                break
            c = data[pos]
            if c in b"{[":
                self.depth, pos = self.depth + 1, pos + 1
            elif c in b"}]":
                self.depth, pos = max(self.depth - 1, 0), pos + 1  # not below 0: the answer may be no JSON
                if self.capture is not None and self.depth == 1:  # the usage object ends here
                    self._keep(data, keep, pos)
                    self._found()
                    return
            else:
                string = self.STRING.match(data, pos)
                assert string is not None  # at a quote
                if string.group(1) is None:  # a string this chunk cuts
                    if len(data) - pos <= self.CARRY:
                        self.carry, stop = data[pos:], pos
                    else:
                        self.in_long_string, self.escaped = True, string.end() < len(data)
                    break
                start, pos = pos, string.end()
                if self.depth == 1 and self.capture is None and string.group() == b'"usage"':
                    if (value := self.OBJECT_VALUE.match(data, pos)) is not None:
                        self.capture, keep, pos = bytearray(), value.end() - 1, value.end()
                        self.depth += 1
                    elif self.CUT_KEY.match(data, pos) is not None:  # the chunk ends before the value
                        if len(data) - start > self.CARRY:
                            self.done = True
                            return
                        self.carry, stop = data[start:], start
                        break
        self._keep(data, keep, stop)

    def _keep(self, data: bytes, start: int, end: int) -> None:
        if self.capture is None:
            return
        self.capture += data[start:end]
        if len(self.capture) > self.MAX_USAGE:
            self.capture, self.done = None, True

    def _found(self) -> None:
        try:
            value = json.loads(bytes(self.capture or b""))
        except (ValueError, RecursionError):
            value = None
        self.usage, self.capture, self.done = from_body({"usage": value}), None, True

    def tokens(self, request: dict[str, Any]) -> Tokens:
        if self.usage is not None:
            return self.usage
        return Tokens(prompt_estimate(request), 0, measured=False)
