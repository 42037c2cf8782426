"""Datasets as a user runs them: `zhisuan server` as a real process on a network whose two centers have real
S3 stores (`rclone serve s3`), then `zhisuan data put`, `quote` (the data line), `submit`, `show` while it
stages, `logs`, `data show`, and `bill` with its storage and transfer lines."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from zhisuan.cli.main import app
from zhisuan.serve.process import ServerProcess
from zhisuan.storage import S3Server


def _network(tmp: Path, servers: dict[str, S3Server]) -> Path:
    centers = []
    for name in ("east", "west"):
        s = servers[name]
        creds = tmp / f"{name}.json"
        creds.write_text(json.dumps({"access_key": s.access_key, "secret_key": s.secret_key}))
        s.store("zhisuan")
        centers.append({"name": name, "region": name, "pue": 1.2, "carbon_kg_per_kwh": 0.5 if name == "east" else 0.2,
                        "pools": [{"name": "gpu", "accelerator": "A100-80GB", "nodes": 1, "devices_per_node": 2,
                                   "price_per_device_hour": 12.0 if name == "east" else 6.0,
                                   "device_ids": ["0", "1"]}],
                        "store": {"capacity_gb": 10, "cny_per_gb_month": 0.12, "endpoint": s.endpoint,
                                  "bucket": "zhisuan", "credentials_file": str(creds)}})
    path = tmp / "net.yaml"
    path.write_text(yaml.safe_dump({
        "name": "two", "centers": centers, "tenants": [{"name": "acme"}],
        "links": [{"between": ["east", "west"], "bandwidth_gbit": 0.016, "rtt_ms": 20, "cny_per_gb": 0.5}]}))
    return path


def test_put_stage_run_and_bill_through_the_cli(tmp_path: Path) -> None:
    keys = {n: ("AK" + secrets.token_hex(6), secrets.token_hex(16)) for n in ("east", "west")}
    with (S3Server(tmp_path / "east-s3", name="east", access_key=keys["east"][0], secret_key=keys["east"][1]) as e,
          S3Server(tmp_path / "west-s3", name="west", access_key=keys["west"][0], secret_key=keys["west"][1]) as w):
        server = ServerProcess(_network(tmp_path, {"east": e, "west": w}), f"sqlite:///{tmp_path / 'z.db'}",
                               tmp_path / "runs", interval=0.2).start()
        try:
            env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme")}
            cli = CliRunner()
            data = tmp_path / "corpus"
            data.mkdir()
            for i in range(2):
                (data / f"shard-{i}.txt").write_bytes(secrets.token_hex(1_000_000).encode())  # 2 MB each
            res = cli.invoke(app, ["data", "put", "corpus", str(data), "--center", "east"], env=env)
            assert res.exit_code == 0 and "acme:corpus: 2 file(s)" in res.output, res.output
            res = cli.invoke(app, ["data", "put", "bad/name", str(data), "--center", "east"], env=env)
            assert res.exit_code != 0 and "name" in res.output
            spec = tmp_path / "train.yaml"
            spec.write_text("name: train\ntenant: acme\nresources: {accelerators: A100-80GB:1}\n"
                            "constraints: {regions: [west], time_limit: 60}\ninputs: {train: corpus}\n"
                            "run: wc -c $ZHISUAN_INPUT_TRAIN/shard-0.txt\n")
            res = cli.invoke(app, ["quote", str(spec)], env=env)
            assert res.exit_code == 0 and "4 MB from east at 0.016 Gbit/s" in res.output, res.output
            res = cli.invoke(app, ["submit", str(spec)], env=env)
            assert res.exit_code == 0, res.output
            job_id = res.output.split()[1]
            seen_staging = False
            end = time.time() + 90
            while time.time() < end:
                res = cli.invoke(app, ["show", job_id], env=env)
                seen_staging |= "east -> west" in res.output
                if "succeeded" in res.output or "failed" in res.output:
                    break
                time.sleep(0.3)
            assert "succeeded" in res.output and seen_staging, res.output
            res = cli.invoke(app, ["logs", job_id], env=env)
            assert "2000000" in res.output
            end = time.time() + 30
            while time.time() < end:
                res = cli.invoke(app, ["data", "show", "corpus"], env=env)
                if "west" in res.output and res.output.count("ready") >= 2:
                    break
                time.sleep(0.3)
            assert res.exit_code == 0 and "done" in res.output, res.output
            month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
            res = cli.invoke(app, ["bill", "--tenant", "acme", "--month", month, "--out", str(tmp_path / "inv")],
                             env=env)
            assert res.exit_code == 0 and "transfers" in res.output and "storage" in res.output, res.output
            assert "east" in res.output and "west" in res.output
            res = cli.invoke(app, ["data", "rm", "corpus"], env=env)
            assert res.exit_code == 0
        finally:
            server.close()
