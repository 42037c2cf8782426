"""Clients that send a request and never read the answer, against a real `zhisuan server` (uvicorn, uvloop,
httptools) in front of a backend answering 60 MiB non-streamed bodies. Each such client once cost the server
the whole body (RSS +61 MB a client), and its tenant's slot was given back before a byte was written. Now an
answer passes through as fast as its client reads, holds its slot until its last byte is handed over, the
client goes, or the send timeout cuts it; and it is metered with the backend's usage all the same."""

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from zhisuan.serve.process import ServerProcess

LIMIT, SEND_TIMEOUT = 4, 8.0  # the server's per-tenant requests in flight and send timeout, lowered for the test
BODY = b"".join([b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"', b"A" * (60 << 20),
                 b'"}],"model":"big","usage":{"prompt_tokens":5,"total_tokens":5}}'])
NETWORK = """
name: slow
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10}
tenants:
  - {name: acme}
  - {name: lab}
"""
SERVER = (f"from zhisuan.gateway import answer, proxy\nproxy.MAX_TENANT_INFLIGHT = {LIMIT}\n"
          f"answer.SEND_TIMEOUT = {SEND_TIMEOUT}\nfrom zhisuan.cli.main import app\napp()")


class Big(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the gateway closed its connection: the client went, or was cut
            self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class Backend(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


@pytest.fixture
def server(tmp_path):
    backend = Backend(("127.0.0.1", 0), Big)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    (tmp_path / "net.yaml").write_text(NETWORK)
    srv = ServerProcess(tmp_path / "net.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs")
    srv.runs.mkdir(parents=True)
    srv.proc = subprocess.Popen(  # ServerProcess's command, with the two bounds lowered
        [sys.executable, "-c", SERVER, "server", "--network", str(srv.network), "--db", srv.db, "--runs",
         str(srv.runs), "--port", str(srv.port), "--log-level", "warning",
         "--model-backend", f"big=http://127.0.0.1:{backend.server_address[1]}"],
        stdout=subprocess.DEVNULL, stderr=srv.log.open("ab"), start_new_session=True)
    end = time.time() + 30
    while True:
        try:
            if httpx.get(srv.url + "/openapi.json", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert srv.proc.poll() is None and time.time() < end, srv.log.read_text()
            time.sleep(0.1)
    yield srv
    srv.close()
    backend.shutdown()
    backend.server_close()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmRSS:"))


def stalled(srv: ServerProcess, tenant: str) -> tuple[socket.socket, int]:
    """A client that sends its request, reads the status line, and nothing more (a small receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.port))
    body = json.dumps({"model": "big", "input": "hello"}).encode()
    s.sendall(f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.token(tenant)}\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return s, int(s.recv(12).split()[1])


def admitted(srv: ServerProcess, n: int, limit: float = 30.0) -> list[socket.socket]:
    """`n` stalled clients of acme's, each let in once a slot is free (429 until then)."""
    held, end = [], time.time() + limit
    while len(held) < n:
        s, status = stalled(srv, "acme")
        if status == 200:
            held.append(s)
            continue
        s.close()
        assert status == 429 and time.time() < end, f"{len(held)} of {n} let in"
        time.sleep(0.2)
    return held


def to_eof(s: socket.socket) -> int:
    total = 0
    while chunk := s.recv(1 << 20):
        total += len(chunk)
    return total


def metered(srv: ServerProcess) -> tuple[float, float, float]:
    """The big model's requests, prompt tokens and tokens the gateway estimated, from /metrics."""
    scrape = httpx.get(srv.url + "/metrics").text

    def value(name: str, labels: str) -> float:
        return float(re.search(rf"^zhisuan_gateway_{name}_total\{{{labels}\}} (\S+)$", scrape, re.M)[1])

    return value("requests", 'model="big"'), value("tokens", 'kind="prompt",model="big"'), value(
        "counted_tokens", 'model="big"')


def test_clients_that_never_read_hold_their_slots_but_not_their_answers(server):
    srv = server
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {srv.token('acme')}"}) as client:
        whole = client.post(srv.url + "/v1/embeddings", json={"model": "big", "input": "hello"})
    assert whole.status_code == 200 and whole.content == BODY  # relayed as it came, 60 MiB
    time.sleep(0.5)
    before = rss(srv.proc.pid)
    held = admitted(srv, LIMIT)
    time.sleep(0.5)  # the relays fill what buffers they may
    grown = rss(srv.proc.pid) - before
    assert grown < len(BODY), f"{grown >> 20} MiB for {LIMIT} clients that read nothing"  # was their whole bodies

    s, status = stalled(srv, "acme")  # the tenant's slots are still held: LIMIT answers not handed over
    s.close()
    assert status == 429
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {srv.token('lab')}"}) as client:
        assert len(client.post(srv.url + "/v1/embeddings", json={"model": "big", "input": "x"}).content) == len(BODY)

    for s in held[:2]:  # two clients go away: their slots come back (after their answers are read for the bill)
        s.close()
    held = held[2:] + admitted(srv, 2)
    s, status = stalled(srv, "acme")
    s.close()
    assert status == 429  # the two still stalled hold theirs

    again = admitted(srv, LIMIT, limit=4 * SEND_TIMEOUT)  # the stalled ones are cut after SEND_TIMEOUT
    assert all(to_eof(s) < len(BODY) for s in held)  # their connections closed, answers broken off
    for s in again:
        s.close()
    requests, prompt, estimated = metered(srv)  # warm-up, lab's, two that left, four cut: with the backend's usage
    assert requests >= 8 and prompt == 5 * requests and estimated == 0
