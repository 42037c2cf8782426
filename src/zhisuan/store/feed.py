"""The store's transitions as a feed of events, each delivered once, in id order.

Transition ids are assigned when a row is inserted but become visible when its transaction commits,
and on PostgreSQL concurrent transactions commit in any order: an id can appear after a larger one was
read. So the feed keeps a floor below which everything was seen, delivers what is new above it, and
holds the floor at a missing id until it appears or `gap_wait` seconds pass (a rolled-back insert
leaves a hole for good).
"""

from __future__ import annotations

from zhisuan.store.jobs import JobStore, Transition


class TransitionFeed:
    def __init__(self, store: JobStore, floor: int, gap_wait: float = 30.0) -> None:
        self.store, self.floor, self.gap_wait = store, floor, gap_wait
        self.seen: set[int] = set()  # delivered ids above the floor
        self.gaps: dict[int, float] = {}  # missing id -> when it was first found missing

    def read(self, now: float) -> list[Transition]:
        new = [t for t in self.store.transitions_after(self.floor) if t.id not in self.seen]
        self.seen.update(t.id for t in new)
        top = max(self.seen, default=self.floor)
        for i in range(self.floor + 1, top):
            if i not in self.seen:
                self.gaps.setdefault(i, now)
        while self.floor + 1 in self.seen or (
                self.floor + 1 in self.gaps and now - self.gaps[self.floor + 1] >= self.gap_wait):
            self.floor += 1
            self.seen.discard(self.floor)
            self.gaps.pop(self.floor, None)
        return new
