"""Chaos: a real `zhisuan server` is killed with SIGKILL at 50 random points while clients submit (with
idempotency keys, retrying what was not acknowledged), cancel, and jobs run and end. Afterwards every
acknowledged submit is stored exactly once, every submit retried after a kill is one job, and no job ran
twice in one attempt. On SQLite and on PostgreSQL."""

import json
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.builders import ROOT
from zhisuan.engines.sandbox import isolating
from zhisuan.serve.process import ServerProcess
from zhisuan.store import JobStore, connect

KILLS = int(__import__("os").environ.get("ZHISUAN_CHAOS_KILLS", "50"))
pytestmark = pytest.mark.skipif(not isolating(), reason="job isolation needs root and setpriv (CI has both)")


def spec(name: str, marks: Path, rng: random.Random) -> str:
    run = f"touch {marks}/$ZHISUAN_JOB_ID.$ZHISUAN_ATTEMPT.$$; sleep {rng.choice([0, 0.1, 0.3, 0.6])}"
    devices = rng.choice([1, 2, 8])
    return f"name: {name}\ntenant: acme\nresources: {{accelerators: 910b:{devices}}}\nrun: {json.dumps(run)}\n"


def test_kill_9_at_random_points_loses_nothing_and_runs_nothing_twice(db_url, tmp_path):
    rng = random.Random(20261201)
    marks = tmp_path / "marks"
    marks.mkdir(mode=0o1777)
    marks.chmod(0o1777)  # jobs run under uids of their own: each leaves a mark per run
    server = ServerProcess(ROOT / "examples/networks/toy3.yaml", db_url, tmp_path / "runs", interval=0.1)
    sent: dict[str, str] = {}  # idempotency key -> spec, every submit tried
    acked: dict[str, str] = {}  # key -> job id the server acknowledged
    cancelled: set[str] = set()
    for _ in range(KILLS):
        server.start()
        with server.client("acme") as acme:
            until = time.time() + rng.uniform(0.1, 0.8)
            while time.time() < until:
                try:
                    if rng.random() < 0.25 and acked:
                        job = rng.choice(sorted(acked.values()))
                        if acme.post(f"/v1/jobs/{job}/cancel").status_code == 200:
                            cancelled.add(job)
                        continue
                    unacked = [k for k in sent if k not in acked]
                    key = unacked[0] if unacked and rng.random() < 0.5 else uuid.uuid4().hex
                    sent.setdefault(key, spec(f"c{len(sent)}", marks, rng))
                    r = acme.post("/v1/jobs", content=sent[key], headers={"Idempotency-Key": key})
                    if r.status_code == 201:
                        assert acked.setdefault(key, r.json()["id"]) == r.json()["id"]  # a retry is the same job
                except httpx.HTTPError:
                    break
                time.sleep(0.03)  # a dozen clients' worth, not a flood the network then needs minutes to drain
        server.stop(signal.SIGKILL)  # anywhere: mid-request, mid-step, mid-start
    server.start()
    try:
        with server.client("acme") as acme:
            for key, text in sent.items():  # what was never acknowledged, retried once more
                r = acme.post("/v1/jobs", content=text, headers={"Idempotency-Key": key})
                assert r.status_code == 201, r.text
                assert acked.setdefault(key, r.json()["id"]) == r.json()["id"]
            end = time.time() + 120
            while time.time() < end:
                states = {j["id"]: j["state"] for j in acme.get("/v1/jobs?limit=1000").json()}
                if all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
                    break
                time.sleep(0.5)
    finally:
        server.stop()
    store = JobStore(connect(db_url))
    jobs = {r.id: r for r in store.find()}
    assert sorted(jobs) == sorted(set(acked.values())), "every acknowledged submit stored once, nothing else"
    assert len(set(acked.values())) == len(acked) == len(sent)  # one job per idempotency key
    assert all(r.state.terminal for r in jobs.values()), {r.id: r.state for r in jobs.values() if not r.state.terminal}
    runs: dict[tuple[str, str], int] = {}
    for mark in marks.iterdir():
        job, attempt, _ = mark.name.split(".")
        runs[(job, attempt)] = runs.get((job, attempt), 0) + 1
    twice = {k: n for k, n in runs.items() if n > 1}
    assert not twice, f"ran more than once in one attempt: {twice}"
    for r in jobs.values():
        if r.state.value == "succeeded":
            assert (r.id, str(r.attempts)) in runs  # it did run, in the attempt it ended with
    assert len(cancelled) > 0 and len(acked) > 100  # the load was mixed and real
