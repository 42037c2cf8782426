"""The gateway in front of real HTTP backends (the repo's minimal OpenAI-compatible one, run as processes):
routing by least outstanding requests, streams relayed chunk by chunk, retry on another replica when one
cannot answer, OpenAI-shaped errors, tokens metered per tenant and model."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.control.test_loop import NETWORK
from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.engines.rendezvous import free_port
from zhisuan.gateway.proxy import Gateway
from zhisuan.gateway.replicas import Registry, Replica
from zhisuan.store import JobStore, TokenStore, connect, migrate


def start_backend(model, *extra):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "zhisuan.gateway.backend", "--port", str(port), "--model", model,
                             *extra])
    url = f"http://127.0.0.1:{port}"
    end = time.time() + 20
    while time.time() < end:
        try:
            if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("backend did not start")


@pytest.fixture(scope="module")
def backends():
    started = [start_backend("echo"), start_backend("echo"), start_backend("quiet", "--no-stream-usage")]
    yield [url for _, url in started]
    for proc, _ in started:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def gw(tmp_path, backends):
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    registry = Registry()
    registry.add(Replica("echo-1", "echo", backends[0], rank=(1.0, 0.0)))
    registry.add(Replica("echo-2", "echo", backends[1], rank=(2.0, 0.0)))
    registry.add(Replica("quiet-1", "quiet", backends[2]))
    gateway = Gateway(registry)
    app = create_app(Service(store, NETWORK, ControlLoop(store, NETWORK, LocalEngine(tmp_path / "r"))), tokens, gateway)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {tokens.issue('acme', 0.0)}"}, gateway


CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hello there general kenobi"}]}


def test_models_and_a_chat_completion_with_its_usage_metered(gw):
    client, auth, gateway = gw
    assert [m["id"] for m in client.get("/v1/models", headers=auth).json()["data"]] == ["echo", "quiet"]
    r = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hello there general kenobi"
    served = gateway.meter.served[("acme", "echo")]
    assert (served.requests, served.prompt_tokens, served.completion_tokens, served.counted_tokens) == (1, 4, 4, 0)
    scrape = client.get("/metrics").text  # anonymous (a job on the host may read it): no tenant's own series
    assert 'zhisuan_gateway_tokens_total{kind="completion",model="echo"} 4.0' in scrape and "acme" not in scrape
    assert "acme" not in client.get("/metrics", headers=auth).text  # nor for a tenant's token
    tokens = TokenStore(client.app.state.service.store.engine)
    admin = {"Authorization": f"Bearer {tokens.issue('ops', 0.0, admin=True)}"}
    by_tenant = client.get("/metrics", headers=admin).text
    assert 'zhisuan_gateway_tokens_total{kind="completion",model="echo",tenant="acme"} 4.0' in by_tenant
    assert 'zhisuan_gateway_replicas{model="echo",state="ready"} 2.0' in scrape
    assert 'zhisuan_gateway_first_byte_seconds_count{model="echo"} 1.0' in scrape
    emb = client.post("/v1/embeddings", json={"model": "echo", "input": "two words"}, headers=auth)
    assert emb.status_code == 200 and emb.json()["data"][0]["embedding"]
    done = client.post("/v1/completions", json={"model": "echo", "prompt": "a b c"}, headers=auth)
    assert done.json()["choices"][0]["text"] == "a b c"


def test_a_stream_is_relayed_chunk_by_chunk_and_its_tokens_counted(gw):
    client, auth, gateway = gw
    with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in r.iter_text() for e in e.split("\n\n") if e.strip()]
    contents = [json.loads(e[5:])["choices"][0]["delta"]["content"] for e in events
                if e.startswith("data: {") and json.loads(e[5:])["choices"]]
    assert "".join(contents).split() == ["hello", "there", "general", "kenobi"] and events[-1] == "data: [DONE]"
    assert gateway.meter.served[("acme", "echo")].completion_tokens == 4  # the backend's own usage chunk
    with client.stream("POST", "/v1/chat/completions", json={**CHAT, "model": "quiet", "stream": True},
                       headers=auth) as r:
        r.read()
    quiet = gateway.meter.served[("acme", "quiet")]
    assert quiet.completion_tokens == 4 and quiet.counted_tokens > 0  # no usage in that stream: counted here
    before = gateway.meter.served[("acme", "echo")].counted_tokens
    off = {**CHAT, "stream": True, "stream_options": {"include_usage": False}}  # a caller that says no to usage
    with client.stream("POST", "/v1/chat/completions", json=off, headers=auth) as r:
        r.read()
    echo = gateway.meter.served[("acme", "echo")]
    assert echo.completion_tokens == 8 and echo.counted_tokens == before  # the backend's usage, asked anyway


def test_a_replica_that_cannot_answer_is_passed_over(gw):
    client, auth, gateway = gw
    gateway.registry.add(Replica("echo-dead", "echo", f"http://127.0.0.1:{free_port()}", rank=(0.0, 0.0)))  # first
    for _ in range(3):
        r = client.post("/v1/chat/completions", json=CHAT, headers=auth)
        assert r.status_code == 200
    dead = gateway.registry.replicas["echo-dead"]
    assert dead.served == 0 and dead.inflight == 0 and dead.failed_at > 0


def test_openai_shaped_errors(gw):
    client, auth, gateway = gw
    for k in range(50):  # made-up model names are refused and leave no trace in the meter
        r = client.post("/v1/chat/completions", json={**CHAT, "model": f"gpt-{k}"}, headers=auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert all(model in ("echo", "quiet") for _, model in gateway.meter.served)
    r = client.post("/v1/chat/completions", content=b"{not json", headers=auth)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"messages": []}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = client.post("/v1/chat/completions", content=b"{" + b" " * (2 << 20) + b"}", headers=auth)
    assert r.status_code == 413
    deep = b'{"model": "echo", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"  # under 1 MiB
    r = client.post("/v1/chat/completions", content=deep, headers=auth)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]  # not a 500
    for rep in gateway.registry.of("echo"):
        rep.ready = False
    r = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_replica_ready"


def test_least_outstanding_requests_spreads_concurrent_requests(gw):
    client, auth, gateway = gw
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code,
                              range(40)))
    assert codes == [200] * 40
    served = {r.id: r.served for r in gateway.registry.of("echo")}
    assert sum(served.values()) == 40 and min(served.values()) > 0, served
    assert all(r.inflight == 0 for r in gateway.registry.of("echo"))


def test_a_caller_in_a_region_gets_its_replicas_first_then_the_cheaper_then_the_greener(gw):
    client, auth, gateway = gw
    gateway.registry.replicas["echo-1"].region = "east"
    gateway.registry.replicas["echo-2"].region = "west"
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 200
    assert gateway.registry.replicas["echo-1"].served == 1  # no region said: the cheaper
    west = {**auth, "X-Zhisuan-Region": "west"}
    assert client.post("/v1/chat/completions", json=CHAT, headers=west).status_code == 200
    assert gateway.registry.replicas["echo-2"].served == 1  # dearer, but in the caller's region
    nowhere = {**auth, "X-Zhisuan-Region": "x" * 10_000}  # bounded, and matching no replica changes nothing
    assert client.post("/v1/chat/completions", json=CHAT, headers=nowhere).status_code == 200
    assert gateway.registry.replicas["echo-1"].served == 2
    gateway.registry.replicas["echo-2"].rank = (1.0, 0.1)  # same price, greener than echo-1's (1.0, 0.5)
    gateway.registry.replicas["echo-1"].rank = (1.0, 0.5)
    assert gateway.registry.choose("echo", time.time()).id == "echo-2"


def test_a_tenant_holds_at_most_its_share_of_requests_and_an_abandoned_stream_gives_its_slot_back(gw, monkeypatch):
    import asyncio
    import gc

    from zhisuan.gateway import proxy
    from zhisuan.gateway.errors import GatewayError

    _, _, gateway = gw
    monkeypatch.setattr(proxy, "MAX_TENANT_INFLIGHT", 2)
    body = json.dumps({**CHAT, "stream": True}).encode()

    async def go():
        gw2 = Gateway(gateway.registry)
        try:
            held = [await gw2.forward("acme", "/v1/chat/completions", body) for _ in range(2)]  # never read
            with pytest.raises(GatewayError) as refused:
                await gw2.forward("acme", "/v1/chat/completions", body)
            other = await gw2.forward("lab", "/v1/chat/completions", json.dumps(CHAT).encode())
            assert other.status_code == 200  # another tenant is not held up
            assert gw2.inflight == {"acme": 2, "lab": 1}  # a whole answer too holds its slot until handed over
            del held, other  # the clients left before their answers started: nothing will iterate them
            gc.collect()
            await asyncio.sleep(0.05)  # the upstream connections are closed by then
            assert gw2.inflight == {} and all(r.inflight == 0 for r in gateway.registry.of("echo"))
            again = await gw2.forward("acme", "/v1/chat/completions", body)
            chunks = b"".join([c async for c in again.body_iterator])
            assert chunks.rstrip().endswith(b"data: [DONE]") and gw2.inflight == {} and not gw2._closing
            return refused.value
        finally:
            await gw2.aclose()

    refused = asyncio.run(go())
    assert refused.status == 429 and refused.code == "rate_limit_exceeded"


def test_a_tenants_whole_answers_being_read_are_bounded_in_memory(gw, monkeypatch):
    from zhisuan.gateway import proxy

    client, auth, gateway = gw
    monkeypatch.setattr(proxy, "MAX_BUFFERED", 100)  # a chat answer here is a few hundred bytes
    r = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert r.status_code == 502 and r.json()["error"]["code"] == "answer_too_large"
    assert gateway.buffered == {} and all(x.inflight == 0 for x in gateway.registry.of("echo"))


def test_a_client_that_leaves_while_the_replica_answers_leaves_no_count_behind():
    import asyncio

    proc, url = start_backend("slow", "--delay", "2")
    try:
        registry = Registry()
        registry.add(Replica("slow-1", "slow", url))

        async def go():
            gateway = Gateway(registry)
            body = json.dumps({**CHAT, "model": "slow"}).encode()
            task = asyncio.create_task(gateway.forward("acme", "/v1/chat/completions", body))
            await asyncio.sleep(0.3)
            assert gateway.inflight == {"acme": 1} and registry.replicas["slow-1"].inflight == 1
            task.cancel()  # what the server does when the client disconnects
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.05)
            assert gateway.inflight == {} and registry.replicas["slow-1"].inflight == 0 and not gateway._closing
            await gateway.aclose()

        asyncio.run(go())
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_replicas_answer_nested_too_deep_to_parse_is_relayed_with_its_tokens_counted():
    import asyncio

    import httpx as hx

    deep = b'{"usage": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"

    async def go():
        upstream = hx.AsyncClient(transport=hx.MockTransport(
            lambda request: hx.Response(200, stream=hx.ByteStream(deep))))
        registry = Registry()
        registry.add(Replica("odd-1", "odd", "http://replica"))
        gateway = Gateway(registry, client=upstream)
        try:
            body = json.dumps({**CHAT, "model": "odd"}).encode()
            answer = await gateway.forward("acme", "/v1/chat/completions", body)
            relayed = b"".join([c async for c in answer.body_iterator])
            return answer.status_code, relayed, gateway.meter.served[("acme", "odd")]
        finally:
            await gateway.aclose()

    status, body, served = asyncio.run(go())
    assert status == 200 and body == deep and served.counted_tokens > 0  # estimated, kept apart


def test_what_a_replaced_replica_served_stays_its_services():
    """The services list summed the tokens of the replicas it has now: a replaced replica took its count along
    and a service that had served thousands showed 0."""
    from zhisuan.control.keeper import Endpoint

    published = [(1, [Endpoint("j-a", "s-1", "acme", "m", "http://127.0.0.1:1", "c", True, False, (0.0, 0.0), "",
                                "k", None)])]
    registry = Registry(feed=lambda: published[-1])
    registry.load()
    registry.replicas["j-a"].tokens = 1200
    published.append((2, [Endpoint("j-b", "s-1", "acme", "m", "http://127.0.0.1:2", "c", True, False, (0.0, 0.0),
                                   "", "k", None)]))
    assert registry.load() == {"j-b": (0, 0)}
    assert registry.retired_tokens("s-1") == 1200 and registry.retired_tokens("s-2") == 0


def test_one_tenants_bad_requests_do_not_take_a_shared_backend_from_the_others():
    """A request that made a shared backend (`--model-backend`) drop the connection marked it failed for
    every tenant for 5 s (another tenant got 503 on 22 of 31 requests). Now a malformed body is refused
    at the gateway, and a backend that drops one tenant's requests is passed over for that tenant only,
    until a second tenant's requests fail there too."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from zhisuan.gateway.errors import GatewayError

    class Touchy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if b"boom" in body:  # as a backend whose parser crashes: the connection dropped, no answer
                self.close_connection = True
                self.connection.shutdown(2)
                return
            out = json.dumps({"choices": [{"message": {"content": "ok"}}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Touchy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry = Registry()
    registry.add(Replica("shared", "m", f"http://127.0.0.1:{server.server_address[1]}"))
    gateway = Gateway(registry)

    async def ask(tenant, content="hi", messages=None):
        body = {"model": "m", "messages": messages or [{"role": "user", "content": content}]}
        try:
            return (await gateway.forward(tenant, "/v1/chat/completions", json.dumps(body).encode())).status_code
        except GatewayError as e:
            return e.status

    async def scenario():
        try:
            assert await ask("acme", messages=True) == 400  # malformed: refused here, the backend never sees it
            assert registry.replicas["shared"].failed_for == {}
            assert await ask("acme", content="boom") == 503
            assert [await ask("lab") for _ in range(5)] == [200] * 5  # another tenant is not held back
            assert await ask("acme") == 503  # the caller's own back-off
            assert await ask("lab", content="boom") == 503  # a second tenant fails there too: the backend's fault
            assert await ask("other") == 503
        finally:
            await gateway.aclose()

    try:
        asyncio.run(scenario())
    finally:
        server.shutdown()
        server.server_close()
