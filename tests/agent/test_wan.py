"""Centers that join through their agents across an emulated WAN: each in a network namespace of its own,
connecting out over TLS through a fault proxy (20 ms each way), a real `zhisuan server` and real `zhisuan agent`
processes with the local engine. The faults of the issue: an agent killed mid-start and mid-preemption, the
server killed, a 60 s partition during starts and ends, connections reset, an agent whose clock is 5 minutes
off. What must hold: no job runs twice or in two places, no event is lost, no job is billed twice, and runs
that ended while their center was cut off are metered with their true durations."""

import json
import signal
import subprocess
import time

import pytest

from tests.agent.wan import Wan, need_namespaces
from tests.control.test_services import script  # noqa: F401 (fixture)

CENTER = """
  - name: {name}
    region: {region}
    join: {join}
    pue: 1.2
    carbon_kg_per_kwh: {carbon}
    pools:
      - {{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 4, price_per_device_hour: {price},
         device_ids: [g0, g1, g2, g3]}}
"""


def network(timeout="8s", centers=(("near", "east", "direct", 0.5, 20), ("far", "west", "agent", 0.1, 5))):
    text = (f"name: wan\ncontrol: {{center_timeout: {timeout}, beat_every: 1s, grace: 2s}}\n"
            "tenants: [{name: acme}]\ncenters:")
    for name, region, join, carbon, price in centers:
        text += CENTER.format(name=name, region=region, join=join, carbon=carbon, price=price)
    return text


def spec(name, run, devices=1, loss=None, priority=0, limit="10m"):
    extra = f"on_center_loss: {loss}\n" if loss else ""
    return (f"name: {name}\npriority: {priority}\nresources: {{accelerators: 'a100:{devices}'}}\n"
            f"constraints: {{time_limit: {limit}}}\n{extra}run: {json.dumps(run)}\n")


@pytest.fixture
def wan(tmp_path):
    need_namespaces()
    w = Wan(tmp_path, network())
    w.center("far", 41)
    try:
        w.start()
        w.start_agent("far")
        w.wait_connected("far")
        yield w
    finally:
        w.stop()


def ran(rec):
    """Seconds between the job's last start and its end, as the server recorded them."""
    at = {h["state"]: h["at"] for h in rec["history"]}
    return at[rec["state"]] - at["running"]


def billed_hours(wan, job):
    bill = wan.client("acme").get(f"/v1/invoices/acme/{time.strftime('%Y-%m')}").json()
    return sum(x["allocated_device_hours"] for x in bill["lines"] if x["job_id"] == job)


def count_file(wan, job):
    """How many times the job's command began (it appends a line to its checkpoint folder each time)."""
    path = wan.centers["far"].state / "runs" / job / "checkpoint" / "began"
    return len(path.read_text().splitlines()) if path.exists() else 0


BEGIN = 'echo x >> "$ZHISUAN_CHECKPOINT_DIR/began"; '


def test_a_center_in_its_own_namespace_runs_jobs_through_its_agent(wan):
    acme = wan.client("acme")
    job = wan.job("acme", spec("hello", BEGIN + "echo hello from $ZHISUAN_JOB_ID; sleep 1"))
    rec = wan.until("acme", job, {"succeeded", "failed"})
    assert rec["state"] == "succeeded" and rec["center"] == "far", rec["history"]
    assert acme.get(f"/v1/jobs/{job}/logs").text == f"hello from {job}\n"  # read at the center, over its link
    assert count_file(wan, job) == 1
    long = wan.job("acme", spec("long", "sleep 300"))
    wan.until("acme", long, {"running"})
    started = time.time()
    assert acme.post(f"/v1/jobs/{long}/cancel").json()["state"] == "cancelled"
    admin = wan.client("admin")
    while time.time() - started < 15 and any(a["runs"] for a in admin.get("/v1/agents").json()
                                             if a["center"] == "far"):
        time.sleep(0.2)  # the agent reports the end, the server records it and tells the agent to forget it
    assert [a["runs"] for a in admin.get("/v1/agents").json() if a["center"] == "far"] == [0]
    assert billed_hours(wan, job) * 3600 == pytest.approx(1, abs=0.6)


def test_the_agent_killed_mid_start_starts_the_job_once(wan):
    job = wan.job("acme", spec("once", BEGIN + "sleep 2"))
    acme = wan.client("acme")
    end = time.time() + 20
    while time.time() < end and acme.get(f"/v1/jobs/{job}").json()["state"] == "pending":
        time.sleep(0.005)
    wan.kill_agent("far")  # placed: its start is on the way, or just begun at the center
    wan.start_agent("far")
    rec = wan.until("acme", job, {"succeeded", "failed"}, limit=60)
    assert rec["state"] == "succeeded" and count_file(wan, job) == 1, rec["history"]


def test_the_server_killed_loses_nothing_and_bills_the_true_duration(wan):
    job = wan.job("acme", spec("through", BEGIN + "sleep 6"))
    wan.until("acme", job, {"running"})
    t0 = time.time()
    wan.server.stop(signal.SIGKILL)
    time.sleep(3)
    wan.server.start()  # the same database and port: the agent reconnects
    rec = wan.until("acme", job, {"succeeded", "failed"}, limit=60)
    assert rec["state"] == "succeeded" and count_file(wan, job) == 1
    assert [h["state"] for h in rec["history"]] == ["pending", "scheduled", "running", "succeeded"]
    assert billed_hours(wan, job) * 3600 == pytest.approx(6, abs=1.5)  # billed once, as it ran
    assert time.time() - t0 >= 3


def test_a_partition_during_starts_and_ends(wan):
    """60 s cut off: a job that ends meanwhile is metered as it ran; one that waits goes on there; one that asked
    to be requeued is stopped by the agent before the server places it again; none runs twice at once."""
    ends = wan.job("acme", spec("ends", BEGIN + "sleep 12", loss="wait"))
    stays = wan.job("acme", spec("stays", BEGIN + "sleep 75", loss="wait"))
    moves = wan.job("acme", spec("moves", BEGIN + "sleep 300", loss="requeue"))
    for j in (ends, stays, moves):
        wan.until("acme", j, {"running"})
    cut = time.time()
    wan.partition("far", True)
    late = wan.job("acme", spec("late", "sleep 1"))  # the center is silent: it goes to near, or waits for it
    time.sleep(20)
    rec = wan.until("acme", moves, {"running"}, limit=30)
    assert rec["center"] == "near"  # requeued elsewhere once far was declared down
    assert wan.client("acme").get(f"/v1/jobs/{stays}").json()["state"] == "running"  # waits for its center
    time.sleep(max(0.0, 60 - (time.time() - cut)))
    wan.partition("far", False)
    rec = wan.until("acme", ends, {"succeeded", "failed"}, limit=40)
    assert rec["state"] == "succeeded" and rec["center"] == "far"
    assert ran(rec) == pytest.approx(12, abs=2)  # its true duration, not the 60 s it was out of sight
    assert billed_hours(wan, ends) * 3600 == pytest.approx(12, abs=2)
    assert wan.until("acme", late, {"succeeded"}, limit=30)["state"] == "succeeded"
    rec = wan.until("acme", stays, {"succeeded"}, limit=60)
    assert rec["center"] == "far" and count_file(wan, stays) == 1
    assert count_file(wan, moves) == 1  # began once at far (then near ran it: it is not far's any more)
    history = [h["why"] for h in wan.client("acme").get(f"/v1/jobs/{moves}").json()["history"]]
    assert any("on_center_loss: requeue" in h for h in history)


def test_connections_reset_again_and_again_lose_no_event(wan):
    wan.centers["far"].proxy.set_reset_rate(0.5, seed=7)  # a reset every 2 s on average
    jobs = [wan.job("acme", spec(f"r{i}", BEGIN + f"sleep {1 + i % 3}")) for i in range(12)]
    recs = [wan.until("acme", j, {"succeeded", "failed"}, limit=120) for j in jobs]
    bad = [(r["reason"], r["history"]) for r in recs if r["state"] != "succeeded"]
    assert not bad
    assert all(count_file(wan, j) == 1 for j in jobs if recs[jobs.index(j)]["center"] == "far")
    assert wan.centers["far"].proxy.stats["resets"] > 0


def test_an_agent_whose_clock_is_five_minutes_off_meters_right(tmp_path):
    need_namespaces()
    subprocess.run(["bash", "scripts/apt-ensure.sh", "faketime"], check=True, capture_output=True)
    w = Wan(tmp_path, network())
    c = w.center("far", 42)
    c.env = {"FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # its wall clock is off (as with a broken NTP), not its uptime
    try:
        w.start()
        w.start_agent("far", extra=["faketime", "-f", "+5m"])
        w.wait_connected("far")
        job = w.job("acme", spec("skewed", "sleep 3"))
        rec = w.until("acme", job, {"succeeded", "failed"})
        assert rec["state"] == "succeeded" and rec["center"] == "far"
        assert ran(rec) == pytest.approx(3, abs=1)
        said = next(line for line in (tmp_path / "agent-far.log").read_text().splitlines()
                    if "connected to the server" in line)  # the agent's own log, stamped by its own clock
        from datetime import datetime

        ahead = datetime.strptime(said[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp() - time.time()
        assert 240 < ahead < 360  # it does think it is five minutes later
        started = next(h["at"] for h in rec["history"] if h["state"] == "running")
        assert abs(started - time.time()) < 60  # dated by the server's clock, not 5 minutes ahead
    finally:
        w.stop()


def test_the_agent_killed_mid_preemption_never_lets_two_jobs_share_a_device(tmp_path):
    need_namespaces()
    text = network(centers=(("far", "west", "agent", 0.1, 5),)).replace("tenants:", "scheduler: {policy: priority}\n"
                                                                          "tenants:")
    w = Wan(tmp_path, text)
    w.center("far", 43)
    ck = '"$ZHISUAN_CHECKPOINT_DIR"'
    low = (f"echo x >> {ck}/began; [ $(wc -l < {ck}/began) -ge 2 ] && exit 0; "
           f"trap 'sleep 0.5; date +%s.%N > {ck}/stopped; exit 0' TERM; sleep 300 & wait")
    high = f"echo x >> {ck}/began; date +%s.%N > {ck}/started; sleep 1"
    try:
        w.start()
        w.start_agent("far")
        w.wait_connected("far")
        victim = w.job("acme", spec("low", low, devices=4))
        w.until("acme", victim, {"running"})
        time.sleep(1)  # its trap is set
        boss = w.job("acme", spec("high", high, devices=4, priority=5))
        time.sleep(0.3)  # the preemption is decided and its stop is on the way
        w.kill_agent("far")
        time.sleep(3)  # past the grace period: the server asks for a kill, the center cannot say it is done
        assert w.client("acme").get(f"/v1/jobs/{boss}").json()["state"] in ("pending", "scheduled")
        w.start_agent("far")
        rec = w.until("acme", boss, {"succeeded", "failed"}, limit=60)
        assert rec["state"] == "succeeded", rec["history"]
        rec = w.until("acme", victim, {"succeeded", "failed"}, limit=60)
        assert rec["state"] == "succeeded" and rec["attempts"] == 2, rec["history"]
        runs = w.centers["far"].state / "runs"
        stopped = float((runs / victim / "checkpoint" / "stopped").read_text())
        started = float((runs / boss / "checkpoint" / "started").read_text())
        assert started >= stopped  # the high job began only once the victim was gone from the devices
        assert count_lines(runs / boss / "checkpoint" / "began") == 1
        assert count_lines(runs / victim / "checkpoint" / "began") == 2  # its first run, and its requeued run
    finally:
        w.stop()


def count_lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


SERVICE = """name: chat
kind: service
resources: {{accelerators: a100:1}}
service: {{model: echo, ready: /health, replicas: {{min: 1, max: 1}}}}
run: exec python3 {script} --port $PORT --model echo
"""


def test_a_model_served_inside_a_center_that_opens_no_port(wan, tmp_path, script):  # noqa: F811
    """The gateway reaches the replica through its center's agent: a call, a streamed call, and a tenant's
    logs followed as they are written — all over the agent's own outbound connection."""
    acme = wan.client("acme")
    r = acme.post("/v1/services", content=SERVICE.format(script=script))
    assert r.status_code == 201, r.text
    end = time.time() + 60
    while time.time() < end and not acme.get("/v1/services").json()[0]["ready"]:
        time.sleep(0.3)
    assert acme.get("/v1/services").json()[0]["ready"][0]["center"] == "far"
    chat = {"model": "echo", "messages": [{"role": "user", "content": "across the WAN"}]}
    answer = acme.post("/v1/chat/completions", json=chat)
    assert answer.status_code == 200 and "across the WAN" in answer.text, answer.text
    with acme.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as streamed:
        body = "".join(streamed.iter_text())
    assert streamed.status_code == 200 and body.rstrip().endswith("data: [DONE]") and body.count("data: ") > 2
    job = wan.job("acme", spec("talker", "for i in 1 2 3 4; do echo line $i; sleep 0.5; done"))
    seen, stamps = [], []
    with acme.stream("GET", f"/v1/jobs/{job}/logs", params={"follow": "true"}) as follow:
        for line in follow.iter_lines():
            if line:
                seen.append(line)
                stamps.append(time.time())
    assert seen == ["line 1", "line 2", "line 3", "line 4"]
    assert stamps[-1] - stamps[0] > 1.0  # followed as they came, not read at the end
    acme.delete(f"/v1/services/{acme.get('/v1/services').json()[0]['id']}")


def test_api_workers_hand_the_agent_its_logs_and_its_models_to_their_server(tmp_path, script):  # noqa: F811
    """`--api-workers 1`: the public port (TLS) is the worker's. The agent's connection, the logs of a job in the
    agent's center and a model served behind the agent are all handed, over loopback, to the server's own
    process, which holds the agent's link; the worker answers the rest itself."""
    need_namespaces()
    w = Wan(tmp_path, network())
    w.center("far", 41)
    try:
        server = w.start(extra=["--api-workers", "1"])
        w.start_agent("far")
        w.wait_connected("far")  # through the worker: /v1/agents is relayed to the server too
        acme, admin = w.client("acme"), w.client("admin")
        assert acme.get("/v1/control-plane").json()["leads"] is True  # the server's own answer, relayed
        assert [a["connected"] for a in admin.get("/v1/agents").json() if a["center"] == "far"] == [True]
        job = w.job("acme", spec("hello", "echo hello from $ZHISUAN_JOB_ID"))
        rec = w.until("acme", job, {"succeeded", "failed"})
        assert rec["state"] == "succeeded" and rec["center"] == "far", rec["history"]
        assert acme.get(f"/v1/jobs/{job}/logs").text == f"hello from {job}\n"
        assert acme.get(f"/v1/jobs/{job}/logs", headers={"X-Zhisuan-Relayed": "1"}).text == f"hello from {job}\n"
        assert acme.get("/v1/jobs/j-nosuch/logs").status_code == 404  # the server's answer, relayed back
        r = acme.post("/v1/services", content=SERVICE.format(script=script))
        assert r.status_code == 201, r.text
        end = time.time() + 60
        while time.time() < end and not acme.get("/v1/services").json()[0]["ready"]:
            time.sleep(0.3)
        chat = {"model": "echo", "messages": [{"role": "user", "content": "via the worker"}]}
        answer = acme.post("/v1/chat/completions", json=chat)
        assert answer.status_code == 200 and "via the worker" in answer.text, answer.text
        acme.delete(f"/v1/services/{acme.get('/v1/services').json()[0]['id']}")
        workers = subprocess.run(["pgrep", "-P", str(server.proc.pid), "-f", "api-worker-of"], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 1
    finally:
        w.stop()
    left = subprocess.run(["pgrep", "-af", "--", f"--port {server.port} "], capture_output=True, text=True)
    assert left.returncode == 1, left.stdout  # neither the server nor its worker is left
