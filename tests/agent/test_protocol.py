"""The agent protocol's promises, with the frames between a center's link (the server's side) and its agent
moved by hand, so a test can repeat, reorder or lose them: a start delivered twice starts once, a stale start
is refused, events are applied once, a hostile agent changes nothing beyond its own center's runs, and
durations come from the agent's ages, never its clock."""

import math
import time

import pytest
from pydantic import ValidationError

from zhisuan.agent.core import FENCE_AT, AgentCore
from zhisuan.agent.journal import Journal
from zhisuan.agent.protocol import (
    AGENT_FRAME,
    SERVER_FRAME,
    VERSION,
    Beat,
    Cmds,
    Command,
    Done,
    Events,
    Hello,
    LaunchMsg,
    LoadMsg,
    Move,
    Refused,
    RunReport,
    compatible,
)
from zhisuan.bench.timed import TimedEngine
from zhisuan.control.link import AgentError, CenterLink
from zhisuan.engines import EngineDown, Launch
from zhisuan.model import parse_network

NET = parse_network("""
name: two
centers:
  - name: far
    region: west
    join: agent
    pue: 1.2
    carbon_kg_per_kwh: 0.1
    pools: [{name: gpu, accelerator: a100, nodes: 2, devices_per_node: 8, price_per_device_hour: 5}]
  - name: other
    region: east
    join: agent
    pue: 1.2
    carbon_kg_per_kwh: 0.1
    pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 5}]
""")
FAR = NET.center("far")


def launch(job="j-1", attempt=1, run="sleep 60", loss="wait"):
    return Launch(job, "x", run, FAR.pools[0], (0,), 1, [["0"]], {}, None, None, attempt, "acme",
                  on_center_loss=loss)


class Pipe:
    """The frames between a link and its agent, moved by hand."""

    def __init__(self, engine=None, clock=None, journal=None, leased=False):
        self.now = [1000.0]
        self.engine = engine or TimedEngine()
        self.link = CenterLink(FAR, timeout=10, beat_every=1, clock=lambda: self.now[0])
        self.core = AgentCore("far", self.engine, journal or Journal(), clock=clock or time.monotonic, leased=leased)

    def connect(self):
        welcome = self.link.connect(self.core.hello(), self.now[0])
        assert not isinstance(welcome, Refused), welcome
        self.core.welcomed(welcome.timeout, welcome.pools, welcome.acked)

    def commands(self):
        return [c for f in self.link.take() if isinstance(f, Cmds) for c in f.items]

    def run(self, commands):
        self.link.receive(Done(ids=self.core.execute(commands)), self.now[0])

    def deliver(self, events):
        ack = self.link.receive(Events(items=events), self.now[0])[0]
        self.core.acked(ack.seq)
        return ack.seq

    def sync(self):
        self.run(self.commands())
        return self.deliver(self.core.outgoing())


def test_versions_one_minor_older_joins_an_incompatible_one_is_refused_naming_both():
    major, minor = (int(x) for x in VERSION.split("."))
    assert compatible(f"{major}.{minor}") is None and compatible(f"{major}.{minor - 1}") is None
    for theirs in (f"{major}.{minor + 1}", f"{major + 1}.0", f"{major}.{minor - 2}"):
        why = compatible(theirs)
        assert why is not None and theirs in why and VERSION in why
    p = Pipe()
    hello = p.core.hello().model_copy(update={"version": f"{major + 1}.0"})
    answer = p.link.connect(hello, 0.0)
    assert isinstance(answer, Refused) and f"{major + 1}.0" in answer.reason and VERSION in answer.reason


def test_a_start_delivered_twice_starts_once():
    p = Pipe()
    p.connect()
    handle = p.link.submit(launch())
    start = p.commands()
    p.run(start)
    p.connect()  # the connection broke before the agent's "done" arrived: the server sends it again
    again = p.commands()
    assert [c.id for c in again] == [] or all(c.kind == "start" for c in again)
    p.run(start)  # and the very same frame, duplicated on the way
    p.deliver(p.core.outgoing())
    assert p.engine.submitted == 1 and p.link.poll(handle).state == "running"


def test_a_stale_start_is_refused_and_a_newer_attempt_stops_the_older():
    p = Pipe()
    p.connect()
    p.link.submit(launch(attempt=2))
    p.sync()
    stale = Command(id=99, kind="start", handle="j-1#1", epoch=1, launch=LaunchMsg(
        job_id="j-1", name="x", command="sleep 60", pool=FAR.pools[0].model_dump(), nodes=[0], devices_per_node=1,
        devices=[["0"]], attempt=1))
    p.run([stale])  # a start of attempt 1 that was delayed on the way
    assert p.core.runs["j-1#1"].state == "refused" and "stale" in p.core.runs["j-1#1"].reason
    assert p.engine.submitted == 1
    p.link.submit(launch(attempt=3))  # the network placed the job again: attempt 2 must not run beside it
    p.sync()
    assert p.core.runs["j-1#2"].state == "failed" and "attempt 3" in p.core.runs["j-1#2"].reason
    assert p.core.runs["j-1#3"].state == "running"


def test_events_resent_or_reordered_are_applied_once():
    p = Pipe()
    p.connect()
    handle = p.link.submit(launch(run="sleep 0"))
    p.run(p.commands())
    p.core.poll_run(handle)  # ends at once
    events = p.core.outgoing()
    assert [e.run.state for e in events if e.run] == ["succeeded"]  # the unsent "running" was replaced
    seq = p.deliver(events)
    stale = events[0].model_copy(update={"run": RunReport(handle=handle, state="running", started_ago=1.0)})
    assert p.deliver([stale]) == seq  # resent after a reconnect: already applied, nothing changes
    assert p.link.poll(handle).state == "succeeded"
    p.connect()  # a reconnect: the agent's journal no longer holds what was acknowledged
    assert p.core.outgoing() == []


def test_a_report_of_a_run_not_placed_at_the_center_changes_nothing():
    p = Pipe()
    p.connect()
    forged = RunReport(handle="j-of-another-center#1", state="succeeded", started_ago=5, ended_ago=1, ran=4)
    p.link.receive(Events(items=[{"seq": 1, "run": forged}]), 0.0)
    assert "j-of-another-center#1" not in p.link.reports
    assert p.link.poll("j-of-another-center#1").state == "lost"


def test_load_beyond_what_the_network_file_declares_is_refused():
    p = Pipe()
    p.connect()
    ok = LoadMsg(id="slurm 4", pool="gpu", nodes=[1], devices_per_node=8, what="drained")
    p.link.receive(Beat(n=1, load=[ok]), 0.0)
    assert [x.nodes for x in p.link.load(FAR.pools)] == [(1,)]
    for bad, field in ((ok.model_copy(update={"pool": "h100"}), "pool"),
                       (ok.model_copy(update={"nodes": [7]}), "2 nodes"),
                       (ok.model_copy(update={"devices_per_node": 9}), "8 devices")):
        with pytest.raises(AgentError, match=field):
            p.link.receive(Beat(n=2, load=[bad]), 0.0)


@pytest.mark.parametrize("frame,field", [
    ('{"t": "events", "items": [{"seq": 1, "run": {"handle": "j-1#1", "state": "running", "ran": NaN}}]}', "ran"),
    ('{"t": "events", "items": [{"seq": 1, "run": {"handle": "j-1#1", "state": "running", "ran": -5}}]}', "ran"),
    ('{"t": "events", "items": [{"seq": 1, "run": {"handle": "../etc#1", "state": "running"}}]}', "handle"),
    ('{"t": "beat", "n": 1, "load": [{"id": "x", "pool": "gpu", "nodes": [0], "devices_per_node": 1e9}]}', "devices"),
    ('{"t": "events", "items": [' + ",".join(['{"seq": 1}'] * 2001) + "]}", "items"),
    ('{"t": "reboot"}', "t"),
])
def test_a_malformed_or_hostile_frame_is_an_error_naming_the_field(frame, field):
    with pytest.raises(ValidationError) as e:
        AGENT_FRAME.validate_json(frame)
    assert field in str(e.value)


def test_times_come_from_ages_not_from_the_agents_clock():
    p = Pipe(clock=lambda: 5e9)  # an agent whose clocks say nonsense
    p.connect()
    handle = p.link.submit(launch())
    p.run(p.commands())
    report = RunReport(handle=handle, state="succeeded", exit_code=0, started_ago=30, ended_ago=10, ran=20)
    p.link.receive(Events(items=[{"seq": 50, "run": report}]), 2000.0)
    status = p.link.poll(handle)
    assert (status.started_at, status.ended_at) == (1970.0, 1990.0)  # the server's receive time less the ages


def test_a_lapsed_lease_stops_what_the_server_would_place_elsewhere_and_keeps_the_rest(tmp_path):
    t = [0.0]
    p = Pipe(clock=lambda: t[0], leased=True)
    p.connect()
    p.core.beat_sent(1)
    p.core.beat_acked(1)  # the lease runs from when that beat was sent: 0
    wait, requeue = p.link.submit(launch("j-w")), p.link.submit(launch("j-r", loss="requeue"))
    p.sync()  # both reported running, and the server acknowledged it: confirmed
    p.link.submit(launch("j-u"))
    p.run(p.commands())  # started, but its "running" never reached the server
    t[0] = FENCE_AT * 10 - 0.1
    p.core.tick()
    assert all(r.state == "running" for r in p.core.runs.values())
    t[0] = FENCE_AT * 10 + 0.1  # the server may declare the center down soon: fence before it does
    p.core.tick()
    states = {h: r.state for h, r in p.core.runs.items()}
    assert states == {wait: "running", requeue: "failed", "j-u#1": "failed"}
    assert "no word from the server" in p.core.runs[requeue].reason
    p.link.submit(launch("j-late"))
    p.run(p.commands())  # and it starts nothing new without a lease
    assert p.core.runs["j-late#1"].state == "refused" and "lease" in p.core.runs["j-late#1"].reason


def test_an_agent_restarted_from_its_journal_loses_no_run_and_meters_it_by_its_own_clock(tmp_path):
    journal = tmp_path / "journal.db"
    engine = TimedEngine()
    p = Pipe(engine=engine, journal=Journal(journal))
    p.connect()
    handle = p.link.submit(launch(run="sleep 0.3"))
    p.run(p.commands())  # the start is journaled; the agent dies before it reports anything
    p.core.journal.close()
    time.sleep(0.4)
    again = AgentCore("far", engine, Journal(journal))  # kill -9 and start again: the same journal
    assert again.runs[handle].native and again.runs[handle].state == "running"
    again.poll_run(handle)
    hello = again.hello()
    report = next(r for r in hello.runs if r.handle == handle)
    assert report.state == "succeeded" and report.ran == pytest.approx(0.3, abs=0.15)
    assert engine.submitted == 1


def test_a_hello_from_a_newer_connection_is_the_whole_truth_and_fences_what_the_network_moved():
    p = Pipe()
    p.connect()
    a, b = p.link.submit(launch("j-a")), p.link.submit(launch("j-b"))
    p.sync()
    p.link.track({b})  # the network moved j-a elsewhere while the center was away
    kinds = {(c.kind, c.handle) for c in p.commands()}
    assert ("cancel", a) in kinds
    hello = p.core.hello()
    assert isinstance(hello, Hello) and {r.handle for r in hello.runs} == {a, b}
    assert not any(math.isnan(r.ran or 0) for r in hello.runs)


def test_an_agent_one_minor_older_joins_but_is_never_asked_to_move_data():
    major, minor = (int(x) for x in VERSION.split("."))
    p = Pipe()
    older = p.core.hello().model_copy(update={"version": f"{major}.{minor - 1}"})
    assert not isinstance(p.link.connect(older, p.now[0]), Refused)
    with pytest.raises(EngineDown, match="too old to move datasets"):
        p.link.move(Move(rid=1, op="status", transfer=1, prefix="datasets/acme/corpus"))
    assert [f for f in p.link.take() if isinstance(f, Move)] == []


@pytest.mark.parametrize("prefix", ["../etc", "datasets/../x", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_a_move_names_a_clean_key_prefix(prefix):
    with pytest.raises(ValidationError):
        SERVER_FRAME.validate_python({"t": "move", "rid": 1, "op": "receive", "transfer": 1, "prefix": prefix})
