"""`zhisuan server` as a real process (uvicorn on loopback), driven over HTTP; killed with SIGKILL mid-run."""

import signal
import time

import pytest

from zhisuan.serve.process import ServerProcess

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


def wait(client, job_id, state, limit=20.0):
    end = time.time() + limit
    while time.time() < end:
        got = client.get(f"/v1/jobs/{job_id}").json()
        if got["state"] == state:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{job_id} stayed {got['state']}")


@pytest.fixture
def server(tmp_path):
    (tmp_path / "net.yaml").write_text(NETWORK)
    s = ServerProcess(tmp_path / "net.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs", interval=0.2)
    yield s.start()
    s.close(signal.SIGKILL)


def job(name, run, tenant="acme"):
    return f"name: {name}\ntenant: {tenant}\nresources: {{accelerators: a100:1}}\nrun: {run!r}"


def test_submit_over_http_runs_to_completion(server):
    acme = server.client("acme")
    r = acme.post("/v1/jobs", content=job("hello", "echo hello from $CUDA_VISIBLE_DEVICES"))
    assert r.status_code == 201
    done = wait(acme, r.json()["id"], "succeeded")
    assert acme.get(f"/v1/jobs/{done['id']}/logs").text.strip() == f"hello from {done['devices'][0][0]}"
    bad = acme.post("/v1/jobs", content=job("big", "x").replace("a100:1", "a100:16"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "resources.accelerators"
    assert server.client("lab").get(f"/v1/jobs/{done['id']}").status_code == 404


def test_kill_9_mid_run_neither_loses_nor_repeats_a_job(server):
    acme = server.client("acme")
    running = acme.post("/v1/jobs", content=job("long", "sleep 1.5; echo ran")).json()["id"]
    wait(acme, running, "running")
    queued = acme.post("/v1/jobs", content=job("after", "echo after")).json()["id"]
    server.stop(signal.SIGKILL)  # no shutdown code runs
    server.start()
    acme = server.client("acme")
    first = wait(acme, running, "succeeded")
    second = wait(acme, queued, "succeeded")
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
    res = cli.invoke(app, ["jobs", "--all"], env=env)
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


def test_logs_follow_streams_lines_while_the_job_runs(server):
    with server.client("acme") as c:
        job_id = c.post("/v1/jobs", content=job("slow", "for i in 1 2 3; do echo line$i; sleep 0.4; done")).json()["id"]
        arrivals = []
        with c.stream("GET", f"/v1/jobs/{job_id}/logs", params={"follow": "true"}) as r:
            assert r.status_code == 200
            for chunk in r.iter_text():
                arrivals.append((time.monotonic(), chunk))
        text = "".join(chunk for _, chunk in arrivals)
        assert text == "line1\nline2\nline3\n"
        assert len(arrivals) >= 2 and arrivals[-1][0] - arrivals[0][0] > 0.3  # streamed, not one body at the end
        assert c.get(f"/v1/jobs/{job_id}").json()["state"] == "succeeded"  # the stream ends with the job
        with server.client("lab") as other:
            assert other.get(f"/v1/jobs/{job_id}/logs", params={"follow": "true"}).status_code == 404


def test_bench_api_submits_every_job_it_counts(tmp_path):
    from sqlalchemy import func, select

    from zhisuan.bench.api import api_rate
    from zhisuan.store import connect
    from zhisuan.store.schema import JobRow

    db = f"sqlite:///{tmp_path / 'b.db'}"
    python, wrk = api_rate("sqlite", db, 40, 4)
    assert len(python.latencies) == python.submitted == 40 and len(python.block_rates) == 4 and python.per_second > 0
    assert len(wrk.block_rates) == 4 and wrk.per_second > 0 and wrk.submitted > 0 and wrk.pct(99) >= wrk.pct(50) > 0
    with connect(db).connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(JobRow))
    # measured + warm-up, and wrk's: a request in flight when a wrk block ends may be stored unanswered
    assert 20 + 40 + wrk.submitted <= stored <= 20 + 40 + wrk.submitted + 4


def test_bill_and_utilization_report_from_the_cli(server, tmp_path):
    import json

    from typer.testing import CliRunner

    from zhisuan.cli.main import app
    from zhisuan.metering.invoice import local_month

    with server.client("acme") as c:
        job_id = c.post("/v1/jobs", content=job("metered", "sleep 1.2")).json()["id"]
        wait(c, job_id, "running")
        assert c.post(f"/v1/jobs/{job_id}/usage", json={"busy_fraction": 0.9}).status_code == 202
        wait(c, job_id, "succeeded")
    env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme"), "COLUMNS": "200"}
    month = local_month(time.time())
    res = CliRunner().invoke(app, ["bill", "--tenant", "acme", "--month", month, "--out", str(tmp_path)], env=env)
    assert res.exit_code == 0, res.output
    assert "metered" in res.output and "total" in res.output
    saved = json.loads((tmp_path / f"invoice-acme-{month}.json").read_text())
    assert saved["lines"][0]["busy_device_hours"] > 0 and (tmp_path / f"invoice-acme-{month}.csv").exists()
    res = CliRunner().invoke(app, ["bill", "--tenant", "lab", "--month", month, "--out", str(tmp_path)], env=env)
    assert res.exit_code == 2 and "403" in res.output
    html = tmp_path / "util.html"
    res = CliRunner().invoke(app, ["report", "utilization", "--bucket", "10m", "--html", str(html)], env=env)
    assert res.exit_code == 0, res.output
    assert "A100 SXM4 80GB" in res.output and "acme" in res.output
    assert '<script src="util-data.js">' in html.read_text() and (tmp_path / "uPlot.iife.min.js").exists()
    assert "busy % (measured)" in (tmp_path / "util-data.js").read_text()  # drawn by the kept chart library


def test_cli_conventions_login_filters_cancel_many_and_the_tenant_from_the_token(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("ZHISUAN_URL", "ZHISUAN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    cli = CliRunner()
    assert cli.invoke(app, ["login", "--url", server.url, "--token", "zs_wrong"]).exit_code == 2
    assert not (tmp_path / "config" / "zhisuan" / "token").exists()  # nothing kept from a failed login
    res = cli.invoke(app, ["login", "--url", server.url], input=server.token("acme") + "\n")
    assert res.exit_code == 0 and "as acme" in res.output, res.output
    saved = tmp_path / "config" / "zhisuan" / "token"
    assert saved.stat().st_mode & 0o777 == 0o600
    spec = tmp_path / "no-tenant.yaml"  # no `tenant:`: the token's tenant
    spec.write_text("name: mine\nresources: {accelerators: a100:1}\nrun: sleep 30\n")
    done = tmp_path / "done.yaml"
    done.write_text("name: quick\nresources: {accelerators: a100:1}\nrun: 'true'\n")
    res = cli.invoke(app, ["submit", str(done), "-f"])
    assert res.exit_code == 0, res.output
    script = tmp_path / "hello.sbatch"  # what a Slurm user has: runs as is, on the token's tenant
    script.write_text("#!/bin/bash\n#SBATCH --job-name=from-slurm\n#SBATCH --gres=gpu:a100:1\n#SBATCH -t 5\n"
                      "echo sbatch says hi\n")
    res = cli.invoke(app, ["submit", str(script), "-f"])
    assert res.exit_code == 0 and "sbatch says hi" in res.output and "time_limit: 5m" in res.output, res.output
    ids = [cli.invoke(app, ["submit", str(spec)]).output.split()[1] for _ in range(2)]
    active = cli.invoke(app, ["jobs"], env={"COLUMNS": "200"})
    assert active.exit_code == 0 and "mine" in active.output and "quick" not in active.output
    newest = cli.invoke(app, ["jobs", "--all", "--limit", "2"], env={"COLUMNS": "200"})
    assert "quick" not in newest.output and "showing the newest 2" in newest.output
    assert "quick" in cli.invoke(app, ["jobs", "--all"], env={"COLUMNS": "200"}).output
    ended = cli.invoke(app, ["jobs", "-s", "succeeded"], env={"COLUMNS": "200"})
    assert "quick" in ended.output and "mine" not in ended.output
    assert cli.invoke(app, ["jobs", "--state", "finished"]).exit_code == 2
    res = cli.invoke(app, ["cancel", *ids, "nosuchjob"])
    assert res.exit_code == 2 and res.output.count(": cancelled") == 2 and "nosuchjob: 404" in res.output
    with server.client("acme") as c:
        assert {c.get(f"/v1/jobs/{i}").json()["tenant"] for i in ids} == {"acme"}
        bad = c.get("/v1/invoices/acme/2026-13").json()
        assert bad["title"] == "Invalid request" and bad["errors"][0]["field"] == "month"


def test_the_server_logs_requests_and_state_changes_and_takes_its_port_first(server, tmp_path):
    import subprocess
    import sys

    with server.client("acme") as c:
        job_id = c.post("/v1/jobs", content=job("logged", "true")).json()["id"]
        wait(c, job_id, "succeeded")
    time.sleep(0.5)
    text = (server.runs / "server.log").read_text()
    assert '"POST /v1/jobs HTTP/1.1" 201' in text  # the access log
    assert f"job pending job={job_id} from=\"\" by=acme" in text and f"job succeeded job={job_id}" in text
    other = tmp_path / "other"  # a second server on the same port refuses at once and writes nothing
    res = subprocess.run([sys.executable, "-m", "zhisuan.cli.main", "server", "--network", str(tmp_path / "net.yaml"),
                          "--db", f"sqlite:///{other / 'z.db'}", "--runs", str(other / "runs"),
                          "--port", str(server.port)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--port: cannot listen" in res.stderr, res.stderr
    assert not (other / "runs" / "tokens.json").exists() and not (other / "z.db").exists()


def test_the_cli_speaks_chinese_with_lang(server, tmp_path):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    with server.client("acme") as c:
        job_id = c.post("/v1/jobs", content=job("zh-cli", "exit 3")).json()["id"]
        wait(c, job_id, "failed")
    env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme"), "COLUMNS": "200"}
    cli = CliRunner()
    res = cli.invoke(app, ["--lang", "zh-CN", "show", job_id], env=env)
    assert res.exit_code == 0, res.output
    assert "历史" in res.output and "失败" in res.output and "已放置到 here/gpu" in res.output
    res = cli.invoke(app, ["jobs", "--all"], env={**env, "LANG": "zh_CN.UTF-8"})  # or from the environment
    assert "等待原因 / 预计开始" in res.output and "zh-cli" in res.output
    res = cli.invoke(app, ["--lang", "zh-CN", "jobs", "--state", "sometimes"], env=env)
    assert res.exit_code == 2 and "错误" in res.output
    assert cli.invoke(app, ["--lang", "fr", "jobs"], env=env).exit_code == 2


def test_closing_a_server_ends_the_jobs_it_leaves_for_a_restart(tmp_path):
    from zhisuan.engines.sandbox import LEASES, isolating, processes_of

    if not isolating():
        pytest.skip("jobs get uids of their own only as root with setpriv (CI has both)")
    (tmp_path / "net.yaml").write_text(NETWORK)
    s = ServerProcess(tmp_path / "net.yaml", f"sqlite:///{tmp_path / 'z.db'}", tmp_path / "runs", interval=0.2)
    acme = s.start().client("acme")
    wait(acme, acme.post("/v1/jobs", content=job("long", "sleep 300")).json()["id"], "running")
    uids = [int(f.name) for f in LEASES.glob("[0-9]*") if f.read_text().startswith(str(tmp_path / "runs"))]
    assert len(uids) == 1
    end = time.time() + 10
    while not processes_of(uids[0]) and time.time() < end:  # running once spawned; its uid's once confined
        time.sleep(0.05)
    assert processes_of(uids[0])
    s.stop()
    assert processes_of(uids[0])  # a stop leaves the job for a restart to adopt
    assert s.close() >= 1
    assert not processes_of(uids[0]) and not (LEASES / str(uids[0])).exists()


def test_the_audit_trail_from_the_cli_names_who_and_from_where_and_exports_json_lines(server):
    import json

    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    admin = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("admin"), "COLUMNS": "200"}
    made = CliRunner().invoke(app, ["token", "create", "lab", "--label", "ci"], env=admin)
    assert made.exit_code == 0, made.output
    with server.client("acme") as c:
        c.post("/v1/jobs", content=job("audited", "true"))
    res = CliRunner().invoke(app, ["audit", "--jsonl", "--since", "1h"], env=admin)
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.output.splitlines()]
    create = next(e for e in events if e["action"] == "token.create")
    assert create["actor"] == "admin admin" and create["origin"] == "127.0.0.1" and "label ci" in create["detail"]
    assert any(e["action"] == "job.pending" and e["actor"] == "acme" for e in events)
    table = CliRunner().invoke(app, ["audit", "--action", "token.create"], env=admin)
    assert table.exit_code == 0 and "token.create" in table.output and "job.pending" not in table.output
    refused = CliRunner().invoke(app, ["audit"], env={**admin, "ZHISUAN_TOKEN": server.token("acme")})
    assert refused.exit_code != 0 and "403" in refused.output


def test_funds_through_the_cli_and_the_api_refuse_what_a_project_cannot_pay(server):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    admin = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("admin"), "COLUMNS": "200"}
    acme_env = {**admin, "ZHISUAN_TOKEN": server.token("acme")}
    made = CliRunner().invoke(app, ["funds", "topup", "acme", "15", "--memo", "invoice 7"], env=admin)
    assert made.exit_code == 0 and "¥15.00" in made.output, made.output
    refused = CliRunner().invoke(app, ["funds", "topup", "acme", "15"], env=acme_env)
    assert refused.exit_code != 0 and "403" in refused.output
    with server.client("acme") as c:
        # runs until cancelled, so its hold stands while the table below is read (``true`` ended first in CI)
        one_hour = job("costly", "sleep 600").replace("run:", "constraints: {time_limit: 1h}\nrun:")
        first = c.post("/v1/jobs", content=one_hour)
        assert first.status_code == 201  # holds ¥10
        r = c.post("/v1/jobs", content=one_hour)
        assert r.status_code == 402 and "¥10.00" in r.json()["detail"] and "¥5.00 free" in r.json()["detail"]
        for bad, field in (({"amount_yuan": -1}, "amount_yuan"), ({"amount_yuan": "NaN"}, "amount_yuan"),
                           ({"amount_yuan": 1e300}, "amount_yuan")):
            r = server.client("admin").post("/v1/funds/acme/topups", json=bad)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (bad, r.text)
        r = server.client("admin").put("/v1/funds/acme", json={"at_zero": "never"})
        assert r.status_code == 422 and "at_zero" in r.text
        r = server.client("admin").put("/v1/funds/" + "x" * 70, json={})  # longer than any project's name
        assert r.status_code == 422 and "tenant" in r.text
    shown = CliRunner().invoke(app, ["funds", "show"], env=acme_env)
    assert shown.exit_code == 0 and "¥10.00" in shown.output and "acme" in shown.output, shown.output
    legs = CliRunner().invoke(app, ["funds", "ledger", "acme"], env=acme_env)
    assert legs.exit_code == 0 and "topup" in legs.output and "invoice 7" in legs.output, legs.output
    with server.client("acme") as c:
        assert c.post(f"/v1/jobs/{first.json()['id']}/cancel").status_code == 200
        wait(c, first.json()["id"], "cancelled")  # what it ran is charged, its hold goes
    rec = CliRunner().invoke(app, ["funds", "reconcile", time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))],
                             env=admin)
    assert rec.exit_code == 0 and "balanced" in rec.output, rec.output
    after = server.client("acme").get("/v1/funds/acme").json()
    assert after["held_fen"] == 0 and after["available_fen"] + after["spent_fen"] == 1500, after  # nothing held now
    trail = CliRunner().invoke(app, ["audit", "--action", "funds.topup", "--jsonl"], env=admin)
    assert "invoice 7" in trail.output and "127.0.0.1" in trail.output


def test_a_center_operator_through_the_cli_sees_its_center_and_drains_a_node(server):
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    admin = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("admin"), "COLUMNS": "200"}
    made = CliRunner().invoke(app, ["token", "create", "", "--role", "operator", "--centers", "here"], env=admin)
    assert made.exit_code == 0 and "(operator)" in made.output, made.output
    op = {**admin, "ZHISUAN_TOKEN": made.output.strip().splitlines()[-1]}
    with server.client("acme") as c:
        c.post("/v1/jobs", content=job("secret-name", "sleep 5"))
    drained = CliRunner().invoke(app, ["center", "drain", "here", "--pool", "gpu", "--nodes", "0",
                                       "--reason", "firmware update"], env=op)
    assert drained.exit_code == 0 and "1 node(s) of here drained" in drained.output, drained.output
    shown = CliRunner().invoke(app, ["center", "show"], env=op)
    assert shown.exit_code == 0 and "firmware update" in shown.output and "secret-name" not in shown.output
    assert "acme" not in shown.output, shown.output
    refused = CliRunner().invoke(app, ["jobs"], env=op)
    assert refused.exit_code != 0 and "an operator token may not" in refused.output
    bad = CliRunner().invoke(app, ["center", "drain", "here", "--pool", "gpu", "--nodes", "x"], env=op)
    assert bad.exit_code != 0 and "--nodes" in bad.output
    back = CliRunner().invoke(app, ["center", "undrain", "here"], env=op)
    assert back.exit_code == 0 and "1 node(s) of here back in service" in back.output, back.output
