"""Centers the server runs itself (`join: direct`): their agent lives in the server's process, and the
protocol's frames are function calls. Same commands, same events, same fencing as a remote agent — only
synchronous, so the loop sees a local start at once and polls each run through its engine as it polls any
engine (no tick of its own: one engine call per run per step, as before agents)."""

from __future__ import annotations

import time
from collections.abc import Callable

from zhisuan.agent.core import AgentCore
from zhisuan.agent.protocol import Done, Events, Move, Reply, Req, Welcome
from zhisuan.control.link import CenterLink
from zhisuan.engines.base import EngineStatus, ExternalLoad, Usage
from zhisuan.engines.fleet import Fleet
from zhisuan.model import Center, Network, Pool


class LocalLink(CenterLink):
    remote = False

    def __init__(self, center: Center, agent: AgentCore, timeout: float = 60.0, beat_every: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(center, timeout, beat_every, clock)
        self.agent = agent
        welcome = self.connect(agent.hello(), clock())
        assert isinstance(welcome, Welcome), welcome
        agent.welcomed(welcome.timeout, welcome.pools, welcome.acked)

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        self._apply_load(self.agent.load(), self.clock())
        return super().load(pools)

    def health(self) -> None:
        ok, why = self.agent.health()
        with self.lock:
            self.engine_ok, self.engine_reason, self.last_seen = ok, why, self.clock()
        super().health()

    def poll(self, handle: str) -> EngineStatus:
        self.agent.poll_run(handle)  # the engine is asked now, as the loop asks any engine
        self._pull()
        with self.lock:
            known = handle in self.reports or handle in self.tracked
        if not known:  # a run the network has done with (its agent forgot it): the engine still knows it
            status = self.agent.status_of(handle)
            if status is not None:
                return status
        return super().poll(handle)

    def native(self, handle: str) -> str | None:
        return super().native(handle) or self.agent.native(handle)

    def usage(self, handle: str) -> Usage | None:
        return self._usage(self.agent.usage_of(handle)) or super().usage(handle)

    def uid_of(self, handle: str) -> int | None:
        return self.agent.uid_of(handle)

    def _answer(self, req: Req | Move) -> Reply:
        if isinstance(req, Move):  # the server reaches a direct center's store itself
            return Reply(rid=req.rid, ok=False, error=f"center {self.name}'s store is the server's to reach")
        return self.agent.answer(req)

    def _send(self) -> None:
        """Commands to the agent, and what it has to say back, now."""
        while True:
            with self.lock:
                cmds = [self.outbox[i] for i in self.unsent if i in self.outbox]
                self.unsent = []
            if not cmds:
                break
            self.receive(Done(ids=self.agent.execute(cmds)), self.clock())
        self._pull()

    def _pull(self) -> None:
        while events := self.agent.outgoing():
            self.agent.acked(self._events(Events(items=events), self.clock()).seq)


def links(network: Network, given: Fleet) -> dict[str, CenterLink]:
    """Every center as a link to its agent: the links already given (remote centers), for a center given an
    engine an agent in this process wrapping it, and for the others (`join: agent`) a link their agent
    connects to."""
    out: dict[str, CenterLink] = {}
    timeout, beat = network.control.center_timeout, network.control.beat_every
    for c in network.centers:
        engine = given.engines.get(c.name)
        if isinstance(engine, CenterLink):
            out[c.name] = engine
        elif engine is None:
            out[c.name] = CenterLink(c, timeout, beat)
        else:
            out[c.name] = LocalLink(c, AgentCore(c.name, engine), timeout, beat)
    return out
