"""A tiny event core (in the spirit of SimPy): timed events, popped in (time, order) order.

The events sit in buckets of `width` seconds (a calendar queue) under a heap of the buckets' numbers: a push
appends to its bucket, a pop takes whole buckets and sorts them. A replay pops once per scheduling interval,
so with buckets as wide as the interval each event costs an append and its share of one small sort, not a
heap's log n tuple comparisons (a national-scale replay holds tens of thousands of running jobs' ends).
"""

from __future__ import annotations

import math
from enum import IntEnum
from heapq import heappop, heappush  # names, not the module's attributes: a global read in compiled code


class Kind(IntEnum):
    FINISH = 0
    DOWN = 1
    UP = 2
    ARRIVE = 3
    WAKE = 4  # a deferred job is due: cycle then
    STAGED = 5  # a job's inputs arrived where it runs: new replicas there


Event = tuple[float, int, Kind, int, int]  # time, sequence, kind, subject, version
NEVER = 2**62  # the bucket of events at no finite time (after every other)


class EventQueue:
    def __init__(self, width: float = 60.0) -> None:
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"an event bucket's width must be a positive number of seconds, got {width}")
        self.width = width
        self._buckets: dict[int, list[Event]] = {}
        self._keys: list[int] = []  # heap of the numbers of non-empty buckets
        self._seq = 0

    def _key(self, time: float) -> int:
        # bucket k holds the times in (width (k-1), width k]: a cycle at a multiple of the width takes it whole
        if math.isinf(time) or math.isnan(time):  # not `math.isfinite`: no compiled primitive, a call by name
            return NEVER if time > 0 else -NEVER
        return math.ceil(time / self.width)

    def push(self, time: float, kind: Kind, subject: int, version: int = 0) -> None:
        key = self._key(time)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = []
            heappush(self._keys, key)
        bucket.append((time, self._seq, kind, subject, version))
        self._seq += 1

    def __bool__(self) -> bool:
        return bool(self._keys)

    def peek_time(self) -> float:
        return min(self._buckets[self._keys[0]])[0]

    def next_tick(self) -> float:
        """The end of the earliest non-empty bucket: `ceil(t / width) * width` for its earliest event's time t (every
        event in a bucket gives the same), found without looking at its events. A cycle there takes the bucket."""
        return self._keys[0] * self.width

    def pop_until(self, time: float) -> list[Event]:
        """All events at or before `time`, in order."""
        out: list[Event] = []
        last = self._key(time)
        keys, buckets = self._keys, self._buckets
        while keys and keys[0] <= last:
            key = keys[0]
            bucket = buckets[key]
            if key < last or max(bucket)[0] <= time:
                out.extend(bucket)
                del buckets[key]
                heappop(keys)
                continue
            bucket.sort()  # `time` falls inside this bucket: its events up to `time` go, the rest stay
            k = 0
            while k < len(bucket) and bucket[k][0] <= time:
                k += 1
            out.extend(bucket[:k])
            del bucket[:k]
            break
        out.sort()
        return out
