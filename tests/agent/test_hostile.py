"""A hostile or broken agent against a real `zhisuan server`: it speaks for its own center only, its frames are
bounded and validated (a clear error naming the field, nothing applied), it cannot pose as another center or a
tenant, a flood of its events does not stall the server, and a revoked credential ends its connection."""

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from zhisuan.agent.protocol import VERSION
from zhisuan.bench.wanet import Wan

NETWORK = json.dumps({"name": "hostile", "tenants": [{"name": "acme"}], "centers": [
    {"name": name, "region": "west", "join": "agent", "pue": 1.2, "carbon_kg_per_kwh": 0.1,
     "pools": [{"name": "gpu", "accelerator": "a100", "nodes": 2, "devices_per_node": 8,
                "price_per_device_hour": price}]} for name, price in (("far", 5), ("other", 6))]})


@pytest.fixture
def server(tmp_path):
    wan = Wan(tmp_path, NETWORK, tls=False)
    try:
        yield wan.start()
    finally:
        wan.stop()


def socket(server, token):
    return connect(server.url.replace("http", "ws") + "/v1/agent", additional_headers={
        "Authorization": f"Bearer {token}"}, open_timeout=5, proxy=None)


def hello(center, version=VERSION, runs=()):
    return json.dumps({"t": "hello", "version": version, "center": center, "agent": "a" * 8, "runs": list(runs)})


def frame_of(ws, kind, limit=5.0):
    """The next frame of that kind the server sends (others — commands, beats' answers — passed over)."""
    end = time.time() + limit
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, end - time.time())))
        if frame["t"] == kind:
            return frame


def refused(ws):
    """The frame the server sends before it closes the connection."""
    frame = json.loads(ws.recv(timeout=5))
    assert frame["t"] == "refused", frame
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    return frame["reason"]


def test_credentials_are_for_one_center_and_nothing_else(server):
    far = server.token("center:far")
    assert server.client("acme").get("/v1/whoami").status_code == 200
    with server.client("acme") as c:
        assert c.get("/v1/jobs", headers={"Authorization": f"Bearer {far}"}).status_code == 401  # not a tenant
    with pytest.raises(InvalidStatus) as e:
        socket(server, server.token("acme"))  # a tenant's token does not join a center
    assert e.value.response.status_code == 403
    with socket(server, far) as ws:
        ws.send(hello("other"))  # far's credential, speaking for another center
        assert "far" in refused(ws)
    with socket(server, far) as ws:
        ws.send(hello("far", version="9.0"))
        reason = refused(ws)
        assert "9.0" in reason and VERSION in reason


@pytest.mark.parametrize("frame,field", [
    ({"t": "events", "items": [{"seq": 1, "run": {"handle": "j-1#1", "state": "running", "ran": -1}}]}, "ran"),
    ({"t": "beat", "n": 1, "load": [{"id": "x", "pool": "gpu", "nodes": [9], "devices_per_node": 8}]}, "load.0"),
    ({"t": "beat", "n": 1, "load": [{"id": "x", "pool": "h100", "nodes": [0], "devices_per_node": 8}]}, "pool"),
    ({"t": "hello", "version": VERSION, "center": "far", "agent": "again"}, "hello"),
])
def test_a_bad_frame_ends_the_connection_with_the_field_named(server, frame, field):
    with socket(server, server.token("center:far")) as ws:
        ws.send(hello("far"))
        assert json.loads(ws.recv(timeout=5))["t"] == "welcome"
        ws.send(json.dumps(frame))
        assert field in refused(ws)


def test_a_forged_report_of_another_centers_job_changes_nothing(server):
    acme = server.client("acme")
    job = acme.post("/v1/jobs", content="name: x\nresources: {accelerators: a100:8}\nrun: sleep 60\n").json()["id"]
    with socket(server, server.token("center:other")) as honest:
        honest.send(hello("other"))
        assert json.loads(honest.recv(timeout=5))["t"] == "welcome"
        end = time.time() + 15
        while time.time() < end and acme.get(f"/v1/jobs/{job}").json()["state"] != "scheduled":
            time.sleep(0.1)
        assert acme.get(f"/v1/jobs/{job}").json()["center"] == "other"  # the only center connected
        with socket(server, server.token("center:far")) as evil:
            evil.send(hello("far"))
            assert json.loads(evil.recv(timeout=5))["t"] == "welcome"
            forged = {"handle": f"{job}#1", "state": "succeeded", "exit_code": 0, "started_ago": 5, "ended_ago": 1,
                      "ran": 4}
            evil.send(json.dumps({"t": "events", "items": [{"seq": 1, "run": forged}]}))
            assert frame_of(evil, "ack") == {"t": "ack", "seq": 1}  # acknowledged, and ignored
            time.sleep(1.0)
            assert acme.get(f"/v1/jobs/{job}").json()["state"] == "scheduled"  # other's job is other's alone
        acme.post(f"/v1/jobs/{job}/cancel")


def test_a_flood_of_events_is_read_slowly_and_stalls_no_one(server):
    acme = server.client("acme")
    with socket(server, server.token("center:far")) as ws:
        ws.send(hello("far"))
        assert json.loads(ws.recv(timeout=5))["t"] == "welcome"
        junk = {"handle": "j-nothing#1", "state": "running"}
        batch = json.dumps({"t": "events", "items": [{"seq": k, "run": junk} for k in range(1, 2001)]})
        t0 = time.time()
        for _ in range(5):  # 10,000 events: five seconds' worth at the per-agent rate
            ws.send(batch)
        latency = []
        for _ in range(10):
            t = time.time()
            assert acme.get("/v1/whoami").status_code == 200
            latency.append(time.time() - t)
        acks = [frame_of(ws, "ack", 30) for _ in range(5)]
        assert acks[-1]["seq"] == 2000  # each batch applied once (the same seqs, resent, change nothing)
        assert time.time() - t0 >= 2.5  # read no faster than the bucket allows
        assert max(latency) < 1.0  # while the API answers everyone else


def test_a_revoked_credential_ends_the_connection(server):
    admin = server.client("admin")
    made = admin.post("/v1/center-tokens", json={"center": "far", "label": "to revoke"}).json()
    with socket(server, made["token"]) as ws:
        ws.send(hello("far"))
        assert json.loads(ws.recv(timeout=5))["t"] == "welcome"
        assert admin.delete(f"/v1/center-tokens/{made['id']}").status_code == 200
        end, reason = time.time() + 15, ""
        try:
            while time.time() < end and not reason:
                ws.send(json.dumps({"t": "beat", "n": 1}))
                try:
                    frame = json.loads(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                reason = frame["reason"] if frame["t"] == "refused" else ""
        except ConnectionClosed:
            pass
        assert "revoked" in reason
    with pytest.raises(InvalidStatus):
        socket(server, made["token"])  # and it cannot come back
