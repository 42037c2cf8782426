"""The demo's data step: two of the sample network's centers get real S3 stores (`rclone serve s3` on
loopback), a dataset is put at one, and a job that must run at the other stages it first — then the
transfer and the storage are on the bill."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import yaml

from zhisuan.cli.common import console

STORES = ("shanghai", "qingyang")  # the sample network's centers that get a store
RATE_GBIT = 0.08  # the demo's east-west link: 10 MB/s, so staging is seen


def with_stores(network: Path, work: Path, stack: contextlib.ExitStack) -> Path:
    """A copy of the network file whose first two store centers have real S3 stores (started on `stack`)."""
    from zhisuan.storage import S3Server

    doc = yaml.safe_load(network.read_text(encoding="utf-8"))
    names = [c["name"] for c in doc["centers"]]
    if not all(n in names for n in STORES):
        return network
    for c in doc["centers"]:
        if c["name"] not in STORES:
            continue
        key, secret = "AK" + secrets.token_hex(6), secrets.token_hex(16)
        server = stack.enter_context(S3Server(work / "s3" / c["name"], name=c["name"], access_key=key,
                                              secret_key=secret))
        server.store("zhisuan")
        creds = work / f"{c['name']}-s3.json"
        creds.write_text(json.dumps({"access_key": key, "secret_key": secret}), encoding="utf-8")
        creds.chmod(0o600)
        c["store"] = {"capacity_gb": 100, "cny_per_gb_month": 0.12, "endpoint": server.endpoint, "bucket": "zhisuan",
                      "credentials_file": str(creds)}
    doc["links"] = [{"between": list(STORES), "bandwidth_gbit": RATE_GBIT, "rtt_ms": 40, "cny_per_gb": 0.5,
                     "assumptions": {"bandwidth_gbit": "the demo's, slow enough to see staging"}}]
    out = work / "network-with-stores.yaml"
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def data_demo(base: str, token: str, tenant: str, step: int) -> None:
    """Put a dataset at shanghai, run a job at qingyang that reads it, show the staging and the bill lines."""
    import httpx

    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    files = {f"shard-{i}.txt": secrets.token_hex(2_000_000).encode() for i in range(3)}  # 12 MB
    console.print(f"[bold]{step}.[/] a dataset at {STORES[0]}, read by a job that must run at {STORES[1]}")
    decl = [{"path": p, "size": len(b), "md5": hashlib.md5(b).hexdigest()} for p, b in files.items()]
    _ok(client.post("/v1/datasets", json={"name": "demo-corpus", "center": STORES[0], "files": decl}))
    for p, b in files.items():
        _ok(client.put(f"/v1/datasets/demo-corpus/files/{p}", content=b))
    d = _ok(client.post("/v1/datasets/demo-corpus/commit"))
    console.print(f"   put {d['ref']}: {len(files)} files, {d['size_bytes'] / 1e6:.0f} MB, MD5s checked in the store")
    spec = (f"name: read-corpus\ntenant: {tenant}\nresources: {{accelerators: A100-80GB:1}}\n"
            f"constraints: {{regions: [west], time_limit: 60}}\ninputs: {{train: demo-corpus}}\n"
            "run: cd $ZHISUAN_INPUT_TRAIN && wc -c shard-*.txt | tail -1\n")
    quote = _ok(client.post("/v1/quote", content=spec))
    best = next(c for c in quote["candidates"] if not c["rejected_by"])
    console.print(f"   quote: {best['center']}/{best['pool']}, data: {best['data']}")
    job = _ok(client.post("/v1/jobs", content=spec))
    end, seen = time.time() + 120, ""
    while time.time() < end:
        now = _ok(client.get(f"/v1/jobs/{job['id']}"))
        if now["state"] != seen:
            seen = now["state"]
            console.print(f"   {job['id']}: {seen}")
        if seen == "staging":
            for x in _ok(client.get(f"/v1/jobs/{job['id']}/transfers")):
                console.print(f"      {x['source']} -> {x['target']}: {x['bytes_done'] / 1e6:.1f} of "
                              f"{x['bytes_total'] / 1e6:.1f} MB at {x['rate'] / 1e6:.1f} MB/s")
        if seen in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    log = client.get(f"/v1/jobs/{job['id']}/logs").text.strip()
    console.print(f"   its log: {log}")
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
    bill = _ok(client.get(f"/v1/invoices/{tenant}/{month}"))
    for x in bill["transfers"]:
        console.print(f"   bill, transfer {x['source']} -> {x['target']}: {x['gb']:.3f} GB, ¥{x['cny']:.4f}")
    for x in bill["storage"]:
        console.print(f"   bill, storage {x['dataset']} at {x['center']}: {x['gb_months']:.8f} GB-months")
    _ok(client.delete("/v1/datasets/demo-corpus"))
    if seen != "succeeded":
        raise RuntimeError(f"the data demo's job ended {seen}")


def _ok(r: Any) -> Any:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.headers.get("content-type", "").endswith("json") else r.text
