"""The REST API in-process: tokens, tenant isolation, problem+json naming the field, nothing stored on errors."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from tests.control.test_loop import NETWORK
from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.store import JobStore, TokenStore, connect, migrate

JOB = "name: hello\ntenant: acme\nresources: {accelerators: a100:1}\nconstraints: {time_limit: 60}\nrun: echo hi"


@pytest.fixture
def api(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    runner = LocalEngine(tmp_path / "runs", grace=0.5)
    loop = ControlLoop(store, NETWORK, runner)
    client = TestClient(create_app(Service(store, NETWORK, loop), tokens))
    keys = {"acme": tokens.issue("acme", 0.0), "lab": tokens.issue("lab", 0.0),
            "admin": tokens.issue("ops", 0.0, admin=True)}
    return client, keys, store, loop


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_submit_run_and_read_logs(api):
    client, keys, _, loop = api
    r = client.post("/v1/jobs", content=JOB, headers=auth(keys["acme"]))
    assert r.status_code == 201 and r.json()["state"] == "pending"
    job = r.json()["id"]
    for _ in range(100):
        loop.step(time.time())
        if client.get(f"/v1/jobs/{job}", headers=auth(keys["acme"])).json()["state"] == "succeeded":
            break
        time.sleep(0.05)
    assert client.get(f"/v1/jobs/{job}", headers=auth(keys["acme"])).json()["state"] == "succeeded"
    assert client.get(f"/v1/jobs/{job}/logs", headers=auth(keys["acme"])).text.strip() == "hi"


def test_bad_tokens_are_401_problem_json(api):
    client, keys, *_ = api
    for headers in ({}, auth("zs_forged"), {"Authorization": f"Basic {keys['acme']}"},
                    {"Authorization": keys["acme"]}, {"Authorization": "Bearer "}):
        r = client.get("/v1/jobs", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/jobs", headers={"Authorization": f"bearer  {keys['acme']}"}).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ("name: x\ntenant: acme\nresources: {accelerators: A1000:1}\nrun: x", "resources.accelerators.name"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:4}\nrun: x", "resources.accelerators"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1, cpus: 512}\nrun: x", "resources.cpus"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1, memory: 4Ti}\nrun: x", "resources.memory"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1, nodes: 2}\nrun: x", "resources.nodes"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1}\nconstraints: {max_price: 2}\nrun: x",
     "constraints.max_price"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1}\nconstraints: {regions: [mars]}\nrun: x",
     "constraints.regions"),
    ("name: x\ntenant: acme\nresources: {accelerators: a100:1}\n"
     "constraints: {time_limit: 2h, deadline: '2020-01-01T00:00:00+08:00'}\nrun: x", "constraints.deadline"),
    ("name: [x", ""),
])
def test_bad_specs_are_422_naming_the_field_and_store_nothing(api, body, field):
    client, keys, store, _ = api
    r = client.post("/v1/jobs", content=body, headers=auth(keys["acme"]))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert store.find() == []


def test_tenants_see_and_cancel_only_their_own_jobs(api):
    client, keys, store, _ = api
    job = client.post("/v1/jobs", content=JOB, headers=auth(keys["acme"])).json()["id"]
    assert client.get("/v1/jobs", headers=auth(keys["lab"])).json() == []
    assert client.get(f"/v1/jobs/{job}", headers=auth(keys["lab"])).status_code == 404
    assert client.post(f"/v1/jobs/{job}/cancel", headers=auth(keys["lab"])).status_code == 404
    assert client.post("/v1/jobs", content=JOB, headers=auth(keys["lab"])).status_code == 403  # spec names acme
    assert [j["id"] for j in client.get("/v1/jobs", headers=auth(keys["admin"])).json()] == [job]
    r = client.post(f"/v1/jobs/{job}/cancel", headers=auth(keys["acme"]))
    assert r.json()["state"] == "cancelled" and len(store.find()) == 1


def test_quote_ranks_without_submitting(api):
    client, keys, store, _ = api
    r = client.post("/v1/quote", content=JOB, headers=auth(keys["acme"]))
    assert r.status_code == 200 and r.json()["candidates"][0]["center"] == "here"
    assert r.json()["candidates"][0]["expected_start_s"] == 0 and store.find() == []
    best = r.json()["candidates"][0]
    assert sum(p["contribution"] for p in best["parts"]) == pytest.approx(best["score"], abs=0.05)
    assert {p["score"] for p in best["parts"]} >= {"start", "price", "carbon"} and r.json()["margin"]


def test_openapi_is_served_and_names_the_bearer_token_where_it_is_asked(api):
    client, *_ = api
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
    asked = [{"HTTPBearer": []}]
    assert schema["paths"]["/v1/jobs"]["post"]["security"] == asked
    assert schema["paths"]["/v1/jobs/{job_id}/cancel"]["post"]["security"] == asked
    assert schema["paths"]["/v1/whoami"]["get"]["security"] == asked
    # every route in the schema asks who calls but signing out and single sign-on, whose credential is the
    # provider's word (the dashboard, /metrics and the agents' socket are not in it)
    assert {(p, m) for p, ops in schema["paths"].items() for m, op in ops.items() if "security" not in op} == {
        ("/v1/session", "delete"), ("/v1/sso", "get"), ("/v1/sso/login", "get"), ("/v1/sso/callback", "get"),
        ("/v1/sso/exchange", "post")}


def test_centers_show_free_devices_and_tenants_are_scoped(api):
    client, keys, _, loop = api
    client.post("/v1/jobs", content=JOB.replace("echo hi", "sleep 1"), headers=auth(keys["acme"]))
    loop.step(time.time())
    pool = client.get("/v1/centers", headers=auth(keys["lab"])).json()[0]["pools"][0]
    assert (pool["devices"], pool["free"], pool["stack"]) == (2, 1, "cuda")
    assert client.get("/v1/tenants", headers=auth(keys["lab"])).json() == []  # the toy network names no tenants


def run_to(client, loop, key, job, state):
    for _ in range(200):
        loop.step(time.time())
        if client.get(f"/v1/jobs/{job}", headers=auth(key)).json()["state"] == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"{job} never became {state}")


def test_usage_reports_become_busy_time_on_the_invoice(api):
    from zhisuan.metering.invoice import local_month

    client, keys, _, loop = api
    spec = JOB.replace("echo hi", "sleep 1.5")
    reported = client.post("/v1/jobs", content=spec, headers=auth(keys["acme"])).json()["id"]
    silent = client.post("/v1/jobs", content=spec.replace("hello", "quiet"), headers=auth(keys["acme"])).json()["id"]
    run_to(client, loop, keys["acme"], reported, "running")
    r = client.post(f"/v1/jobs/{reported}/usage", json={"busy_fraction": 0.75, "peak_memory_gib": 12},
                    headers=auth(keys["acme"]))
    assert r.status_code == 202
    bad = client.post(f"/v1/jobs/{reported}/usage", json={"busy_fraction": 1.5}, headers=auth(keys["acme"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "busy_fraction"
    assert client.post(f"/v1/jobs/{reported}/usage", json={"busy_fraction": 0.5},
                       headers=auth(keys["lab"])).status_code == 404  # not lab's job
    run_to(client, loop, keys["acme"], reported, "succeeded")
    run_to(client, loop, keys["acme"], silent, "succeeded")
    late = client.post(f"/v1/jobs/{reported}/usage", json={"busy_fraction": 0.5}, headers=auth(keys["acme"]))
    assert late.status_code == 409
    month = local_month(time.time())
    inv = client.get(f"/v1/invoices/acme/{month}", headers=auth(keys["acme"])).json()
    lines = {x["job_id"]: x for x in inv["lines"]}
    assert lines[reported]["busy_device_hours"] > 0 and lines[silent]["busy_device_hours"] is None
    b = lines[reported]
    assert b["busy_device_hours"] == pytest.approx(0.75 * b["measured_device_hours"])
    assert inv["totals"]["cny"] == pytest.approx(sum(x["cny"] for x in inv["lines"]))
    assert client.get(f"/v1/invoices/acme/{month}", headers=auth(keys["lab"])).status_code == 403
    assert client.get("/v1/invoices/acme/2026-13", headers=auth(keys["acme"])).json()["errors"][0]["field"] == "month"
    csv_text = client.get(f"/v1/invoices/acme/{month}.csv", headers=auth(keys["acme"])).text
    assert "unmeasured" in csv_text and reported in csv_text
    rep = client.get("/v1/reports/utilization", params={"bucket": 600}, headers=auth(keys["lab"])).json()
    assert sum(r["allocated_device_hours"] for r in rep["rows"]) > 0 and "acme" not in rep["tenants"]
    admin = client.get("/v1/reports/utilization", headers=auth(keys["admin"])).json()
    assert admin["tenants"]["acme"]["busy_device_hours"] == pytest.approx(b["busy_device_hours"])


def test_metrics_follow_prometheus_conventions(api):
    from prometheus_client.parser import text_string_to_metric_families

    client, keys, _, loop = api
    job = client.post("/v1/jobs", content=JOB.replace("echo hi", "sleep 1"), headers=auth(keys["acme"])).json()["id"]
    waiting = client.post("/v1/jobs", content=JOB.replace("a100:1", "a100:2").replace("hello", "later"),
                          headers=auth(keys["acme"])).json()["id"]
    run_to(client, loop, keys["acme"], job, "running")
    client.post(f"/v1/jobs/{job}/usage", json={"busy_fraction": 0.5}, headers=auth(keys["acme"]))

    def scrape():
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(r.text) for s in fam.samples}

    m = scrape()
    here = (("center", "here"), ("chip", "A100 SXM4 80GB"))
    assert m[("zhisuan_devices", here)] == 2 and m[("zhisuan_devices_allocated", here)] == 1
    assert m[("zhisuan_devices_busy", here)] == 0.5
    assert m[("zhisuan_queue_depth", (("center", "here"),))] == 1  # `later` waits for both devices
    assert m[("zhisuan_jobs", (("state", "running"),))] == 1
    assert m[("zhisuan_center_up", (("center", "here"), ("engine", "local")))] == 1
    assert m[("zhisuan_scheduler_cycle_duration_seconds_count", ())] >= 1
    run_to(client, loop, keys["acme"], waiting, "succeeded")
    m = scrape()
    assert m[("zhisuan_energy_kwh_total", (("center", "here"),))] > 0
    assert m[("zhisuan_billed_cny_total", (("center", "here"),))] > 0


def test_whoami_names_the_tokens_tenant(api):
    client, keys, *_ = api
    assert client.get("/v1/whoami", headers=auth(keys["lab"])).json() == {"tenant": "lab", "admin": False,
                                                                          "role": "member", "org": "", "centers": [],
                                                                          "timezone": "Asia/Shanghai"}
    assert client.get("/v1/whoami", headers=auth(keys["admin"])).json()["role"] == "admin"


def test_requests_are_bounded(api):
    client, keys, store, _ = api
    acme = auth(keys["acme"])
    big = client.post("/v1/jobs", content=JOB + "\n#" + "x" * (2 * 1024 * 1024), headers=acme)
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    for query, field in [("since=nan", "since"), ("bucket=inf", "bucket"),
                         ("since=0&until=1e308&bucket=1e300", "until"), ("since=0&until=86400&bucket=1", "bucket")]:
        r = client.get(f"/v1/reports/utilization?{query}", headers=acme)
        assert r.status_code == 422 and field in [e["field"] for e in r.json()["errors"]], (query, r.text)
    job = client.post("/v1/jobs", content=JOB, headers=acme).json()["id"]
    r = client.post(f"/v1/jobs/{job}/usage", content='{"busy_fraction": 0.5, "watts": Infinity}', headers=acme)
    assert r.status_code == 422
    assert store.find() and len(store.find()) == 1  # nothing of the refused requests was stored


def test_job_lists_come_newest_first_in_pages(api):
    client, keys, _, _ = api
    acme = auth(keys["acme"])
    ids = [client.post("/v1/jobs", content=JOB.replace("hello", f"j{i}"), headers=acme).json()["id"] for i in range(5)]
    first = client.get("/v1/jobs?limit=2", headers=acme)
    assert [j["id"] for j in first.json()] == ids[:-3:-1]
    second = client.get(f"/v1/jobs?limit=2&before={first.headers['x-next-before']}", headers=acme)
    assert [j["id"] for j in second.json()] == ids[2:0:-1]
    assert [j["id"] for j in client.get("/v1/jobs?state=pending&limit=10", headers=acme).json()] == ids[::-1]
    assert client.get("/v1/jobs?limit=100000", headers=acme).status_code == 422


def test_a_tenant_holds_a_bounded_number_of_log_streams(api):
    import asyncio

    from zhisuan.control.errors import TooMany
    from zhisuan.control.service import MAX_FOLLOWS
    from zhisuan.store import Principal

    client, keys, _, _ = api
    job = client.post("/v1/jobs", content=JOB, headers=auth(keys["acme"])).json()["id"]
    service = client.app.state.service
    acme = Principal("acme", False)

    async def hold_streams():
        streams = [service.follow_logs(job, acme, poll=0.01) for _ in range(MAX_FOLLOWS)]
        tasks = [asyncio.ensure_future(s.__anext__()) for s in streams]  # each streams (the job is pending)
        await asyncio.sleep(0.05)
        with pytest.raises(TooMany):
            service.follow_logs(job, acme)
        assert service.follow_logs(job, Principal("lab", True)) is not None  # another tenant is not held back
        for t, s in zip(tasks, streams, strict=True):
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)
            await s.aclose()
        service.follow_logs(job, acme)  # closed streams count no more

    asyncio.run(hold_streams())


def test_a_followed_log_waits_out_a_center_that_cannot_answer_yet(api):
    """A start still on its way to the center's agent (or a center out of reach) is asked again at the next
    poll: the stream goes on and loses no line (it used to end the response mid-body)."""
    import asyncio
    import threading

    from zhisuan.store import Principal

    client, keys, store, loop = api
    spec = JOB.replace("echo hi", "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    job = client.post("/v1/jobs", content=spec, headers=auth(keys["acme"])).json()["id"]
    service = client.app.state.service
    for _ in range(200):
        if store.get(job).state.value == "running":
            break
        loop.step(time.time())
        time.sleep(0.02)
    link = service._engine(store.get(job))
    answer, refusals = link.log_delta, []

    def not_yet(handle, offsets):
        if len(refusals) < 3:
            refusals.append(handle)
            raise OSError(f"far holds no run {handle}")
        return answer(handle, offsets)

    link.log_delta = not_yet
    done = threading.Event()

    def steps():
        while not done.is_set():
            loop.step(time.time())
            time.sleep(0.05)

    async def follow():
        return "".join([c async for c in service.follow_logs(job, Principal("acme", False), poll=0.05)])

    stepper = threading.Thread(target=steps)
    stepper.start()
    try:
        text = asyncio.run(follow())
    finally:
        done.set()
        stepper.join()
    assert len(refusals) == 3 and text.splitlines() == ["line 1", "line 2", "line 3"], text


def test_a_locked_store_answers_503_and_keeps_nothing_half_written(tmp_path):
    import sqlite3

    engine = connect(f"sqlite:///{tmp_path / 'z.db'}", busy_ms=100)
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    runner = LocalEngine(tmp_path / "runs", grace=0.5)
    client = TestClient(create_app(Service(store, NETWORK, ControlLoop(store, NETWORK, runner)), tokens))
    key = tokens.issue("acme", 0.0)
    lock = sqlite3.connect(tmp_path / "z.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        r = client.post("/v1/jobs", content=JOB, headers=auth(key))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.headers["content-type"] == "application/problem+json"
    finally:
        lock.execute("ROLLBACK")
    assert store.find() == []
    assert client.post("/v1/jobs", content=JOB, headers=auth(key)).status_code == 201


def test_tokens_are_made_listed_and_revoked_by_an_admin_and_changes_name_who_asked(api):
    client, keys, store, _ = api
    admin, acme = auth(keys["admin"]), auth(keys["acme"])
    assert client.post("/v1/tokens", json={"tenant": "acme"}, headers=acme).status_code == 403
    made = client.post("/v1/tokens", json={"tenant": "acme", "label": "ci", "expires_in": 3600}, headers=admin).json()
    new = auth(made["token"])
    assert client.get("/v1/whoami", headers=new).json()["tenant"] == "acme"
    listed = {t["id"]: t for t in client.get("/v1/tokens", headers=admin).json()}
    assert listed[made["id"]]["label"] == "ci" and "token" not in listed[made["id"]]
    job = client.post("/v1/jobs", content=JOB, headers={**new, "Idempotency-Key": "k1"}).json()["id"]
    again = client.post("/v1/jobs", content=JOB, headers={**new, "Idempotency-Key": "k1"}).json()["id"]
    assert again == job and len(store.find()) == 1  # a retried submit is the same job
    assert client.delete(f"/v1/tokens/{made['id']}", headers=admin).json()["revoked_at"] is not None
    time.sleep(1.1)  # a cached answer is at most a second old
    assert client.get("/v1/whoami", headers=new).status_code == 401
    client.post(f"/v1/jobs/{job}/cancel", headers=admin)
    history = client.get(f"/v1/jobs/{job}", headers=admin).json()["history"]
    assert [h["by"] for h in history] == ["acme", "admin ops"]  # the audit trail, for admins
    assert "by" not in client.get(f"/v1/jobs/{job}", headers=acme).json()["history"][0]
    assert client.delete("/v1/tokens/ffffffffffff", headers=admin).status_code == 404


def test_an_expired_token_is_refused(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    tokens = TokenStore(engine)
    token = tokens.issue("acme", 0.0, expires_at=100.0)
    assert tokens.principal(token, now=50.0) is not None
    assert tokens.principal(token, now=150.0) is None


def test_the_audit_trail_names_who_did_what_from_where_and_only_admins_read_it(api):
    client, keys, _, _ = api
    admin, acme = auth(keys["admin"]), auth(keys["acme"])
    made = client.post("/v1/tokens", json={"tenant": "lab", "label": "ci"}, headers=admin).json()
    client.delete(f"/v1/tokens/{made['id']}", headers=admin)
    assert client.post("/v1/session", headers=acme).status_code == 204
    assert client.post("/v1/session", headers=acme).status_code == 204  # a reload: the same sign-in, recorded once
    job = client.post("/v1/jobs", content=JOB, headers=acme).json()["id"]
    client.post(f"/v1/jobs/{job}/cancel", headers=acme)
    assert client.get("/v1/audit", headers=acme).status_code == 403
    events = client.get("/v1/audit", headers=admin).json()
    mine = [(e["action"], e["actor"], e["subject"]) for e in events]
    assert mine[:3] == [("token.create", "admin ops", made["id"]), ("token.revoke", "admin ops", made["id"]),
                        ("sign-in", "acme", "acme")]
    assert ("job.pending", "acme", job) in mine and ("job.cancelled", "acme", job) in mine
    assert {e["origin"] for e in events} == {"testclient"}  # job actions too: from where each was asked
    lines = client.get("/v1/audit", params={"format": "jsonl", "action": "sign-in"}, headers=admin)
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(x)["actor"] for x in lines.text.splitlines()] == ["acme"]
    for bad in [{"limit": 0}, {"limit": 10**9}, {"since": "soon"}, {"since": "nan"}, {"format": "xml"},
                {"actor": "x" * 81}]:
        r = client.get("/v1/audit", params=bad, headers=admin)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"].endswith(next(iter(bad))), r.json()
