"""`zhisuan server` as a real process (uvicorn on loopback), driven over HTTP; killed with SIGKILL mid-run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

NETWORK = """
name: e2e
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        (tmp_path / "net.yaml").write_text(NETWORK)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zhisuan.cli.main", "server", "--network", str(self.tmp / "net.yaml"),
             "--db", f"sqlite:///{self.tmp / 'z.db'}", "--runs", str(self.tmp / "runs"), "--port", str(self.port),
             "--interval", "0.2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.time() + 30
        while time.time() < end:
            try:
                if httpx.get(self.url + "/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not come up")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def token(self, tenant):
        return json.loads((self.tmp / "runs" / "tokens.json").read_text())[tenant]

    def client(self, tenant):
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(tenant)}"}, timeout=10)

    def wait(self, client, job, state, limit=20.0):
        end = time.time() + limit
        while time.time() < end:
            got = client.get(f"/v1/jobs/{job}").json()
            if got["state"] == state:
                return got
            time.sleep(0.1)
        raise AssertionError(f"{job} stayed {got['state']}")


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.kill()


def job(name, run, tenant="acme"):
    return f"name: {name}\ntenant: {tenant}\nresources: {{accelerators: a100:1}}\nrun: {run!r}"


def test_submit_over_http_runs_to_completion(server):
    acme = server.client("acme")
    r = acme.post("/v1/jobs", content=job("hello", "echo hello from $CUDA_VISIBLE_DEVICES"))
    assert r.status_code == 201
    done = server.wait(acme, r.json()["id"], "succeeded")
    assert acme.get(f"/v1/jobs/{done['id']}/logs").text.strip() == f"hello from {done['devices'][0][0]}"
    bad = acme.post("/v1/jobs", content=job("big", "x").replace("a100:1", "a100:16"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "resources.accelerators"
    assert server.client("lab").get(f"/v1/jobs/{done['id']}").status_code == 404


def test_kill_9_mid_run_neither_loses_nor_repeats_a_job(server):
    acme = server.client("acme")
    running = acme.post("/v1/jobs", content=job("long", "sleep 1.5; echo ran")).json()["id"]
    server.wait(acme, running, "running")
    queued = acme.post("/v1/jobs", content=job("after", "echo after")).json()["id"]
    server.kill()  # SIGKILL: no shutdown code runs
    server.start()
    acme = server.client("acme")
    first = server.wait(acme, running, "succeeded")
    second = server.wait(acme, queued, "succeeded")
    assert first["attempts"] == 1 and second["attempts"] == 1
    assert acme.get(f"/v1/jobs/{running}/logs").text.count("ran") == 1


def test_cli_client_against_the_server(server, tmp_path):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme")}
    cli = CliRunner()
    ok = tmp_path / "ok.yaml"
    ok.write_text(job("cli-ok", "echo from-cli"))
    res = cli.invoke(app, ["submit", str(ok), "--follow"], env=env)
    assert res.exit_code == 0, res.output
    assert "succeeded" in res.output and "from-cli" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(job("cli-bad", "exit 4"))
    res = cli.invoke(app, ["submit", str(bad), "-f"], env=env)
    assert res.exit_code == 1 and "failed" in res.output
    res = cli.invoke(app, ["jobs"], env=env)
    assert res.exit_code == 0 and "cli-ok" in res.output and "cli-bad" in res.output
    res = cli.invoke(app, ["centers"], env=env)
    assert res.exit_code == 0 and "A100 SXM4 80GB" in res.output and "here" in res.output
    res = cli.invoke(app, ["quote", str(ok)], env=env)
    assert res.exit_code == 0 and "here" in res.output
    big = tmp_path / "big.yaml"
    big.write_text(job("big", "x").replace("a100:1", "a100:16"))
    res = cli.invoke(app, ["submit", str(big)], env=env)
    assert res.exit_code == 2 and "resources.accelerators" in res.output
    res = cli.invoke(app, ["jobs"], env={**env, "ZHISUAN_TOKEN": "zs_wrong"})
    assert res.exit_code == 2 and "401" in res.output
