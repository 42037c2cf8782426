"""A model service deployed on two local centers: its replicas are jobs placed by the scheduler, started by
the engine (the repo's minimal OpenAI-compatible server, real processes), probed and routed to by the
gateway; a replica whose process dies is replaced and a client that retries once sees no failure."""

import asyncio
import contextlib
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.builders import live
from zhisuan.engines import LocalEngine
from zhisuan.engines.confine import shared_folder
from zhisuan.gateway import backend
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.proxy import Gateway
from zhisuan.gateway.replicas import Registry
from zhisuan.model import JobState, SpecError, parse_network
from zhisuan.store import Principal

CENTER = """  - {{name: {name}, region: {name}, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 1, price_per_device_hour: {price}}}]}}
"""
NETWORK = parse_network("name: two\ncenters:\n" + CENTER.format(name="east", price=10)
                        + CENTER.format(name="west", price=12))

def spec(script):
    return f"""name: chat
tenant: acme
kind: service
resources: {{accelerators: a100:1}}
service: {{model: echo, ready: /health, replicas: {{min: 2, max: 2}}}}
run: exec python3 {script} --port $PORT --model echo
"""


@pytest.fixture(scope="module")
def script():
    """The repo's backend where a replica's own uid can read it (jobs run unprivileged)."""
    folder = shared_folder("backend-")  # not in /tmp: a job's /tmp is its own
    path = folder / "backend.py"
    shutil.copy(backend.__file__, path)
    path.chmod(0o644)
    yield path
    shutil.rmtree(folder, ignore_errors=True)
ACME = Principal("acme", False)


@pytest.fixture
def deployed(tmp_path, script):
    _, loop, service = live(tmp_path, NETWORK)
    registry = Registry(feed=service.keeper.endpoints)
    svc = service.deploy(spec(script), ACME, time.time())
    yield service, loop, registry, svc
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())


def until_ready(service, loop, registry, n, limit=60.0):
    end = time.time() + limit
    while time.time() < end:
        loop.step(time.time())
        service.keeper.probe()
        ready = [r for r in registry.of("echo", "acme") if r.ready]
        if len(ready) >= n:
            return ready
        time.sleep(0.2)
    raise AssertionError(service.services(ACME))


def chat(registry, tenant="acme"):
    async def go():
        gateway = Gateway(registry)
        try:
            r = await gateway.forward(tenant, "/v1/chat/completions",
                                      b'{"model": "echo", "messages": [{"role": "user", "content": "hi there"}]}')
            return r.status_code, b"".join([chunk async for chunk in r.body_iterator])  # relayed as it is read
        except GatewayError as e:
            return e.status, e.message.encode()
        finally:
            await gateway.aclose()
    return asyncio.run(go())


def streamed(registry):
    async def go():
        gateway = Gateway(registry)
        try:
            r = await gateway.forward("acme", "/v1/chat/completions", b'{"model": "echo", "stream": true, '
                                      b'"messages": [{"role": "user", "content": "hi there"}]}')
            return b"".join([chunk async for chunk in r.body_iterator]).decode()
        finally:
            await gateway.aclose()
    return [e for e in asyncio.run(go()).split("\n\n") if e.strip()]


def test_a_service_runs_two_replicas_on_two_centers_and_the_gateway_routes_to_them(deployed):
    service, loop, registry, svc = deployed
    ready = until_ready(service, loop, registry, 2)
    assert {r.center for r in ready} == {"east", "west"}  # one device each: the scheduler spread them
    assert registry.choose("echo", time.time(), tenant="acme").center == "east"  # idle: the cheaper first
    listed = service.services(ACME)[0]
    assert listed["model"] == "echo" and len(listed["replicas"]) == 2 and len(listed["ready"]) == 2
    replicas = [service.store.get(j) for j in listed["replicas"]]
    assert all(r.state is JobState.RUNNING and r.spec.env["ZHISUAN_SERVICE"] == svc.id for r in replicas)
    status, body = chat(registry)
    assert status == 200 and b"hi there" in body
    assert chat(registry, tenant="lab")[0] == 404  # another tenant's service is not theirs to call
    direct = httpx.post(ready[0].url + "/v1/chat/completions", json={"model": "echo", "messages": []}, timeout=5)
    assert direct.status_code == 401  # a job that finds the replica's port cannot use it without its key
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            lines.append(cmdline.read_bytes())
    assert all(r.key and r.key.encode() not in b"\n".join(lines) for r in ready)  # its key: on no command line
    events = streamed(registry)
    assert events[-1] == "data: [DONE]" and sum('"content"' in e for e in events) == 2  # "hi", "there"


def test_a_dead_replica_is_replaced_and_a_client_that_retries_once_never_fails(deployed):
    service, loop, registry, svc = deployed
    until_ready(service, loop, registry, 2)
    victim = service.store.get(sorted(service.keeper.replicas[svc.id])[0])
    service.loop.fleet.of(victim.center).cancel(victim.engine_handle)  # its process dies (killed under it)
    failures = 0
    end = time.time() + 60
    while time.time() < end:
        loop.step(time.time())
        service.keeper.probe()
        status, _ = chat(registry)
        if status != 200:
            status, _ = chat(registry)  # one retry, as clients do
        failures += status != 200
        if service.store.get(victim.id).state.terminal and len([r for r in registry.of("echo") if r.ready]) == 2:
            break
        time.sleep(0.2)
    assert failures == 0
    assert service.store.get(victim.id).state is JobState.FAILED
    assert victim.id not in service.keeper.replicas[svc.id] and len(service.keeper.replicas[svc.id]) == 2


def test_a_stopped_service_cancels_its_replicas(deployed):
    service, loop, registry, svc = deployed
    until_ready(service, loop, registry, 1)
    replicas = sorted(service.keeper.replicas[svc.id])
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())
    assert all(service.store.get(j).state is JobState.CANCELLED for j in replicas)
    assert registry.of("echo") == []


def test_a_service_spec_goes_to_services_and_a_job_spec_to_jobs(deployed):
    service, *_ = deployed
    with pytest.raises(SpecError, match="POST /v1/services"):
        service.submit(spec("x.py"), ACME, time.time())
    with pytest.raises(SpecError, match="kind: service"):
        service.deploy("name: x\ntenant: acme\nresources: {accelerators: a100:1}\nrun: echo hi", ACME, time.time())


def test_deploy_call_and_stop_through_the_api(tmp_path, script):
    from fastapi.testclient import TestClient

    from zhisuan.api import create_app
    from zhisuan.metering.invoice import local_month
    from zhisuan.store import TokenStore

    store, loop, service = live(tmp_path, NETWORK)
    tokens = TokenStore(store.engine)
    auth = {"Authorization": f"Bearer {tokens.issue('acme', 0.0)}"}
    with TestClient(create_app(service, tokens, Gateway(Registry()))) as client:
        bad = client.post("/v1/services", content=spec(script).replace("min: 2, max: 2", "min: 3, max: 2"),
                          headers=auth)
        assert bad.status_code == 422 and "service.replicas" in bad.text
        assert client.get("/v1/services", headers=auth).json() == []  # nothing half-written
        r = client.post("/v1/services", content=spec(script), headers=auth)
        assert r.status_code == 201 and r.json()["model"] == "echo"
        sid = r.json()["id"]
        chat = {"model": "echo", "messages": [{"role": "user", "content": "through the api"}]}
        end = time.time() + 60
        while time.time() < end:
            loop.step(time.time())
            service.keeper.probe()
            answer = client.post("/v1/chat/completions", json=chat, headers=auth)
            if answer.status_code == 200:
                break
            assert answer.json()["error"]["code"] in ("no_replica_ready", "model_not_found")
            time.sleep(0.2)
        assert answer.status_code == 200 and "through the api" in answer.text
        assert client.get("/v1/models", headers=auth).json()["data"][0]["id"] == "echo"
        for _ in range(4):
            assert client.post("/v1/chat/completions", json=chat, headers=auth).status_code == 200
        bill = client.get(f"/v1/invoices/acme/{local_month(time.time())}", headers=auth).json()
        [line] = bill["services"]
        assert line["model"] == "echo" and line["replica_jobs"] == 2 and line["requests"] >= 5
        assert line["prompt_tokens"] >= 15 and line["completion_tokens"] >= 15 and line["counted_tokens"] == 0
        replica_cny = sum(x["cny"] for x in bill["lines"])  # the replicas are the tenant's only jobs
        assert line["cny"] == pytest.approx(replica_cny) and line["cny"] > 0
        served = line["prompt_tokens"] + line["completion_tokens"]
        assert line["cny_per_million_tokens"] == pytest.approx(line["cny"] / served * 1e6)
        assert line["kwh_per_1k_tokens"] > 0 and line["kg_co2_per_1k_tokens"] > 0
        assert client.delete(f"/v1/services/{sid}", headers=auth).json()["state"] == "stopped"
        loop.step(time.time())
        assert client.post("/v1/chat/completions", json=chat, headers=auth).status_code == 404


def test_a_service_scales_up_under_load_and_back_down_when_it_ends(tmp_path, script):
    store, loop, service = live(tmp_path, NETWORK)
    registry = Registry(feed=service.keeper.endpoints)
    service.keeper.load, service.keeper.window = registry.load, 2.0
    text = spec(script).replace("replicas: {min: 2, max: 2}}", "replicas: {min: 1, max: 2}, autoscale: "
                                "{inflight: 1, up_after: 1s, down_after: 3s}}").replace("--model echo",
                                                                                         "--model echo --delay 0.4")
    svc = service.deploy(text, ACME, time.time())
    until_ready(service, loop, registry, 1)
    stop = threading.Event()
    answered = []

    def clients():
        async def one():
            gateway = Gateway(registry)
            while not stop.is_set():
                try:
                    r = await gateway.forward("acme", "/v1/chat/completions",
                                              b'{"model": "echo", "messages": [{"role": "user", "content": "busy"}]}')
                    answered.append(r.status_code)
                except GatewayError as e:
                    answered.append(e.status)
            await gateway.aclose()

        async def many():
            await asyncio.gather(*(one() for _ in range(3)))

        asyncio.run(many())

    load = threading.Thread(target=clients)
    load.start()
    try:
        ready = until_ready(service, loop, registry, 2, limit=40)  # three requests in flight, one per replica wanted
    finally:
        stop.set()
        load.join()
    assert {r.center for r in ready} == {"east", "west"} and service.service_store.get(svc.id).desired == 2
    ready_ids = [r.id for r in ready]
    added = max(service.keeper.replicas[svc.id], key=lambda j: store.get(j).submitted_at)
    assert any("placed on" in t.reason for t in store.transitions(added))  # the scheduler placed it, as any job
    assert answered and set(answered) == {200}
    end = time.time() + 30
    while time.time() < end and len(service.keeper.replicas[svc.id]) > 1:
        loop.step(time.time())
        service.keeper.probe()
        time.sleep(0.2)
    assert len(service.keeper.replicas[svc.id]) == 1 and service.service_store.get(svc.id).desired == 1
    gone = [j for j in [*ready_ids] if j not in service.keeper.replicas[svc.id]]
    assert len(gone) == 1 and store.get(gone[0]).state is JobState.CANCELLED  # drained, then cancelled
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())


def test_another_process_on_a_replicas_port_is_not_taken_for_the_replica(deployed):
    """A job of another uid that grabs a dead replica's port must not receive the service's prompts."""
    from http.server import HTTPServer

    from zhisuan.gateway.backend import handler

    service, loop, registry, svc = deployed
    until_ready(service, loop, registry, 2)
    victim = service.store.get(sorted(service.keeper.replicas[svc.id])[0])
    if service.fleet.of(victim.center).uid_of(victim.engine_handle) is None:
        pytest.skip("runs are not isolated under uids of their own here (not root)")
    port = int(victim.spec.env["PORT"])
    service.loop.fleet.of(victim.center).cancel(victim.engine_handle)
    end = time.time() + 10
    impostor = None
    while impostor is None and time.time() < end:
        try:
            impostor = HTTPServer(("127.0.0.1", port), handler("echo", True))  # this test's uid, not the job's
        except OSError:
            time.sleep(0.1)
    assert impostor is not None
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        service.keeper.probe()
        assert service.keeper.ready[victim.id] is False
        assert all(r.id != victim.id for r in registry.of("echo") if r.ready)
    finally:
        impostor.shutdown()
        impostor.server_close()


def test_a_tenant_cannot_flood_the_keeper_with_services(deployed, monkeypatch):
    from zhisuan.control import service as service_module
    from zhisuan.control.errors import TooMany

    service, *_ = deployed
    monkeypatch.setattr(service_module, "MAX_SERVICES", 2)
    second = service.deploy(spec("x.py"), ACME, time.time())
    with pytest.raises(TooMany):
        service.deploy(spec("x.py"), ACME, time.time())
    service.stop_service(second.id, ACME, time.time())


def test_a_replicas_center_going_down_moves_it_and_a_client_that_retries_once_never_fails(tmp_path, script):
    from zhisuan.engines import EngineDown, Fleet

    class Crashable(LocalEngine):
        down = False

        def health(self):
            if self.down:
                raise EngineDown("east does not answer")

    net = parse_network("name: three\ncenters:\n" + "".join(
        CENTER.format(name=n, price=p) for n, p in (("east", 10), ("west", 12), ("south", 14))))
    engines = {"east": Crashable(tmp_path / "east", grace=0.5), "west": LocalEngine(tmp_path / "west", grace=0.5),
               "south": LocalEngine(tmp_path / "south", grace=0.5)}
    store, loop, service = live(tmp_path, net, Fleet(engines), health_every=0.0, misses=1)
    registry = Registry(feed=service.keeper.endpoints)
    svc = service.deploy(spec(script), ACME, time.time())
    try:
        ready = until_ready(service, loop, registry, 2)
        assert {r.center for r in ready} == {"east", "west"}  # the two cheapest
        moved = next(r.id for r in ready if r.center == "east")
        engines["east"].down = True  # the center goes down: its machines with it
        engines["east"].cancel(loop.links["east"].native(store.get(moved).engine_handle))
        failures, end = 0, time.time() + 60
        while time.time() < end:
            loop.step(time.time())
            service.keeper.probe()
            status, _ = chat(registry)
            if status != 200:
                status, _ = chat(registry)  # one retry, as clients do
            failures += status != 200
            rec = store.get(moved)
            if rec.center == "south" and len([r for r in registry.of("echo") if r.ready]) == 2:
                break
            time.sleep(0.2)
        assert failures == 0
        assert store.get(moved).center == "south" and "east" in loop.down  # the same replica, placed again
        assert {r.center for r in registry.of("echo") if r.ready} == {"west", "south"}
    finally:
        service.stop_service(svc.id, ACME, time.time())
        loop.step(time.time())
