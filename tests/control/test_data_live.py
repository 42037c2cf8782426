"""Datasets live, on real S3 servers (`rclone serve s3`) at two centers: upload with checksums, a job whose
input is staged from the other center before it starts (and reads it), a transfer cut midway by a server
stop and resumed, eviction, cross-tenant reads refused, cancel during staging, and the bill's data lines."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.storage.conftest import rclone_children
from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.control.transfers import Mover
from zhisuan.engines import LocalEngine
from zhisuan.model import parse_network
from zhisuan.storage import S3Server
from zhisuan.store import JobStore, TokenStore, connect, migrate

RATE_GBIT = 0.016  # 2 MB/s between the two centers: a 6 MB dataset takes ~3 s to stage


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]
    service: Service
    loop: ControlLoop
    store: JobStore
    servers: dict[str, S3Server]
    tmp: Path

    def h(self, who: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def step_until(self, check: Any, limit: float = 60.0) -> None:
        end = time.time() + limit
        while time.time() < end:
            self.loop.step(time.time())
            if check():
                return
            time.sleep(0.1)
        raise AssertionError("timed out")


def _network(servers: dict[str, S3Server], tmp: Path, capacity_gb: float) -> dict[str, Any]:
    centers = []
    for name, region in (("east", "east"), ("west", "west")):
        creds = tmp / f"{name}-s3.json"
        s = servers[name]
        creds.write_text(json.dumps({"access_key": s.access_key, "secret_key": s.secret_key}))
        s.store("zhisuan")
        centers.append({"name": name, "region": region, "pue": 1.2, "carbon_kg_per_kwh": 0.5,
                        "pools": [{"name": "gpu", "accelerator": "A100-80GB", "nodes": 1, "devices_per_node": 2,
                                   "price_per_device_hour": 10.0, "device_ids": ["0", "1"]}],
                        "store": {"capacity_gb": capacity_gb, "cny_per_gb_month": 0.12, "endpoint": s.endpoint,
                                  "bucket": "zhisuan", "credentials_file": str(creds)}})
    return {"name": "two", "centers": centers, "tenants": [{"name": "acme"}, {"name": "lab"}],
            "links": [{"between": ["east", "west"], "bandwidth_gbit": RATE_GBIT, "rtt_ms": 20, "cny_per_gb": 0.5}]}


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    capacity = getattr(request, "param", 1.0)
    keys = {n: ("AK" + secrets.token_hex(6), secrets.token_hex(16)) for n in ("east", "west")}
    with (S3Server(tmp_path / "east-s3", name="east", access_key=keys["east"][0], secret_key=keys["east"][1]) as e,
          S3Server(tmp_path / "west-s3", name="west", access_key=keys["west"][0], secret_key=keys["west"][1]) as w):
        servers = {"east": e, "west": w}
        network = parse_network(_network(servers, tmp_path, capacity))
        engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
        migrate(engine)
        store, tokens = JobStore(engine), TokenStore(engine)
        loop = ControlLoop(store, network, LocalEngine(tmp_path / "runs", grace=0.5))
        service = Service(store, network, loop)
        assert service.mover is not None
        service.mover.cache = tmp_path / "runs" / "datasets"
        service.mover.start()
        client = TestClient(create_app(service, tokens))
        who = {"acme": tokens.issue("acme", 0.0), "lab": tokens.issue("lab", 0.0)}
        try:
            yield World(client, who, service, loop, store, servers, tmp_path)
        finally:
            service.mover.close()
    assert rclone_children() == []


def _put(w: World, name: str, files: dict[str, bytes], center: str = "east", who: str = "acme") -> dict[str, Any]:
    decl = [{"path": p, "size": len(b), "md5": hashlib.md5(b).hexdigest()} for p, b in files.items()]
    r = w.client.post("/v1/datasets", json={"name": name, "center": center, "files": decl}, headers=w.h(who))
    assert r.status_code == 201, r.text
    for p, b in files.items():
        r = w.client.put(f"/v1/datasets/{name}/files/{p}", content=b, headers=w.h(who))
        assert r.status_code == 204, r.text
    r = w.client.post(f"/v1/datasets/{name}/commit", headers=w.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def _files(n: int, size: int) -> dict[str, bytes]:
    return {f"part-{i}.bin": secrets.token_bytes(size) for i in range(n)}


def test_upload_is_checked_and_a_bad_or_foreign_one_is_refused(world: World) -> None:
    w = world
    files = _files(2, 1000)
    d = _put(w, "corpus", files)
    assert d["state"] == "ready" and d["size_bytes"] == 2000 and d["home"] == "east"
    shown = w.client.get("/v1/datasets/corpus", headers=w.h()).json()
    assert {f["md5"] for f in shown["file_list"]} == {hashlib.md5(b).hexdigest() for b in files.values()}
    assert [(r["center"], r["state"]) for r in shown["replicas"]] == [("east", "ready")]
    # a body that is not what was declared: 422, and the dataset stays unusable
    decl = [{"path": "x.bin", "size": 4, "md5": hashlib.md5(b"abcd").hexdigest()}]
    assert w.client.post("/v1/datasets", json={"name": "other", "center": "east", "files": decl},
                         headers=w.h()).status_code == 201
    r = w.client.put("/v1/datasets/other/files/x.bin", content=b"abce", headers=w.h())
    assert r.status_code == 422 and "md5" in r.text
    assert w.client.post("/v1/datasets/other/commit", headers=w.h()).status_code == 409
    for bad, field in (({"name": "a/b", "center": "east", "files": decl}, "name"),
                       ({"name": "ok", "center": "mars", "files": decl}, "center"),
                       ({"name": "ok", "center": "east", "files": [{**decl[0], "path": "../x"}]}, "files.0.path"),
                       ({"name": "ok", "center": "east", "files": [{**decl[0], "size": 10**12}]}, "files")):
        r = w.client.post("/v1/datasets", json=bad, headers=w.h())
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    # another tenant sees nothing of it, and its jobs may not read it until it is shared
    assert w.client.get("/v1/datasets/acme:corpus", headers=w.h("lab")).status_code == 404
    assert w.client.get("/v1/datasets", headers=w.h("lab")).json() == []
    job = {"name": "peek", "resources": {"accelerators": "A100-80GB:1"}, "run": "true",
           "inputs": {"train": "acme:corpus"}}
    r = w.client.post("/v1/jobs", json=job, headers=w.h("lab"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "inputs.train"
    assert w.client.put("/v1/datasets/corpus/sharing", json={"tenants": ["lab"]}, headers=w.h()).status_code == 200
    assert w.client.post("/v1/jobs", json=job, headers=w.h("lab")).status_code == 201


def test_a_job_stages_its_input_from_the_other_center_reads_it_and_the_bill_shows_it(world: World) -> None:
    w = world
    files = _files(3, 2_000_000)  # 6 MB at 2 MB/s
    _put(w, "corpus", files)
    job = {"name": "train", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["west"]},
           "inputs": {"train": "corpus"},
           "run": "cd $ZHISUAN_INPUT_TRAIN && md5sum part-*.bin && touch part-0.bin 2>/dev/null || echo read-only"}
    r = w.client.post("/v1/jobs", json=job, headers=w.h())
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    w.step_until(lambda: w.store.get(job_id).state.value == "staging")
    seen = w.client.get(f"/v1/jobs/{job_id}/transfers", headers=w.h()).json()
    assert seen and seen[0]["source"] == "east" and seen[0]["target"] == "west" and seen[0]["bytes_total"] == 6_000_000
    assert w.client.get(f"/v1/jobs/{job_id}/transfers", headers=w.h("lab")).status_code == 404
    w.step_until(lambda: w.store.get(job_id).state.value in ("succeeded", "failed"), limit=90)
    rec = w.store.get(job_id)
    assert rec.state.value == "succeeded", rec.reason
    logs = w.client.get(f"/v1/jobs/{job_id}/logs", headers=w.h()).text
    for name, body in files.items():
        assert f"{hashlib.md5(body).hexdigest()}  {name}" in logs
    assert "read-only" in logs
    states = [t.to_state.value for t in w.store.transitions(job_id)]
    assert states[:5] == ["pending", "scheduled", "staging", "scheduled", "running"]
    # the job read its checked copy on west's disk; west's store gets the replica right after, at local speed
    w.step_until(lambda: w.client.get(f"/v1/jobs/{job_id}/transfers", headers=w.h()).json()[0]["state"] == "done")
    moved = w.client.get(f"/v1/jobs/{job_id}/transfers", headers=w.h()).json()[0]
    assert moved["bytes_done"] == 6_000_000
    assert moved["ended_at"] - moved["started_at"] >= 2.0  # the link's cap held
    replicas = {r["center"]: r["state"] for r in w.client.get("/v1/datasets/corpus", headers=w.h()).json()["replicas"]}
    assert replicas == {"east": "ready", "west": "ready"}
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
    bill = w.client.get(f"/v1/invoices/acme/{month}", headers=w.h()).json()
    assert [(t["source"], t["target"], t["transfers"]) for t in bill["transfers"]] == [("east", "west", 1)]
    assert bill["transfers"][0]["cny"] == pytest.approx(0.006 * 0.5)
    assert {s["center"] for s in bill["storage"]} == {"east", "west"} and all(s["cny"] > 0 for s in bill["storage"])
    assert bill["totals"]["total_cny"] == pytest.approx(bill["totals"]["cny"] + bill["totals"]["storage_cny"]
                                                        + bill["totals"]["transfer_cny"])


def test_a_dataset_removed_and_made_again_under_its_name_loses_its_old_objects_only(world: World) -> None:
    w = world
    _put(w, "corpus", {"old.bin": b"old" * 300})
    assert w.service.mover is not None
    w.service.mover.close()  # the old one's objects are deleted later, by a mover
    assert w.client.delete("/v1/datasets/corpus", headers=w.h()).status_code == 204
    again = _files(2, 1000)
    _put(w, "corpus", again)
    datasets = w.service.data.datasets
    sweeper = Mover(w.service.network, datasets, w.service.data.stores)
    sweeper.start()
    try:
        w.step_until(lambda: not datasets.removed_with_replicas())  # the sweep of the old one is over
    finally:
        sweeper.close()
    new = datasets.get("acme", "corpus")
    east = w.servers["east"].root / "zhisuan" / "datasets" / "acme" / "corpus"
    assert {p.relative_to(east).as_posix(): p.read_bytes() for p in east.rglob("*") if p.is_file()} == {
        f"{new.id}/{name}": body for name, body in again.items()}  # the old one's objects are gone, not the new


def test_a_transfer_cut_by_a_server_stop_resumes_without_a_second_copy(world: World) -> None:
    w = world
    files = _files(6, 1_000_000)  # 6 files: a resumed copy skips the ones already there
    _put(w, "corpus", files)
    r = w.client.post("/v1/datasets/corpus/replicas", json={"to": "west"}, headers=w.h())
    assert r.status_code == 202, r.text
    tid = r.json()["id"]
    datasets = w.service.data.datasets
    w.step_until(lambda: (t := datasets.transfer(tid)) is not None and t.bytes_done > 0)
    assert w.service.mover is not None
    w.service.mover.close()  # the server stops mid-copy: the row stays `running`
    servers = {s.pid for s in w.servers.values()}
    assert datasets.transfer(tid).state == "running" and set(rclone_children()) == servers  # no copy left
    again = Mover(w.service.network, datasets, w.service.data.stores)
    again.start()  # a new server: it resumes the copy
    try:
        w.step_until(lambda: datasets.transfer(tid).state == "done", limit=60)
    finally:
        again.close()
    t = datasets.transfer(tid)
    assert t.attempts == 2 and len(datasets.transfers()) == 1
    west = w.servers["west"].root / "zhisuan" / datasets.get("acme", "corpus").prefix
    assert sorted(p.name for p in west.iterdir()) == sorted(files)  # no partial or duplicate object


def test_cancelling_a_staging_job_stops_its_transfer_and_leaves_nothing_at_the_target(world: World) -> None:
    w = world
    _put(w, "corpus", _files(4, 2_000_000))
    job = {"name": "train", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["west"]},
           "inputs": {"train": "corpus"}, "run": "true"}
    job_id = w.client.post("/v1/jobs", json=job, headers=w.h()).json()["id"]
    w.step_until(lambda: w.store.get(job_id).state.value == "staging")
    assert w.client.post(f"/v1/jobs/{job_id}/cancel", headers=w.h()).status_code == 200
    datasets = w.service.data.datasets
    w.step_until(lambda: all(t.state == "cancelled" for t in datasets.transfers(job_id=job_id)))
    w.step_until(lambda: not any(r.center == "west" for r in datasets.replicas()))
    west = w.servers["west"].root / "zhisuan" / "datasets" / "acme" / "corpus"
    assert not west.exists() or not any(west.iterdir())


@pytest.mark.parametrize("world", [0.000012], indirect=True)  # 12 kB stores: room for one 8 kB dataset
def test_a_full_store_evicts_a_copy_the_network_holds_elsewhere(world: World) -> None:
    w = world
    _put(w, "old", _files(1, 8000))
    _put(w, "new", _files(1, 8000))
    datasets = w.service.data.datasets
    assert w.client.post("/v1/datasets/old/replicas", json={"to": "west"}, headers=w.h()).status_code == 202
    w.step_until(lambda: any(r.center == "west" and r.state == "ready" for r in datasets.replicas()))
    job = {"name": "train", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["west"]},
           "inputs": {"train": "new"}, "run": "cat $ZHISUAN_INPUT_TRAIN/part-0.bin | wc -c"}
    job_id = w.client.post("/v1/jobs", json=job, headers=w.h()).json()["id"]
    w.step_until(lambda: w.store.get(job_id).state.value in ("succeeded", "failed"), limit=60)
    assert w.store.get(job_id).state.value == "succeeded", w.store.get(job_id).reason
    old, new = datasets.get("acme", "old"), datasets.get("acme", "new")
    assert [r.center for r in datasets.replicas(old.id)] == ["east"]  # west's copy of `old` made room
    assert sorted(r.center for r in datasets.replicas(new.id)) == ["east", "west"]
    assert not (w.servers["west"].root / "zhisuan" / "datasets" / "acme" / "old").exists() or not any(
        (w.servers["west"].root / "zhisuan" / "datasets" / "acme" / "old").iterdir())


def test_a_copy_whose_checksum_does_not_match_fails_the_job_naming_the_file(world: World) -> None:
    w = world
    _put(w, "corpus", _files(2, 100_000))
    prefix = w.service.data.datasets.get("acme", "corpus").prefix
    (w.servers["east"].root / "zhisuan" / prefix / "part-1.bin").write_bytes(b"x" * 100_000)
    job = {"name": "train", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["west"]},
           "inputs": {"train": "corpus"}, "run": "true"}
    job_id = w.client.post("/v1/jobs", json=job, headers=w.h()).json()["id"]
    w.step_until(lambda: w.store.get(job_id).state.value in ("succeeded", "failed"))
    rec = w.store.get(job_id)
    assert rec.state.value == "failed" and "checksum mismatch at west: part-1.bin" in (rec.reason or "")
    datasets = w.service.data.datasets
    assert [r.center for r in datasets.replicas(datasets.get("acme", "corpus").id)] == ["east"]  # no bad copy kept


def test_a_replication_rule_is_kept_by_the_network_and_pins_its_copies(world: World) -> None:
    w = world
    _put(w, "corpus", _files(2, 50_000))
    r = w.client.put("/v1/datasets/corpus/rule", json={"copies": 2, "regions": ["west"]}, headers=w.h())
    assert r.status_code == 204, r.text
    datasets = w.service.data.datasets
    d = datasets.get("acme", "corpus")
    w.step_until(lambda: sorted((x.center, x.state, x.pinned) for x in datasets.replicas(d.id)) ==
                 [("east", "ready", True), ("west", "ready", True)])
    for bad, field in (({"copies": 3}, "copies"), ({"copies": 1, "regions": ["mars"]}, "regions.0"),
                       ({"copies": 1, "regions": ["east", "west"]}, "regions")):
        r = w.client.put("/v1/datasets/corpus/rule", json=bad, headers=w.h())
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text


def test_a_server_restarted_while_a_job_stages_finishes_the_staging_and_runs_it_once(world: World) -> None:
    w = world
    _put(w, "corpus", _files(4, 1_000_000))  # 4 MB at 2 MB/s
    job = {"name": "train", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["west"]},
           "inputs": {"train": "corpus"}, "run": "ls $ZHISUAN_INPUT_TRAIN | wc -l"}
    job_id = w.client.post("/v1/jobs", json=job, headers=w.h()).json()["id"]
    datasets = w.service.data.datasets
    w.step_until(lambda: any(t.bytes_done > 0 for t in datasets.transfers(job_id=job_id)))
    assert w.service.mover is not None
    w.service.mover.close()  # the server dies mid-copy
    loop = ControlLoop(w.store, w.service.network, LocalEngine(w.tmp / "runs", grace=0.5))
    again = Service(w.store, w.service.network, loop)
    assert again.mover is not None
    again.mover.cache = w.tmp / "runs" / "datasets"
    again.mover.start()
    try:
        end = time.time() + 60
        while time.time() < end and not w.store.get(job_id).state.terminal:
            loop.step(time.time())
            time.sleep(0.1)
    finally:
        again.mover.close()
    rec = w.store.get(job_id)
    assert rec.state.value == "succeeded", rec.reason
    assert [t.to_state.value for t in w.store.transitions(job_id)].count("running") == 1
    moved = datasets.transfers(job_id=job_id)
    assert len(moved) == 1 and moved[0].state == "done" and moved[0].attempts == 2


def test_a_tenant_cannot_flood_the_movers_with_copies(world: World) -> None:
    w = world
    for i in range(9):
        _put(w, f"d{i}", {"x.bin": b"x" * 10}, center="east")
    assert w.service.mover is not None
    w.service.mover.close()  # nothing moves: the copies stay queued
    codes = [w.client.post(f"/v1/datasets/d{i}/replicas", json={"to": "west"}, headers=w.h()).status_code
             for i in range(9)]
    assert codes == [202] * 8 + [429]
    assert w.client.post("/v1/datasets/d0/replicas", json={"to": "west"}, headers=w.h("lab")).status_code == 404


def test_a_succeeded_jobs_outputs_become_a_dataset_and_its_links_are_not_followed(world: World) -> None:
    w = world
    job = {"name": "write", "resources": {"accelerators": "A100-80GB:1"}, "constraints": {"regions": ["east"]},
           "outputs": {"steal": "out/root/etc", "ckpt": "out"},  # in this order: one, then the other
           "run": "mkdir -p out/sub && echo one > out/a.txt && echo two > out/sub/b.txt && "
                  "ln -s /etc/shadow out/evil && ln -s / out/root && mkfifo out/pipe"}
    job_id = w.client.post("/v1/jobs", json=job, headers=w.h()).json()["id"]
    w.step_until(lambda: w.store.get(job_id).state.value in ("succeeded", "failed"))
    assert w.store.get(job_id).state.value == "succeeded", w.store.get(job_id).reason
    datasets = w.service.data.datasets
    w.step_until(lambda: (d := datasets.get("acme", "ckpt")) is not None and d.state == "ready")
    shown = w.client.get("/v1/datasets/ckpt", headers=w.h()).json()
    files = {f["path"]: f["md5"] for f in shown["file_list"]}
    assert files == {"a.txt": hashlib.md5(b"one\n").hexdigest(), "sub/b.txt": hashlib.md5(b"two\n").hexdigest()}
    assert [r["center"] for r in shown["replicas"]] == ["east"]
    # an output named through a link in the job's folder (out/root -> /) is not read
    assert datasets.get("acme", "steal") is None
