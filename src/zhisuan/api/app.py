"""The REST API. Bearer tokens per tenant (stored hashed); a tenant sees and cancels only its own jobs;
errors are RFC 7807 problem+json that name the field; OpenAPI at /openapi.json and /docs."""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from zhisuan.api.metrics import render
from zhisuan.control.service import Conflict, Forbidden, NotFound, Service
from zhisuan.model import SpecError
from zhisuan.scheduler import Candidate
from zhisuan.store import JobRecord, Principal, TokenStore
from zhisuan.web import STATIC

PROBLEM = "application/problem+json"


class Unauthorized(Exception):
    pass


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def job_json(r: JobRecord) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "tenant": r.tenant, "state": r.state.value, "priority": r.priority,
            "submitted_at": r.submitted_at, "updated_at": r.updated_at, "center": r.center, "pool": r.pool,
            "nodes": list(r.nodes), "devices": [list(d) for d in r.devices], "exit_code": r.exit_code,
            "reason": r.reason, "attempts": r.attempts, "wait_reason": r.wait_reason,
            "expected_start": r.expected_start}


class UsageReport(BaseModel):
    """A running job's own measurement, for chips without a driver sampler."""

    busy_fraction: float = Field(ge=0, le=1, description="share of the job's devices busy since the last report")
    peak_memory_gib: float | None = Field(None, ge=0)
    watts: float | None = Field(None, ge=0, description="measured draw per device")


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"center": c.center, "pool": c.pool, "score": None if math.isnan(c.score) else round(c.score, 2),
            "expected_start_s": None if math.isinf(c.start_delay) else c.start_delay, "cny": round(c.cost, 2),
            "kg_co2": round(c.carbon, 3), "runtime_s": c.runtime, "rejected_by": list(c.rejected),
            "waits_for": list(c.waits_for)}


def create_app(service: Service, tokens: TokenStore) -> FastAPI:
    app = FastAPI(title="zhisuan", version="0.1.0", description="an open compute-power network for AI centers")
    bearer = HTTPBearer(auto_error=False)

    # async: a sync dependency would cost a worker-thread hop on every request; valid tokens are cached
    async def principal(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:  # noqa: B008
        who = tokens.principal(cred.credentials) if cred else None
        if who is None:
            raise Unauthorized()
        return who

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, __: Unauthorized) -> JSONResponse:
        return problem(401, "Unauthorized", "a valid bearer token is required (Authorization: Bearer ...)")

    @app.exception_handler(SpecError)
    async def _bad_spec(_: Request, e: SpecError) -> JSONResponse:
        return problem(422, "Invalid job spec", str(e), [{"field": f, "message": m} for f, m in e.errors])

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, e: Forbidden) -> JSONResponse:
        return problem(403, "Forbidden", str(e))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, e: Conflict) -> JSONResponse:
        return problem(409, "Conflict", str(e))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(x) for x in err["loc"] if x not in ("body", "query")),
                   "message": err["msg"]} for err in e.errors()]
        return problem(422, "Invalid request", "; ".join(f"{x['field']}: {x['message']}" for x in errors), errors)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, e: NotFound) -> JSONResponse:
        return problem(404, "Not found", f"no job {e.args[0]!r}")

    @app.post("/v1/jobs", status_code=201)
    async def submit(request: Request, who: Principal = Depends(principal)) -> JSONResponse:  # noqa: B008
        # the hot path: a plain JSONResponse skips FastAPI's generic encoder (job_json is JSON-ready)
        return JSONResponse(job_json(service.submit(await request.body(), who, time.time())), status_code=201)

    @app.get("/v1/jobs")
    def jobs(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return [job_json(r) for r in service.jobs(who)]

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        history = [{"state": t.to_state.value, "at": t.at, "why": t.reason} for t in service.history(job_id, who)]
        return {**job_json(service.job(job_id, who)), "history": history}

    @app.post("/v1/jobs/{job_id}/cancel")
    def cancel(job_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return job_json(service.cancel(job_id, who, time.time()))

    @app.get("/v1/jobs/{job_id}/logs", response_class=PlainTextResponse)
    def logs(job_id: str, follow: bool = False, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        """The job's stdout and stderr; with `follow=true`, a chunked stream until the job ends."""
        if not follow:
            return PlainTextResponse(service.logs(job_id, who))
        service.job(job_id, who)  # 404 before the stream starts, not inside it
        return StreamingResponse(service.follow_logs(job_id, who), media_type="text/plain; charset=utf-8")

    @app.post("/v1/jobs/{job_id}/usage", status_code=202)
    def report_usage(job_id: str, report: UsageReport, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        service.report_usage(job_id, who, time.time(), report.busy_fraction, report.peak_memory_gib, report.watts)
        return {"job": job_id, "accepted": True}

    @app.get("/v1/invoices/{tenant}/{month}.csv", response_class=PlainTextResponse)
    def invoice_csv(tenant: str, month: str, who: Principal = Depends(principal)) -> str:  # noqa: B008
        return service.invoice(tenant, month, who).to_csv()

    @app.get("/v1/invoices/{tenant}/{month}")
    def invoice(tenant: str, month: str, who: Principal = Depends(principal)) -> dict[str, object]:  # noqa: B008
        return service.invoice(tenant, month, who).to_json()

    @app.get("/v1/reports/utilization")
    def utilization(since: float | None = None, until: float | None = None, bucket: float = 3600.0,
                    center: str | None = None, who: Principal = Depends(principal)) -> dict[str, object]:  # noqa: B008
        """Allocated, busy and idle-while-allocated per center and chip (default: the last 24 h, hourly)."""
        now = time.time()
        end = until if until is not None else now
        return service.utilization(who, since if since is not None else end - 86400, end, bucket, center)

    @app.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    def metrics() -> Response:
        """Prometheus scrape target (no token, as exporters go: the server listens on loopback by default)."""
        return Response(render(service), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/centers")
    def centers(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return service.centers()

    @app.get("/v1/whoami")
    def whoami(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return {"tenant": who.tenant, "admin": who.admin}

    @app.get("/v1/tenants")
    def tenants(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return service.tenants(who)

    @app.get("/v1/jobs/{job_id}/candidates")
    def candidates(job_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return {"job": job_id, "candidates": [candidate_json(c) for c in service.candidates(job_id, who, time.time())]}

    @app.get("/v1/sim-reports")
    def sim_reports(who: Principal = Depends(principal)) -> list[dict[str, object]]:  # noqa: B008
        return service.sim_reports()

    @app.post("/v1/quote")
    async def quote(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        spec, candidates = service.quote(await request.body(), who, time.time())
        return {"job": spec.name, "candidates": [candidate_json(c) for c in candidates]}

    if service.reports is not None:
        service.reports.mkdir(parents=True, exist_ok=True)
        app.mount("/sim-reports", StaticFiles(directory=service.reports, html=True), name="sim-reports")
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")  # last: the API routes win
    return app
