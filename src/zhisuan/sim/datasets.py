"""Datasets in a replay: where replicas are, what jobs read, and what moving them cost.

A job's inputs are resolved against the replicas of the moment when it joins the queue (and again when a
transfer lands a new replica, so a queued job sees it, as the live network re-resolves after staging).
A staged input stays at the center that received it, as a cached replica; the simulator does not evict
(its stores are taken to be large enough: an ASSUMPTION printed with the results).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from zhisuan.model import Request
from zhisuan.model.datasets import InputData


@dataclass
class Dataset:
    name: str
    gb: float
    born: str  # the center where it was made
    at: set[str] = field(default_factory=set)


class DataWorld:
    def __init__(self, datasets: list[Dataset]) -> None:
        self.datasets = {d.name: d for d in datasets}
        for d in datasets:
            d.at.add(d.born)
        self.replicas_made = 0

    def resolve(self, names: tuple[str, ...]) -> tuple[InputData, ...]:
        return tuple(InputData(n, self.datasets[n].gb, frozenset(self.datasets[n].at)) for n in names)

    def request(self, base: Request, names: tuple[str, ...], duration: float) -> Request:
        """`base` with the inputs as they are now and the expected hours they spread over."""
        return replace(base, inputs=self.resolve(names), hours=max(duration, 1.0) / 3600.0)

    def landed(self, name: str, center: str) -> bool:
        """A transfer put a replica of `name` at `center`; False if one was there already."""
        at = self.datasets[name].at
        if center in at:
            return False
        at.add(center)
        self.replicas_made += 1
        return True
