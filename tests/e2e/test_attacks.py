"""A hostile tenant against a real `zhisuan server` (SQLite, local engine): its jobs cannot read secrets,
touch another job, break the control loop, or outlive their cancel. Each test is an attack that worked
before the hardening."""

import json
import os
import time

import pytest

from tests.builders import ROOT
from zhisuan.control.keeper import port_free
from zhisuan.engines.sandbox import isolating, processes_of
from zhisuan.serve.process import ServerProcess

pytestmark = pytest.mark.skipif(not isolating(), reason="job isolation needs root and setpriv (CI has both)")


@pytest.fixture
def server(tmp_path):
    os.environ["ZHISUAN_CANARY"] = "server-secret"  # the server's environment must not reach jobs
    srv = ServerProcess(ROOT / "examples/networks/toy3.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs",
                        interval=0.2).start()
    yield srv, tmp_path
    srv.close()
    os.environ.pop("ZHISUAN_CANARY", None)


def job(name, run, tenant="acme", devices=1):
    return f"name: {name}\ntenant: {tenant}\nresources: {{accelerators: 910b:{devices}}}\nrun: {json.dumps(run)}\n"


def submit(client, text):
    r = client.post("/v1/jobs", content=text)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait(client, job_id, states=("succeeded", "failed", "cancelled"), limit=30.0):
    end = time.time() + limit
    while time.time() < end:
        rec = client.get(f"/v1/jobs/{job_id}").json()
        if rec["state"] in states:
            return rec
        time.sleep(0.2)
    raise AssertionError(client.get(f"/v1/jobs/{job_id}").json())


def test_a_job_cannot_read_tokens_the_database_or_the_servers_environment(server):
    srv, tmp = server
    with srv.client("acme") as acme:
        spy = submit(acme, job("spy", f"cat ../../../tokens.json; cat {tmp / 'z.db'} | head -c 64; "
                                      "cat ../handle.json; env; ls ../../../ && echo listed"))
        wait(acme, spy)
        out = acme.get(f"/v1/jobs/{spy}/logs").text
    tokens = json.loads((srv.runs / "tokens.json").read_text())
    assert not any(t in out for t in tokens.values())  # not one token
    assert "SQLite format" not in out and "pids" not in out and "server-secret" not in out
    assert out.count("Permission denied") >= 3, out  # tokens, its own handle, the runs folder
    assert f"{tmp / 'z.db'}: No such file" in out  # the database, in the host's /tmp: not in the job's own
    assert "ZHISUAN_JOB_ID=" in out  # its own environment is there


def test_a_job_cannot_forge_its_bookkeeping_or_stall_the_loop(server):
    srv, _ = server
    with srv.client("acme") as acme, srv.client("lab") as lab:
        forger = submit(acme, job("forger", 'echo \'{"pids": [1]}\' > ../handle.json; echo 0 > ../exit-0; sleep 2; '
                                            "exit 3"))
        other = submit(lab, job("other", "echo fine", tenant="lab"))
        assert wait(lab, other)["state"] == "succeeded"  # the loop went on
        rec = wait(acme, forger)
        assert (rec["state"], rec["exit_code"]) == ("failed", 3)  # its real exit code, not the forged one


def test_a_job_cannot_signal_another_job_and_its_daemons_die_with_it(server):
    srv, _ = server
    with srv.client("acme") as acme, srv.client("lab") as lab:
        victim = submit(lab, job("victim", "sleep 30", tenant="lab"))
        wait(lab, victim, ("running",))
        killer = submit(acme, job("killer", "for p in $(ls /proc | grep -E '^[0-9]+$'); do "
                                            "[ $p != $$ ] && kill -9 $p 2>/dev/null; done; "
                                            "setsid sleep 300 & echo spawned"))
        wait(acme, killer)
        assert lab.get(f"/v1/jobs/{victim}").json()["state"] == "running"  # untouched
        uid = json.loads((srv.runs / killer / "attempt-1" / "handle.json").read_text())["uid"]
        end = time.time() + 5
        while time.time() < end and processes_of(uid):
            time.sleep(0.1)
        assert processes_of(uid) == []  # the setsid daemon went with its job
        vuid = json.loads((srv.runs / victim / "attempt-1" / "handle.json").read_text())["uid"]
        assert lab.post(f"/v1/jobs/{victim}/cancel").json()["state"] == "cancelled"
        end = time.time() + 10
        while time.time() < end and processes_of(vuid):
            time.sleep(0.1)
        assert processes_of(vuid) == []  # cancel killed its whole tree


@pytest.mark.parametrize(("text", "field"), [
    (job("nul", "echo a\x00b"), "run"),
    ("name: e\ntenant: acme\nresources: {accelerators: 910b:1}\nenv: {'A=B': c}\nrun: x\n", "env"),
    ("name: t\ntenant: acme\nresources: {accelerators: 910b:1}\nconstraints: {time_limit: .nan}\nrun: x\n",
     "constraints.time_limit"),
    ("name: p\ntenant: acme\nresources: {accelerators: 910b:1}\nconstraints: {max_price: .inf}\nrun: x\n",
     "constraints.max_price"),
])
def test_what_could_not_start_is_refused_at_submit(server, text, field):
    srv, _ = server
    with srv.client("acme") as acme:
        r = acme.post("/v1/jobs", content=text.encode())
        assert r.status_code == 422, r.text
        assert field in [e["field"] for e in r.json().get("errors", [])] or (field == "run" and "NUL" in r.text)
        assert acme.get("/v1/jobs").json() == []


def test_the_database_and_tokens_are_the_servers_alone(server):
    srv, tmp = server
    for path in (tmp / "z.db", srv.runs / "tokens.json"):
        assert path.stat().st_mode & 0o077 == 0, path  # no group, no others


def test_a_job_holding_every_replica_port_cannot_stop_the_service_keeper(server):
    """A job bound 127.0.0.1:20000-29999 and every control step failed choosing a replica's port: no new
    replica for any tenant, no draining, until that job ended. Now a replica is still placed (its bind may
    fail, and it is replaced with back-off) and the loop goes on."""
    srv, _ = server
    lab, acme = srv.client("lab"), srv.client("acme")
    binder = ("import socket, time\nheld = []\nfor p in range(20000, 30000):\n    s = socket.socket()\n"
              "    try:\n        s.bind(('127.0.0.1', p)); held.append(s)\n    except OSError:\n        s.close()\n"
              "open('held', 'w').write(str(len(held)))\ntime.sleep(120)\n")
    hog = submit(lab, job("hog", f"ulimit -n 20000\npython3 - <<'EOF'\n{binder}EOF\n", tenant="lab"))
    wait(lab, hog, ("running",))
    end = time.time() + 20
    while time.time() < end and any(port_free(p) for p in (20000, 25000, 29999)):
        time.sleep(0.3)
    assert not any(port_free(p) for p in (20000, 25000, 29999)), "the hog did not take the ports"
    spec = ("name: chat\ntenant: acme\nkind: service\nresources: {accelerators: 910b:1}\n"
            "service: {model: m, replicas: {min: 1, max: 1}}\nrun: sleep 60\n")
    r = acme.post("/v1/services", content=spec)
    assert r.status_code == 201, r.text
    try:
        end = time.time() + 20
        while time.time() < end and not any(j["name"].startswith("chat-r") for j in acme.get("/v1/jobs").json()):
            time.sleep(0.3)
        assert any(j["name"].startswith("chat-r") for j in acme.get("/v1/jobs").json()), "no replica was placed"
        assert wait(acme, submit(acme, job("after", "echo fine")))["state"] == "succeeded"
    finally:
        acme.delete(f"/v1/services/{r.json()['id']}")
        lab.post(f"/v1/jobs/{hog}/cancel")


def test_services_answer_as_what_they_are(server):
    """Deleting another tenant's service said "no job 's-…'"; a deployed service whose replica is not ready
    yet answered 404 "not served here" (as an unknown model does) instead of 503."""
    srv, _ = server
    lab, acme = srv.client("lab"), srv.client("acme")
    spec = ("name: slow\ntenant: acme\nkind: service\nresources: {accelerators: 910b:1}\n"
            "service: {model: slow-model, replicas: {min: 1, max: 1}}\nrun: sleep 60\n")
    sid = acme.post("/v1/services", content=spec).json()["id"]
    try:
        gone = lab.delete(f"/v1/services/{sid}")
        assert gone.status_code == 404 and f"no service '{sid}'" in gone.json()["detail"], gone.text
        chat = {"model": "slow-model", "messages": [{"role": "user", "content": "hi"}]}
        end = time.time() + 10
        while (r := acme.post("/v1/chat/completions", json=chat)).status_code == 404 and time.time() < end:
            time.sleep(0.3)  # the keeper's first step after the deploy
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_replica_ready", r.text
        assert lab.post("/v1/chat/completions", json=chat).status_code == 404  # not lab's service
        unknown = acme.post("/v1/chat/completions", json={**chat, "model": "no-such-model"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    finally:
        acme.delete(f"/v1/services/{sid}")

def test_a_deploy_retried_with_its_idempotency_key_makes_one_service(server):
    srv, _ = server
    acme = srv.client("acme")
    spec = ("name: once\ntenant: acme\nkind: service\nresources: {accelerators: 910b:1}\n"
            "service: {model: once-model, replicas: {min: 1, max: 1}}\nrun: sleep 60\n")
    first = acme.post("/v1/services", content=spec, headers={"Idempotency-Key": "deploy-1"})
    again = acme.post("/v1/services", content=spec, headers={"Idempotency-Key": "deploy-1"})
    try:
        assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
        assert [s["id"] for s in acme.get("/v1/services").json() if s["name"] == "once"] == [first.json()["id"]]
        bad = acme.post("/v1/services", content=spec, headers={"Idempotency-Key": "x" * 129})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Idempotency-Key"
    finally:
        acme.delete(f"/v1/services/{first.json()['id']}")


def test_a_job_sees_no_other_process_nor_another_jobs_scratch(server):
    """#1: a job read another tenant's replica's command line (its key) and the root wrapper's (the whole
    script) in /proc, and files other jobs left in /tmp and /dev/shm. Each job now has a /proc of its own
    processes only and scratch folders of its own."""
    srv, _ = server
    with srv.client("acme") as acme, srv.client("lab") as lab:
        victim = submit(lab, job("victim", "echo key > /tmp/lab-file; echo key > /dev/shm/lab-shm; "
                                           "sleep 30 --api-key=lab-key-5d1", tenant="lab"))
        wait(lab, victim, ("running",))
        spy = submit(acme, job("spy", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; "
                                      "ls -a /tmp /dev/shm /var/tmp; echo ours > /tmp/acme-file"))
        rec = wait(acme, spy)
        out = acme.get(f"/v1/jobs/{spy}/logs").text
        lab.post(f"/v1/jobs/{victim}/cancel")
    assert rec["state"] == "succeeded" and "for f in" in out  # it saw itself
    assert "lab-key-5d1" not in out and "trap" not in out and "sqlite" not in out  # others', root's, the server's
    assert "lab-file" not in out and "lab-shm" not in out
    assert not os.path.exists("/tmp/acme-file") and not os.path.exists("/tmp/lab-file")  # the host's are untouched


def test_a_job_past_its_memory_fails_saying_so_and_its_neighbour_runs_on(server):
    """Limits the kernel enforces: a job that allocates past `resources.memory` is killed by its cgroup and
    fails naming the limit; another tenant's job at the same time succeeds."""
    srv, _ = server
    hog_spec = job("hog", "head -c 800M /dev/zero | tail").replace("910b:1}", "910b:1, memory: 256Mi}")
    with srv.client("acme") as acme, srv.client("lab") as lab:
        hog = submit(acme, hog_spec)
        calm = submit(lab, job("calm", "sleep 1; echo fine", tenant="lab"))
        rec = wait(acme, hog)
        assert wait(lab, calm)["state"] == "succeeded"
    assert rec["state"] == "failed" and "out of memory" in rec["reason"] and "0.25 GiB" in rec["reason"], rec


def test_a_tiny_share_cannot_hold_a_nodes_cpus_for_free(server):
    """#7: `910b:0.001` with a node's 128 CPUs and 1000 GiB was billed ¥0.0000449 for 20 s, a CPU-only job on
    the same CPUs ¥0.3139 — the scheduler reserved the CPUs, billing counted none for a job asking a device.
    Now each pays for the node fraction it holds: the same per hour."""
    from zhisuan.metering.invoice import local_month

    srv, _ = server
    grab = ("name: grab\ntenant: acme\nresources: {accelerators: '910b:0.001', cpus: 128, memory: 1000Gi}\n"
            "constraints: {regions: [west]}\nrun: sleep 3\n")
    cpus = "name: cpus\ntenant: acme\nresources: {accelerators: none, cpus: 128}\nconstraints: {regions: [west]}\n" \
           "run: sleep 3\n"
    with srv.client("acme") as acme:
        ids = {submit(acme, grab): "grab", submit(acme, cpus): "cpus"}
        for job_id in ids:
            assert wait(acme, job_id)["state"] == "succeeded"
        bill = acme.get(f"/v1/invoices/acme/{local_month(time.time())}").json()
    lines = {ids[x["job_id"]]: x for x in bill["lines"] if x["job_id"] in ids}
    assert lines["grab"]["centers"] == lines["cpus"]["centers"] == "qingyang/910b", lines
    per_hour = {"grab": lines["grab"]["cny"] / (lines["grab"]["allocated_device_hours"] / 0.001),
                "cpus": lines["cpus"]["cny"] / (lines["cpus"]["cpu_hours"] / 128)}
    assert per_hour["grab"] == pytest.approx(per_hour["cpus"], rel=0.01), per_hour  # was ~8,000x less


def test_a_second_server_does_not_hand_out_the_uid_a_first_ones_job_just_had(server, tmp_path_factory):
    """#6: a second server (or a new --runs) gave its first job uid 3,000,000 again, which another tenant's
    job had just held (and left a mode-600 file in /dev/shm under). Uids are handed out in turn machine-wide."""
    srv, _ = server
    other = tmp_path_factory.mktemp("second")
    other.chmod(0o711)
    second = ServerProcess(ROOT / "examples/networks/toy3.yaml", f"sqlite:///{other / 'z.db'}", other / "runs",
                           interval=0.2).start()
    try:
        with srv.client("acme") as acme, second.client("lab") as lab:
            first = submit(acme, job("first", "id -u"))
            wait(acme, first)
            then = submit(lab, job("then", "id -u", tenant="lab"))
            assert wait(lab, then)["state"] == "succeeded"
            uids = [acme.get(f"/v1/jobs/{first}/logs").text.strip(), lab.get(f"/v1/jobs/{then}/logs").text.strip()]
    finally:
        second.close()
    assert all(u.isdigit() and int(u) >= 3_000_000 for u in uids) and uids[0] != uids[1], uids


def test_a_shared_model_backend_is_metered_bounded_and_not_one_bad_request_from_down(tmp_path):
    """#5, #8, #9 against a real server with a shared backend (`--model-backend`): one tenant's malformed
    request is its own 400 (the backend used to drop it and be skipped for everyone); a prompt in OpenAI's
    list form, streamed with `include_usage: false`, is metered all the same; an anonymous /metrics scrape
    shows no tenant's series (a job on the host may read it), an admin's does."""
    import subprocess
    import sys

    import httpx

    from zhisuan.engines.rendezvous import free_port

    port = free_port()
    backend = subprocess.Popen([sys.executable, "-m", "zhisuan.gateway.backend", "--port", str(port), "--model",
                                "echo"])
    srv = ServerProcess(ROOT / "examples/networks/toy3.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs",
                        interval=0.2, extra=["--model-backend", f"echo=http://127.0.0.1:{port}"])
    try:
        end = time.time() + 20
        while time.time() < end:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        srv.start()
        with srv.client("acme") as acme, srv.client("lab") as lab, srv.client("admin") as admin:
            bad = acme.post("/v1/chat/completions", json={"model": "echo", "messages": True})
            assert bad.status_code == 400 and "messages" in bad.text
            ok = [lab.post("/v1/chat/completions", json={"model": "echo", "messages": [
                {"role": "user", "content": "hello"}]}).status_code for _ in range(5)]
            assert ok == [200] * 5  # the backend is still everyone's
            listed = {"model": "echo", "stream": True, "stream_options": {"include_usage": False},
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "four words of prompt"}]}]}
            with acme.stream("POST", "/v1/chat/completions", json=listed) as s:
                assert s.status_code == 200 and b"[DONE]" in b"".join(s.iter_bytes())
            anonymous = httpx.get(srv.url + "/metrics").text
            assert "acme" not in anonymous and "lab" not in anonymous
            end = time.time() + 10
            while time.time() < end:  # the gateway's counters, as an admin scrapes them
                scraped = admin.get("/metrics").text
                line = [x for x in scraped.splitlines() if x.startswith("zhisuan_gateway_tokens_total")
                        and 'kind="prompt"' in x and 'tenant="acme"' in x]
                if line:
                    break
                time.sleep(0.2)
            assert line and float(line[0].split()[-1]) >= 4, scraped  # its list-form prompt was counted
    finally:
        srv.close()
        backend.terminate()
        backend.wait(10)
