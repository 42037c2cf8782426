"""A real OpenAI-compatible inference server with a real (tiny) model on CPU behind the gateway:
llama-cpp-python's server (built from source by `make test` into .venv-llama) serving a random-weight
llama GGUF this test builds (tests/fixtures/llama/tiny_gguf.py): completions, a stream relayed chunk by
chunk, embeddings, tokens metered."""

import json
import os
import subprocess
import time
from pathlib import Path

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

PYTHON = os.environ.get("ZHISUAN_TEST_LLAMA", "")
BUILDER = Path(__file__).resolve().parents[1] / "fixtures" / "llama" / "tiny_gguf.py"


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    if not PYTHON:
        if os.environ.get("CI"):
            pytest.fail("no llama.cpp server: run the suite with `make test`, which builds it "
                        "(scripts/llama-ensure.sh)")
        pytest.skip("no llama.cpp server (run `make test` or scripts/llama-ensure.sh and set ZHISUAN_TEST_LLAMA)")
    model = tmp_path_factory.mktemp("llama") / "tiny.gguf"
    subprocess.run([PYTHON, str(BUILDER), str(model)], check=True, timeout=120)
    port = free_port()
    log = open(model.parent / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([PYTHON, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2",
                             "--embedding", "true"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.time() + 120
    while time.time() < end:
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError((model.parent / "server.log").read_text()[-2000:])
    yield url
    proc.terminate()
    proc.wait(20)
    log.close()


@pytest.fixture
def gw(tmp_path, llama):
    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store, tokens = JobStore(db), TokenStore(db)
    gateway = Gateway(Registry())
    gateway.registry.add(Replica("llama-1", "tiny", llama))
    app = create_app(Service(store, NETWORK, ControlLoop(store, NETWORK, LocalEngine(tmp_path / "r"))), tokens, gateway)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {tokens.issue('acme', 0.0)}"}, gateway


ASK = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "temperature": 0}


def test_a_real_model_answers_through_the_gateway(gw):
    client, auth, gateway = gw
    r = client.post("/v1/chat/completions", json=ASK, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["choices"][0]["message"]["content"], str) and body["choices"][0]["message"]["content"]
    served = gateway.meter.served[("acme", "tiny")]
    assert served.completion_tokens == body["usage"]["completion_tokens"] > 0 and served.counted_tokens == 0
    again = client.post("/v1/completions", json={"model": "tiny", "prompt": "the", "max_tokens": 4,
                                                  "temperature": 0}, headers=auth)
    assert again.status_code == 200 and again.json()["usage"]["completion_tokens"] > 0
    emb = client.post("/v1/embeddings", json={"model": "tiny", "input": "hello there"}, headers=auth)
    assert emb.status_code == 200
    vector = emb.json()["data"][0]["embedding"]  # this server version answers one vector per token
    assert len(vector[0] if isinstance(vector[0], list) else vector) == 64  # the model's width


def test_a_real_models_stream_is_relayed_chunk_by_chunk(gw):
    client, auth, gateway = gw
    with client.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}, headers=auth) as r:
        assert r.status_code == 200
        events = [e for e in r.iter_text() for e in e.split("\n\n") if e.strip()]
    chunks = [json.loads(e[6:]) for e in events if e.startswith("data: {")]
    text = "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c.get("choices"))
    assert text and events[-1].strip() == "data: [DONE]"
    served = gateway.meter.served[("acme", "tiny")]
    assert served.completion_tokens > 0  # the stream's usage, or counted here when it has none
