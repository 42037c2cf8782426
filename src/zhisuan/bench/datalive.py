"""Live staging throughput: a 1 GiB input staged by zhisuan (a job placed at the other center; from `staging`
to its inputs checked and handed to the job) against the same copy made by rclone directly — east's store to
west's disk, where west's jobs read it — on the same capped link, between real S3 servers (`rclone serve s3`)
on loopback. zhisuan's staging adds the scheduler's hand-off, the MD5 check of every file against the
dataset's declared checksums, and the copy into west's store after the job may start (not on its path)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.model import JobState, Network, parse_network
from zhisuan.storage import S3Server, put
from zhisuan.storage.fetch import fetch
from zhisuan.store import JobStore, connect, migrate
from zhisuan.store.tokens import Principal


@dataclass(frozen=True)
class StagingRun:
    size_bytes: int
    gbit: float
    rclone_seconds: float
    zhisuan_seconds: float

    @property
    def pct(self) -> float:
        """zhisuan's throughput as % of rclone's (time ratio, same bytes)."""
        return 100.0 * self.rclone_seconds / self.zhisuan_seconds


def _network(servers: dict[str, S3Server], folder: Path, gbit: float) -> dict[str, object]:
    centers = []
    for name in ("east", "west"):
        s = servers[name]
        creds = folder / f"{name}.json"
        creds.write_text(json.dumps({"access_key": s.access_key, "secret_key": s.secret_key}))
        s.store("zhisuan")
        centers.append({"name": name, "region": name, "pue": 1.2, "carbon_kg_per_kwh": 0.5,
                        "pools": [{"name": "cpu", "accelerator": "none", "nodes": 1, "devices_per_node": 0,
                                   "cpus_per_node": 2, "price_per_cpu_hour": 0.1}],
                        "store": {"capacity_gb": 100, "cny_per_gb_month": 0.12, "endpoint": s.endpoint,
                                  "bucket": "zhisuan", "credentials_file": str(creds)}})
    return {"name": "bench", "centers": centers,
            "links": [{"between": ["east", "west"], "bandwidth_gbit": gbit, "cny_per_gb": 0.5}]}


def _file(path: Path, size: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def run(size_bytes: int = 1 << 30, gbit: float = 0.8) -> StagingRun:
    with tempfile.TemporaryDirectory(prefix="zhisuan-bench-data-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o711)  # the job's uid passes through to its own folder
        keys = {n: ("AK" + secrets.token_hex(6), secrets.token_hex(16)) for n in ("east", "west")}
        with (S3Server(folder / "east", name="east", access_key=keys["east"][0], secret_key=keys["east"][1]) as e,
              S3Server(folder / "west", name="west", access_key=keys["west"][0], secret_key=keys["west"][1]) as w):
            servers = {"east": e, "west": w}
            network = parse_network(_network(servers, folder, gbit))
            blob = folder / "input.bin"
            md5 = _file(blob, size_bytes)
            east = e.store("zhisuan")
            put(blob, east, "direct")
            t0 = time.perf_counter()
            fetch(east, "direct", folder / "direct", bwlimit_bytes_per_s=gbit * 1e9 / 8)
            direct = time.perf_counter() - t0
            shutil.rmtree(folder / "direct")
            return StagingRun(size_bytes, gbit, direct, _through_zhisuan(network, folder, blob, md5))


def _through_zhisuan(network: Network, folder: Path, blob: Path, md5: str) -> float:
    engine = connect(f"sqlite:///{folder / 'z.db'}")
    migrate(engine)
    store = JobStore(engine)
    loop = ControlLoop(store, network, LocalEngine(folder / "runs", grace=0.5))
    service = Service(store, network, loop)
    assert service.mover is not None
    service.mover.cache = folder / "runs" / "datasets"
    service.mover.start()
    try:
        data, now = service.data, time.time()
        data.begin("bench", "input", "east", [("input.bin", blob.stat().st_size, md5)], now)
        data.receive("bench", "input", "input.bin", blob)
        data.commit("bench", "input", time.time())
        spec = ("name: read\ntenant: bench\nresources: {cpus: 1}\nconstraints: {regions: [west]}\n"
                "inputs: {data: input}\nrun: test -s $ZHISUAN_INPUT_DATA/input.bin\n")
        job = service.submit(spec, Principal("bench", False), time.time())
        end = time.time() + 3600
        while time.time() < end:
            loop.step(time.time())
            rec = store.get(job.id)
            if rec is not None and rec.state.terminal:
                break
            time.sleep(0.25)  # the server's control interval is 1 s; a bench that polls faster steals CPU
        marks = {t.to_state: t.at for t in store.transitions(job.id)}
        rec = store.get(job.id)
        if rec is None or rec.state is not JobState.SUCCEEDED or JobState.STAGING not in marks:
            raise RuntimeError(f"the staged job did not succeed: {rec.reason if rec else 'gone'}")
        staged = [t.at for t in store.transitions(job.id) if t.to_state is JobState.SCHEDULED][-1]
        return staged - marks[JobState.STAGING]
    finally:
        service.mover.close()
