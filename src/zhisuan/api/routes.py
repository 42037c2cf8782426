"""The API's routes: thin maps from HTTP to the control layer's service (no business logic here)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from zhisuan.api.shapes import Say, candidates_json, job_json
from zhisuan.control.roles import role_of
from zhisuan.control.service import Service
from zhisuan.i18n import lang_of, translate
from zhisuan.model import JobState, Network
from zhisuan.store import Principal

Who = Callable[..., Awaitable[Principal]]


def speaker(network: Network) -> Callable[[Request], Say]:
    """A dependency: the server's sentences in the caller's language (Accept-Language), centers named as
    that language names them."""
    names = {c.name: c.name_zh for c in network.centers if c.name_zh}

    def say_for(request: Request) -> Say:
        lang = lang_of(request.headers.get("accept-language"))
        return lambda text: translate(text, lang, names)

    return say_for


class UsageReport(BaseModel):
    """A running job's own measurement, for chips without a driver sampler."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")
    busy_fraction: float = Field(ge=0, le=1, description="share of the job's devices busy since the last report")
    peak_memory_gib: float | None = Field(None, ge=0, le=1e6)
    watts: float | None = Field(None, ge=0, le=10_000, description="measured draw per device")


def add_routes(app: FastAPI, service: Service, principal: Who) -> None:
    language = speaker(service.network)

    @app.post("/v1/jobs", status_code=201)
    async def submit(request: Request, who: Principal = Depends(principal)) -> JSONResponse:  # noqa: B008
        # the hot path: a plain JSONResponse skips FastAPI's generic encoder (job_json is JSON-ready)
        key, body = request.headers.get("idempotency-key"), await request.body()
        rec = await service.submit_async(body, who, time.time(), key)  # no store call on the loop: control/intake.py
        return JSONResponse(job_json(rec), status_code=201)

    @app.get("/v1/jobs")
    def jobs(response: Response, state: Annotated[list[JobState] | None, Query()] = None,
             before: Annotated[str | None, Query(max_length=40)] = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 500,
             who: Principal = Depends(principal), say: Say = Depends(language)) -> list[dict[str, Any]]:  # noqa: B008
        """Your jobs (an admin's: everyone's), newest first; `X-Next-Before` names the cursor of the next page."""
        found = service.jobs(who, set(state) if state else None, before, limit)
        if len(found) == limit:
            response.headers["X-Next-Before"] = found[-1].id
        return [job_json(r, say) for r in found]

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str, who: Principal = Depends(principal),  # noqa: B008
            say: Say = Depends(language)) -> dict[str, Any]:  # noqa: B008
        # the record first: its transition is committed with its state, so the history read after holds it
        # (read the other way round, a job could show "succeeded" with a history that ends "running")
        rec = service.job(job_id, who)
        transitions = service.history(job_id, who)
        if transitions and transitions[-1].to_state is not rec.state:  # moved on between the two reads
            rec = service.job(job_id, who)
        history = [{"state": t.to_state.value, "at": t.at, "why": say(t.reason),
                    **({"by": t.actor, "seq": t.id} if who.admin else {})} for t in transitions]
        return {**job_json(rec, say), "history": history}

    @app.post("/v1/jobs/{job_id}/cancel")
    def cancel(job_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        return job_json(service.cancel(job_id, who, time.time()))

    @app.get("/v1/jobs/{job_id}/logs", response_class=PlainTextResponse)
    def logs(job_id: str, follow: bool = False, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        """The end of the job's stdout and stderr (the last MiB); with `follow=true`, a chunked stream until
        the job ends (at most 8 streams per tenant at once)."""
        if not follow:
            return PlainTextResponse(service.logs(job_id, who))
        service.job(job_id, who)  # 404 before the stream starts, not inside it
        stream = service.follow_logs(job_id, who)
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8")

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

    @app.get("/v1/centers")
    def centers(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return service.centers()

    @app.get("/v1/overview")
    def console(who: Principal = Depends(principal), say: Say = Depends(language)) -> dict[str, Any]:  # noqa: B008
        """The operator console: KPI tiles, per-center occupancy, queue and next free device, flows, alerts."""
        view = service.overview(who, time.time())
        for alert in view["alerts"]:
            alert["message"] = say(alert["message"])
        return view

    @app.get("/v1/whoami")
    def whoami(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Who the token acts for, and how to show times (the network's `control.timezone`)."""
        return {"tenant": who.tenant, "admin": who.admin, "role": role_of(who), "org": who.org,
                "centers": list(who.centers), "timezone": service.network.control.timezone}

    @app.get("/v1/control-plane")
    def control_plane(who: Principal = Depends(principal)) -> dict[str, Any]:  # noqa: B008
        """Which replica leads the control plane (runs the loop), its lease epoch, and whether it is this one."""
        return service.control_plane()

    @app.get("/v1/tenants")
    def tenants(who: Principal = Depends(principal)) -> list[dict[str, Any]]:  # noqa: B008
        return service.tenants(who)

    @app.get("/v1/jobs/{job_id}/candidates")
    def candidates(job_id: str, who: Principal = Depends(principal),  # noqa: B008
                   say: Say = Depends(language)) -> dict[str, Any]:  # noqa: B008
        return candidates_json(job_id, service.candidates(job_id, who, time.time()), say)

    @app.get("/v1/sim-reports")
    def sim_reports(who: Principal = Depends(principal)) -> list[dict[str, object]]:  # noqa: B008
        return service.sim_reports()

    @app.post("/v1/quote")
    async def quote(request: Request, who: Principal = Depends(principal),  # noqa: B008
                    say: Say = Depends(language)) -> dict[str, Any]:  # noqa: B008
        body = await request.body()
        spec, candidates = await anyio.to_thread.run_sync(service.quote, body, who, time.time())
        return candidates_json(spec.name, candidates, say)

