"""Three `zhisuan server` replicas on one real PostgreSQL form one control plane: every replica takes submits
and cancels, exactly one (the lease holder) runs the loop. The leader killed (SIGKILL), frozen (SIGSTOP) and
cut off from the database: another leads within the lease, re-adopts what runs, and nothing runs twice; the
frozen one, thawed, finds its lease taken and stops (its writes are refused meanwhile: fencing)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from zhisuan.bench.plane import Plane

LEASE = 3.0
NETWORK = """
name: ha
tenants: [{name: acme}]
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 8, price_per_device_hour: 10}]
"""
BEGIN = 'echo x >> "$ZHISUAN_CHECKPOINT_DIR/began"; '


@pytest.fixture
def pg(db_url):
    """Replicas share a PostgreSQL (SQLite is the one-server embedded default)."""
    return db_url


ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def plane_of(tmp_path, db_url):
    (tmp_path / "net.yaml").write_text(NETWORK)
    return Plane(tmp_path, tmp_path / "net.yaml", db_url, LEASE)


def job(server, name, run):
    spec = {"name": name, "resources": {"accelerators": "a100:1"}, "run": run,
            "constraints": {"time_limit": "5m"}}
    r = server.client("acme").post("/v1/jobs", content=json.dumps(spec))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def until(server_of, job_id, states, limit=60.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            rec = server_of().client("acme").get(f"/v1/jobs/{job_id}", timeout=3).json()
            if rec["state"] in states:
                return rec
        except Exception:  # the replica asked is stopping: ask another next time
            pass
        time.sleep(0.2)
    raise AssertionError(f"{job_id} not in {states} within {limit} s")


def began(plane, job_id):
    path = plane.runs / job_id / "checkpoint" / "began"
    return len(path.read_text().splitlines()) if path.exists() else 0


@ON_POSTGRES
def test_the_leader_killed_frozen_or_cut_off_another_leads_and_nothing_runs_twice(pg, tmp_path):
    plane = plane_of(tmp_path, pg)
    try:
        for i in range(3):
            plane.add(via_proxy=i == 0)
        first, epoch = plane.leader()
        other = plane.follower(first)
        long = job(other, "long", BEGIN + "sleep 12")  # submitted to a follower: the leader places it
        until(lambda: other, long, {"running"})

        # 1. SIGKILL: another leads within the lease, re-adopts the running job, and jobs go on
        killed_at = time.time()
        first.stop(signal.SIGKILL)
        during = job(other, "during", BEGIN + "true")  # a follower takes submits while nobody leads
        second, epoch2 = plane.leader(not_=first)
        assert epoch2 > epoch and time.time() - killed_at <= LEASE + 5
        assert until(lambda: second, during, {"succeeded", "failed"})["state"] == "succeeded"
        assert until(lambda: second, long, {"succeeded", "failed"})["state"] == "succeeded"
        assert began(plane, long) == 1 and began(plane, during) == 1
        cli = subprocess.run([sys.executable, "-m", "zhisuan.cli.main", "jobs", "--all", "--url",
                              f"{first.url},{second.url}", "--token", second.token("acme")],
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0 and "during" in cli.stdout, cli.stderr  # the first replica is gone: the next

        # 2. SIGSTOP: the frozen leader is replaced; thawed, it finds its lease taken and stops (status 75)
        survivor = plane.follower(second)
        second.proc.send_signal(signal.SIGSTOP)
        third, epoch3 = plane.leader(not_=second)
        assert third is survivor and epoch3 > epoch2
        second.proc.send_signal(signal.SIGCONT)
        assert second.proc.wait(timeout=20) == 75
        assert "stopped leading" in second.log.read_text()
        after = job(third, "after", BEGIN + "true")
        assert until(lambda: third, after, {"succeeded", "failed"})["state"] == "succeeded"

        # 3. a cancel taken by a follower stops the job where the leader runs it
        restarted = plane.add()  # a supervisor starts the stopped one again: it follows
        assert plane.leader()[0] is third
        victim = job(restarted, "victim", BEGIN + "sleep 301")
        until(lambda: third, victim, {"running"})
        assert restarted.client("acme").post(f"/v1/jobs/{victim}/cancel").json()["state"] == "cancelled"
        end = time.time() + 15
        while time.time() < end and subprocess.run(["pgrep", "-f", "sleep 301"]).returncode == 0:
            time.sleep(0.2)
        assert subprocess.run(["pgrep", "-f", "sleep 301"]).returncode == 1  # the leader stopped it
        assert began(plane, victim) == 1
    finally:
        plane.close()


@ON_POSTGRES
def test_a_leader_cut_off_from_the_database_stops_and_another_leads(pg, tmp_path):
    plane = plane_of(tmp_path, pg)
    try:
        cut = plane.add(via_proxy=True)
        assert plane.leader()[0] is cut  # alone at first: it leads
        plane.add()
        job_id = job(cut, "before", BEGIN + "sleep 4")
        until(lambda: cut, job_id, {"running"})
        plane.proxies[0].blackhole(True)  # its database no longer answers (queries hang)
        status = cut.proc.wait(timeout=LEASE + 15)
        assert status == 75 and "stopped leading" in cut.log.read_text()
        leader, _ = plane.leader()
        assert until(lambda: leader, job_id, {"succeeded", "failed"})["state"] == "succeeded"
        assert began(plane, job_id) == 1
    finally:
        plane.close()


@ON_POSTGRES
def test_a_follower_relays_to_the_leader_what_only_the_leader_reaches(pg, tmp_path):
    """A model only the leader reaches (in production: a replica behind a center's agent, whose connection the
    leader holds) answers through any replica: a follower that cannot reach it relays the call, with the
    caller's token, to the leader, which answers and meters it — once."""
    from zhisuan.engines.rendezvous import free_port

    port = free_port()
    backend = subprocess.Popen([sys.executable, "-m", "zhisuan.gateway.backend", "--port", str(port), "--model",
                                "echo"])
    plane = plane_of(tmp_path, pg)
    try:
        first = plane.add(extra=["--model-backend", f"echo=http://127.0.0.1:{port}"])
        assert plane.leader()[0] is first
        second = plane.add(extra=["--model-backend", f"echo=http://127.0.0.1:{free_port()}"])  # nothing there
        chat = {"model": "echo", "messages": [{"role": "user", "content": "relayed words"}]}
        with second.client("acme") as acme:
            end = time.time() + 20
            while (r := acme.post("/v1/chat/completions", json=chat)).status_code != 200 and time.time() < end:
                time.sleep(0.3)  # until the follower has read who leads
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "relayed words"
            with acme.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as s:
                assert s.status_code == 200 and b"data: [DONE]" in b"".join(s.iter_bytes())
        time.sleep(0.5)

        def served(server):  # acme's requests answered there: all it counted, less those no replica answered
            with server.client("admin") as admin:
                scrape = admin.get("/metrics").text.splitlines()
            return sum(float(x.split()[-1]) * (1 if x.startswith("zhisuan_gateway_requests_total") else -1)
                       for x in scrape if 'tenant="acme"' in x and x.startswith(
                           ("zhisuan_gateway_requests_total", "zhisuan_gateway_errors_total")))

        assert served(first) == 2 and served(second) == 0  # metered where it was served, once
        said = job(second, "said", "echo said once")  # its logs, asked of the follower, are the leader's to give
        until(lambda: second, said, {"succeeded"})
        assert second.client("acme").get(f"/v1/jobs/{said}/logs").text == "said once\n"
        assert f"GET /v1/jobs/{said}/logs HTTP/1.1\" 200" in first.log.read_text()
    finally:
        plane.close()
        backend.terminate()
        backend.wait(10)


def workers_of(server):
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid), "-f", "api-worker-of"], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


@ON_POSTGRES
def test_api_workers_answer_the_port_come_back_and_end_with_their_server(pg, tmp_path):
    """`--api-workers 2`: the workers answer the public port (submits stored once, run by the server's loop;
    `/v1/control-plane` is the server's own answer), a worker that dies is started again, and the server
    killed -9 takes its workers with it (the parent-death signal); another replica then leads."""
    plane = plane_of(tmp_path, pg)
    try:
        first = plane.add(extra=["--api-workers", "2"])
        assert plane.leader()[0] is first  # its workers relay /v1/control-plane to it
        ids = [job(first, f"w{i}", BEGIN + "true") for i in range(6)]
        assert all(until(lambda: first, j, {"succeeded"})["attempts"] == 1 for j in ids)
        assert all(began(plane, j) == 1 for j in ids)
        workers = workers_of(first)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        end = time.time() + 15
        while time.time() < end and (len(workers_of(first)) < 2 or workers[0] in workers_of(first)):
            assert first.client("acme").get("/v1/jobs", timeout=5).status_code == 200  # the other one answers
            time.sleep(0.2)
        again = workers_of(first)
        assert len(again) == 2 and workers[0] not in again
        second = plane.add()
        os.kill(first.proc.pid, signal.SIGKILL)  # the server alone, not its process group
        first.proc.wait(10)
        end = time.time() + 10
        while time.time() < end and any(os.path.exists(f"/proc/{p}") for p in again):
            time.sleep(0.1)
        assert not any(os.path.exists(f"/proc/{p}") for p in again)  # its workers ended with it
        assert plane.leader(limit=20)[0] is second
        assert until(lambda: second, job(second, "after", BEGIN + "true"), {"succeeded"})["attempts"] == 1
    finally:
        plane.close()
