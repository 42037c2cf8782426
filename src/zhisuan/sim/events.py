"""A tiny event core (in the spirit of SimPy): a heap of timed events, popped in (time, order) order."""

from __future__ import annotations

import heapq
from enum import IntEnum


class Kind(IntEnum):
    FINISH = 0
    DOWN = 1
    UP = 2
    ARRIVE = 3
    WAKE = 4  # a deferred job is due: cycle then
    STAGED = 5  # a job's inputs arrived where it runs: new replicas there


Event = tuple[float, int, Kind, int, int]  # time, sequence, kind, subject, version


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0

    def push(self, time: float, kind: Kind, subject: int, version: int = 0) -> None:
        heapq.heappush(self._heap, (time, self._seq, kind, subject, version))
        self._seq += 1

    def extend(self, events: list[tuple[float, Kind, int]]) -> None:
        for time, kind, subject in events:
            self._heap.append((time, self._seq, kind, subject, 0))
            self._seq += 1
        heapq.heapify(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def peek_time(self) -> float:
        return self._heap[0][0]

    def pop_until(self, time: float) -> list[Event]:
        """All events at or before `time`, in order."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= time:
            out.append(heapq.heappop(heap))
        return out
