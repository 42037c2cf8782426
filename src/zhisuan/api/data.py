"""The data API: datasets (upload, list, show, share, rules, replicate, remove) and transfers. Thin maps to
the control layer's DataService; file bodies are streamed to a temporary file off the event loop, never
held in memory, and cut off past the size the upload declared."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.api.routes import Who
from zhisuan.control.datasets import MAX_FILES, DataService
from zhisuan.control.errors import NotFound, Unavailable
from zhisuan.model import SpecError
from zhisuan.store import Principal
from zhisuan.store.datasets import DatasetRecord, ReplicaRecord, TransferRecord

SPARE = 4 << 30  # bytes an upload leaves free on the server's disk


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FileDecl(_Body):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0, le=1 << 50)
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")


class NewDataset(_Body):
    name: str = Field(min_length=1, max_length=200)
    center: str = Field(min_length=1, max_length=64)
    files: list[FileDecl] = Field(min_length=1, max_length=MAX_FILES)


class Sharing(_Body):
    tenants: list[str] = Field(max_length=256)


class Rule(_Body):
    copies: int | None = Field(None, ge=1, le=64)
    regions: list[str] = Field(default_factory=list, max_length=64)


class Replicate(_Body):
    to: str = Field(min_length=1, max_length=64)


def dataset_json(d: DatasetRecord) -> dict[str, Any]:
    return {"id": d.id, "owner": d.owner, "name": d.name, "ref": d.ref, "state": d.state, "size_bytes": d.size_bytes,
            "files": d.files, "home": d.home, "shared_with": list(d.shared_with), "created_at": d.created_at,
            "rule": {"copies": d.rule_copies, "regions": list(d.rule_regions)}}


def replica_json(r: ReplicaRecord) -> dict[str, Any]:
    return {"center": r.center, "state": r.state, "size_bytes": r.size_bytes, "pinned": r.pinned,
            "created_at": r.created_at, "last_used": r.last_used}


def transfer_json(t: TransferRecord) -> dict[str, Any]:
    return {"id": t.id, "source": t.source, "target": t.target, "job": t.job_id, "state": t.state,
            "bytes_total": t.bytes_total, "bytes_done": t.bytes_done, "rate": t.rate, "attempts": t.attempts,
            "error": t.error, "cny": round(t.cny, 6), "started_at": t.started_at, "ended_at": t.ended_at}


async def _spool(request: Request, limit: int) -> Path:
    """The request body in a private temporary file, refused past `limit` bytes — and refused at once when the
    server's disk could not hold it with room to spare (one upload never fills the server's disk)."""
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if limit > free - SPARE:
        raise Unavailable(f"the server cannot receive {limit:,} bytes now ({free:,} free); retry later")
    fd, name = tempfile.mkstemp(prefix="zhisuan-upload-")
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise SpecError([("body", f"more than the {limit} bytes declared for this file")])
                await anyio.to_thread.run_sync(f.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def add_data_routes(app: FastAPI, data: DataService, principal: Who) -> None:
    call = anyio.to_thread.run_sync

    @app.post("/v1/datasets", status_code=201)
    def begin(body: NewDataset, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Declare a dataset and its files (path, size, MD5); PUT each file, then POST …/commit."""
        d = data.begin(who.tenant, body.name, body.center, [(f.path, f.size, f.md5) for f in body.files], time.time())
        return dataset_json(d)

    @app.put("/v1/datasets/{name}/files/{path:path}", status_code=204)
    async def upload(name: str, path: str, request: Request, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        d = await call(data.own, who.tenant, name)
        declared = (await call(data.datasets.files, d.id)).get(path)
        if declared is None:
            raise SpecError([("path", f"{path[:64]!r} is not one of the dataset's declared files")])
        spooled = await _spool(request, declared[0])
        try:
            await call(data.receive, who.tenant, name, path, spooled)
        finally:
            spooled.unlink(missing_ok=True)
        return Response(status_code=204)

    @app.post("/v1/datasets/{name}/commit")
    def commit(name: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return dataset_json(data.commit(who.tenant, name, time.time()))

    @app.get("/v1/datasets")
    def listing(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """Your datasets and those shared with you."""
        return [dataset_json(d) for d in data.visible(who.tenant)]

    @app.get("/v1/datasets/{ref}")
    def show(ref: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """A dataset: its files with checksums, its replicas and their state, its transfers."""
        d, files, replicas = data.show(who.tenant, ref)
        out = dataset_json(d)
        out["file_list"] = [{"path": p, "size": s, "md5": m} for p, (s, m) in sorted(files.items())[:1000]]
        out["replicas"] = [replica_json(r) for r in replicas]
        out["transfers"] = [transfer_json(t) for t in data.datasets.transfers(dataset_id=d.id)
                            if t.owner == who.tenant or d.owner == who.tenant][-50:]
        return out

    @app.delete("/v1/datasets/{name}", status_code=204)
    def remove(name: str, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        data.remove(who.tenant, name, time.time())
        return Response(status_code=204)

    @app.put("/v1/datasets/{name}/sharing")
    def share(name: str, body: Sharing, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return dataset_json(data.share(who.tenant, name, body.tenants, time.time()))

    @app.put("/v1/datasets/{name}/rule", status_code=204)
    def rule(name: str, body: Rule, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        data.rule(who.tenant, name, body.copies, body.regions, time.time())
        return Response(status_code=204)

    @app.post("/v1/datasets/{name}/replicas", status_code=202)
    def replicate(name: str, body: Replicate, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Copy the dataset to another center's store; follow it in GET /v1/datasets/{name}."""
        transfer = data.datasets.transfer(data.replicate(who.tenant, name, body.to, time.time()))
        assert transfer is not None
        return transfer_json(transfer)

    @app.get("/v1/jobs/{job_id}/transfers")
    def job_transfers(job_id: str, who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        """What a job's staging moved or is moving: bytes done of total, rate, state."""
        found = data.datasets.transfers(job_id=job_id)
        if found and found[0].owner != who.tenant and not who.admin:
            raise NotFound(job_id)
        return [transfer_json(t) for t in found]
