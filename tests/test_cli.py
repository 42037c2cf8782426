"""The CLI as a user runs it (Typer's runner, in-process)."""

import re

import pytest
from typer.testing import CliRunner

from tests.builders import ROOT
from zhisuan.cli.main import app

runner = CliRunner()


def test_explain_on_both_shipped_networks(root):
    for net in ["toy3", "cn10"]:
        res = runner.invoke(app, ["explain", str(root / "examples/jobs/llama-sft.yaml"),
                                  "--network", str(root / f"examples/networks/{net}.yaml")])
        assert res.exit_code == 0, res.output
        assert "← chosen" in res.output and "ASSUMPTION" in res.output


def test_explain_prices_a_share_and_a_cpu_only_job_by_what_they_are_billed_for(root, tmp_path):
    net = str(root / "examples/networks/toy3.yaml")
    half, whole, cpus = tmp_path / "half.yaml", tmp_path / "whole.yaml", tmp_path / "cpus.yaml"
    for path, acc in ((half, "A100:0.5"), (whole, "A100:1"), (cpus, "none, cpus: 16")):
        path.write_text(f"name: j\ntenant: acme\nresources: {{accelerators: {acc}}}\nrun: x\n")

    def first_cost(path):
        res = runner.invoke(app, ["explain", str(path), "--network", net], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        row = next(line for line in res.output.splitlines() if "← chosen" in line)
        return res.output, float(row.split("│")[7].strip(" †").replace(",", ""))  # the ¥/job column

    out, cost = first_cost(half)
    # a share costs its fraction; the table shows fen, so the two rounded figures may differ by the roundings
    # (half a fen on the share, a quarter on half the whole): which way depends on the hour's time-of-use price
    assert "1×0.5 devices" in out and abs(cost - first_cost(whole)[1] / 2) <= 0.0075 + 1e-9
    out, cost = first_cost(cpus)
    assert "1×16 CPUs, no device" in out and cost > 0  # CPU-hours at the pool's (derived) CPU price


def test_explain_rejects_oversize_gang_naming_the_field(root):
    res = runner.invoke(app, ["explain", str(root / "examples/jobs/too-big.yaml"),
                              "--network", str(root / "examples/networks/toy3.yaml")])
    assert res.exit_code == 2
    assert "resources.accelerators" in res.output


def test_explain_missing_file_and_bad_network(root, tmp_path):
    assert runner.invoke(app, ["explain", str(tmp_path / "none.yaml")]).exit_code == 2
    bad = tmp_path / "n.yaml"
    bad.write_text("name: x\ncenters: []\n")
    res = runner.invoke(app, ["explain", str(root / "examples/jobs/llama-sft.yaml"), "--network", str(bad)])
    assert res.exit_code == 2 and "centers" in res.output


def test_bench_scheduler_quick_prints_measured_last_line():
    res = runner.invoke(app, ["bench", "scheduler", "--quick", "--repeats", "1"])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    m = re.fullmatch(r"placements/s: (\d+)", last)
    assert m and int(m.group(1)) > 0


def test_demo_runs_the_examples_through_a_real_server(root):
    res = runner.invoke(app, ["demo", "--network", str(root / "examples/networks/toy3.yaml"),
                              "--jobs", str(root / "examples/demo")])
    assert res.exit_code == 0, res.output
    assert "too-big.yaml: rejected (422) resources.accelerators" in res.output
    assert "rank 1 step 3" in res.output and "demo finished" in res.output
    assert "3 replicas ready on" in res.output and "hello from the demo" in res.output


def test_network_and_catalog(root):
    res = runner.invoke(app, ["network", str(root / "examples/networks/cn10.yaml")])
    assert res.exit_code == 0 and "wuhan-aicc" in res.output
    res = runner.invoke(app, ["catalog"])
    assert res.exit_code == 0 and "Ascend 910B3" in res.output and "ASSUMPTION" in res.output


def test_sim_on_own_csv_writes_the_report(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,devices,chip,tenant,home\n0,600,8,V100,a,x\n60,60,1,V100,b,y\n"
                     "120,30,2,V100,a,x\n", encoding="utf-8")
    out = tmp_path / "rep"
    res = runner.invoke(app, ["sim", "--trace", str(trace), "--policies", "fifo,sjf,qssf-pred", "--mode",
                              "network", "--out", str(out), "--interval", "0"])
    assert res.exit_code == 0, res.output
    assert (out / "index.html").read_text().count('class="chart"') == 2 and (out / "uPlot.iife.min.js").exists()
    assert "network-qssf-pred" in (out / "charts-data.js").read_text()
    assert {p.name for p in out.iterdir()} >= {"summary.csv", "jobs-network-fifo.csv", "jobs-network-qssf-pred.csv"}
    rows = (out / "jobs-network-fifo.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("job,tenant")


def test_sim_rejects_bad_rows_and_policies(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("submit,duration,devices\n0,60,1\n1,x,1\n", encoding="utf-8")
    res = runner.invoke(app, ["sim", "--trace", str(bad), "--mode", "network", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "line 2" in res.output and "no chip" in res.output  # never a silent A100
    res = runner.invoke(app, ["sim", "--trace", str(bad), "--trace-chip", "v100", "--mode", "network",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "line 3" in res.output
    nan = tmp_path / "nan.csv"
    nan.write_text("submit,duration,devices,chip\n0,60,1,v100\n1,nan,1,v100\n2,inf,1,v100\n", encoding="utf-8")
    res = runner.invoke(app, ["sim", "--trace", str(nan), "--mode", "network", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "line 3" in res.output and "finite" in res.output
    res = runner.invoke(app, ["sim", "--trace", str(bad), "--trace-chip", "v100", "--skip-bad", "--mode", "network",
                              "--policies", "fifo", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0 and "skipped 1 malformed" in res.output
    res = runner.invoke(app, ["sim", "--policies", "magic", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown policy" in res.output
    for outage in ("a:0:inf", "a:nan:10", "a:10:5", "a:0"):  # a center that never came back replayed forever
        res = runner.invoke(app, ["sim", "--outage", outage, "--out", str(tmp_path / "o")])
        assert res.exit_code == 2 and "--outage" in res.output and not (tmp_path / "o").exists(), outage


def test_bench_sim_prints_measured_last_line():
    res = runner.invoke(app, ["bench", "sim", "--limit", "500", "--policies", "fifo,easy"])
    assert res.exit_code == 0, res.output
    assert re.fullmatch(r"philly-seconds-per-policy: \d+\.\d\d", res.output.strip().splitlines()[-1])


def test_server_refuses_to_start_when_an_engine_to_read_pools_from_does_not_answer(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text("name: n\ncenters:\n  - {name: far, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5, engine: slurm,\n"
                   f"     engine_config: {{conf: {tmp_path}/missing.conf, timeout: 1, prices: {{a100: 1}}}}}}\n")
    res = CliRunner().invoke(app, ["server", "--network", str(net), "--db", f"sqlite:///{tmp_path}/z.db",
                                   "--runs", str(tmp_path / "runs"), "--port", "0"])
    assert res.exit_code == 2 and "far" in res.output


def test_a_corrupt_database_is_one_line_naming_it(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "z.db"
    db.write_bytes(b"this is not a database" * 100)
    (tmp_path / "runs").mkdir()
    done = subprocess.run([sys.executable, "-m", "zhisuan.cli.main", "server", "--db", f"sqlite:///{db}", "--runs",
                           str(tmp_path / "runs"), "--port", "0"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert str(db) in done.stderr and "restore it from a backup" in done.stderr


def test_the_command_imports_only_what_help_needs():
    """`zhisuan --help` must not pay for the scheduler, the store or the HTTP client: each command imports
    what it uses when it runs (the figure is `zhisuan bench cli`)."""
    import subprocess
    import sys

    code = "import sys, zhisuan.cli.main; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(done.stdout.split())
    heavy = {"numpy", "scipy", "sqlalchemy", "pydantic", "httpx", "fastapi", "uvicorn", "zhisuan.scheduler",
             "zhisuan.store", "zhisuan.control", "zhisuan.sim", "zhisuan.model"}
    assert not heavy & loaded, sorted(heavy & loaded)


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (Typer carries its own click)
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_option_has_help_and_flags_render_as_flags():
    import typer.main

    missing = [(" ".join(path), p.name) for path, cmd in _commands(typer.main.get_command(app))
               for p in cmd.params if not getattr(p, "help", "x") and p.name != "help"]
    assert not missing, missing
    res = runner.invoke(app, ["logs", "--help"])
    assert res.exit_code == 0 and "--follow" in res.output and "<bool>" not in res.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and re.fullmatch(r"zhisuan \d+\.\d+\.\d+\S*\n", version.output)


def test_server_log_lines_are_key_value_or_json_and_a_bad_level_is_refused():
    import json
    import logging

    from zhisuan.serve.logs import JsonFormatter, TextFormatter

    record = logging.LogRecord("zhisuan.control", logging.INFO, "x", 1, "job %s", ("running",), None)
    record.fields = {"job": "j-1", "why": "started on a/b"}
    assert TextFormatter().format(record).endswith('info    zhisuan.control job running job=j-1 why="started on a/b"')
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["msg"], line["job"], line["why"]) == ("info", "job running", "j-1", "started on a/b")
    res = runner.invoke(app, ["server", "--log-level", "loud"])
    assert res.exit_code == 2 and "--log-level" in res.output


def test_the_readme_and_architecture_link_only_inside_the_repo():
    """A user's clone has no ../shared/: every relative link and backticked repo path must exist in it."""
    for doc in (ROOT / "README.md", ROOT / "docs" / "ARCHITECTURE.md"):
        text = doc.read_text(encoding="utf-8")
        assert "../shared" not in text and "shared/data" not in text, doc
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith(("http://", "https://")):
                assert (doc.parent / target).exists(), (doc.name, target)
        for path in re.findall(r"`((?:src|docs|examples|scripts|tools|tests)/[\w./-]+)`", text):
            assert (ROOT / path).exists(), (doc.name, path)
        package = "scheduler|sim|control|engines|store|model|catalog|metering|serve|api|web|cli|bench"
        for path in re.findall(rf"`((?:{package})/[\w./-]+\.py)`", text):
            assert (ROOT / "src" / "zhisuan" / path).exists(), (doc.name, path)


def test_the_offline_commands_and_the_sim_report_speak_chinese(root, tmp_path):
    res = runner.invoke(app, ["--lang", "zh-CN", "explain", str(root / "examples/jobs/finetune-local-data.yaml")])
    assert res.exit_code == 0, res.output
    assert "← 选中" in res.output and "原因：" in res.output and "庆阳" in res.output
    assert "ASSUMPTION（假设）" in res.output  # an assumed input stays labelled as one, in either language
    res = runner.invoke(app, ["--lang", "zh-CN", "network", str(root / "examples/networks/toy3.yaml")])
    assert "华东" in res.output and "上海" in res.output and "ASSUMPTION" in res.output
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,devices,chip\n0,600,8,a100\n60,60,1,a100\n", encoding="utf-8")
    res = runner.invoke(app, ["--lang", "zh-CN", "sim", "--trace", str(trace), "--policies", "fifo", "--mode",
                              "network", "--out", str(tmp_path / "rep"), "--interval", "0"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "智算仿真报告" in html and "平均完成时间 h" in html
    assert "avg JCT h" in (tmp_path / "rep" / "summary.csv").read_text()  # machine-read files keep English
    english = runner.invoke(app, ["explain", str(root / "examples/jobs/finetune-local-data.yaml")], env={"LANG": "C"})
    assert "← chosen" in english.output  # the language is chosen per invocation


@pytest.mark.parametrize("args, option", [
    (["token", "create", "acme", "--expires", "0s"], "--expires"),
    (["center", "token", "create", "guiyang", "--expires", "soon"], "--expires"),
    (["report", "utilization", "--bucket", "-1h"], "--bucket"),
])
def test_a_bad_duration_is_a_usage_error_naming_its_option(args, option):
    res = CliRunner().invoke(app, [*args, "--url", "http://127.0.0.1:9", "--token", "x"])
    assert res.exit_code == 2 and option in res.output and "Traceback" not in res.output, res.output
