"""The REST API. Bearer tokens per tenant (stored hashed); a tenant sees and cancels only its own jobs;
errors are RFC 7807 problem+json that name the field; OpenAPI at /openapi.json and /docs."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from zhisuan.api.admin import add_admin_routes, by
from zhisuan.api.agents import add_agent_routes
from zhisuan.api.data import add_data_routes
from zhisuan.api.funds import add_funds_routes
from zhisuan.api.gateway import add_gateway_routes, add_service_routes
from zhisuan.api.leader_relay import LeaderRelay
from zhisuan.api.limits import Limits
from zhisuan.api.metrics import render
from zhisuan.api.operator import add_operator_routes
from zhisuan.api.orgs import add_org_routes
from zhisuan.api.relay import add_relay_routes
from zhisuan.api.routes import add_routes
from zhisuan.api.shapes import problem
from zhisuan.api.sso import add_sso_routes
from zhisuan.charts import VENDOR
from zhisuan.control.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    SignOnRefused,
    TooMany,
    Unavailable,
)
from zhisuan.control.orgs import Organisations
from zhisuan.control.roles import NEEDS, refusal
from zhisuan.control.service import Service
from zhisuan.control.sso import SingleSignOn
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.proxy import PATHS, Gateway
from zhisuan.i18n import lang_of, translate
from zhisuan.model import JobSpec, SpecError
from zhisuan.store import Principal, TokenStore
from zhisuan.store.sso import PendingLogins
from zhisuan.web import STATIC

log = logging.getLogger("zhisuan.api")


def said(request: Request, title: str) -> str:
    """A problem's title in the caller's language (Accept-Language); its detail names fields as the spec does."""
    return translate(title, lang_of(request.headers.get("accept-language"))) or title
SESSION = "zhisuan_session"  # the dashboard's cookie: the token, HttpOnly, only for the simulation reports

class Unauthorized(Exception):
    pass


def create_app(service: Service, tokens: TokenStore, gateway: Gateway | None = None,
               agents_at: str | None = None) -> FastAPI:
    """`agents_at`: on an API worker, its server's URL, where centers' agents are handed (serve/workers.py)."""
    # FastAPI's own OpenTelemetry bridge off: nothing here exports traces, and asking on every request whether
    # a provider is configured cost the hot path
    app = FastAPI(title="zhisuan", version="0.1.0", description="an open compute-power network for AI centers",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.service = service
    bearer = HTTPBearer(auto_error=False)

    # async, and reading the header itself: a sync dependency would cost a worker-thread hop on every request,
    # a nested one (HTTPBearer) another solve; tokens checked lately are answered from memory, others read from
    # the store off the event loop. The OpenAPI schema declares the bearer scheme (openapi() below).
    async def principal(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token, who = token.strip(), None
        if scheme.lower() == "bearer" and token:
            hit, who = tokens.cached(token)
            if not hit:
                who = await anyio.to_thread.run_sync(tokens.principal, token)
        if who is None:
            raise Unauthorized()
        route = request.scope.get("route")
        refused = refusal(who, request.method, route.path if route is not None else request.url.path)
        if refused is not None:
            raise Forbidden(refused)
        client = request.scope.get("client")
        return replace(who, origin=client[0]) if client else who  # from where, for the trail

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, __: Unauthorized) -> JSONResponse:
        if request.url.path in (*PATHS, "/v1/models"):  # OpenAI clients read OpenAI's error shape
            return JSONResponse(GatewayError(401, "a valid bearer token is required", code="invalid_api_key").body(),
                                401)
        return problem(401, said(request, "Unauthorized"),
                       "a valid bearer token is required (Authorization: Bearer ...)")

    @app.exception_handler(SpecError)
    async def _bad_spec(request: Request, e: SpecError) -> JSONResponse:
        spec = request.method == "POST" and request.url.path in ("/v1/jobs", "/v1/quote")
        return problem(422, said(request, "Invalid job spec" if spec else "Invalid request"), str(e),
                       [{"field": f, "message": m} for f, m in e.errors])

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, e: Forbidden) -> JSONResponse:
        return problem(403, said(request, "Forbidden"), str(e))

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, e: Conflict) -> JSONResponse:
        return problem(409, said(request, "Conflict"), str(e))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(x) for x in err["loc"] if x not in ("body", "query")),
                   "message": err["msg"]} for err in e.errors()]
        detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors)
        return problem(422, said(request, "Invalid request"), detail, errors)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, e: NotFound) -> JSONResponse:
        return problem(404, said(request, "Not found"), f"no {e.what} {e.key!r}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:  # 404 of no route, 405, ...
        return problem(e.status_code, str(e.detail), str(e.detail), headers=dict(e.headers or {}))

    @app.exception_handler(SignOnRefused)
    async def _sign_on(_: Request, e: SignOnRefused) -> JSONResponse:
        return problem(401, "Unauthorized", str(e))

    @app.exception_handler(PaymentRequired)
    async def _payment(_: Request, e: PaymentRequired) -> JSONResponse:
        return problem(402, "Payment required", str(e))

    @app.exception_handler(TooMany)
    async def _too_many(_: Request, e: TooMany) -> JSONResponse:
        return problem(429, "Too many requests", str(e), headers={"Retry-After": "5"})

    @app.exception_handler(Unavailable)
    async def _center_unavailable(_: Request, e: Unavailable) -> JSONResponse:
        return problem(503, "Center unavailable", str(e), headers={"Retry-After": "10"})

    @app.exception_handler(DBAPIError)
    async def _store_unavailable(_: Request, e: DBAPIError) -> JSONResponse:
        # locked, full, restarting: the store could not take or give it now; nothing was half-written
        log.warning("store unavailable: %s", str(e.orig)[:200])
        return problem(503, "Store unavailable", "the job store cannot answer right now; retry shortly",
                       headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "Internal error", "the server met an unexpected error; it is logged")

    app.state.principal = principal  # for the schema's security requirements
    add_routes(app, service, principal)
    add_data_routes(app, service.data, principal)
    add_relay_routes(app, service.mover.relay if service.mover is not None else None, tokens)

    @app.get("/metrics", response_class=Response, include_in_schema=False)
    def metrics(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:  # noqa: B008
        """Prometheus scrape target: no token needed (as exporters go); per-tenant series for an admin token
        (Prometheus' `authorization: {credentials_file: …}`), summed per model for anyone else."""
        who = tokens.principal(cred.credentials) if cred else None
        return Response(render(service, getattr(request.app.state, "gateway", None), who is not None and who.admin),
                        media_type=CONTENT_TYPE_LATEST)

    add_service_routes(app, service, principal)
    if gateway is not None:
        if gateway.registry.feed is None:
            gateway.registry.feed = service.keeper.endpoints  # the services' replicas, as the keeper sees them
            gateway.registry.deployed = service.keeper.deployed
            service.keeper.load = gateway.registry.load  # and what they carry, for autoscaling
            service.keeper.retired_tokens = gateway.registry.retired_tokens
        if service.flush_tokens is None:
            def flush() -> None:
                rows = gateway.meter.drain()
                try:
                    service.token_usage.add(rows, time.time())
                except Exception:
                    gateway.meter.restore(rows)  # nothing served is lost for a store that said no
                    raise

            service.flush_tokens = flush
        app.state.gateway = gateway
        add_gateway_routes(app, gateway, principal)
    add_admin_routes(app, service, tokens, principal)
    add_funds_routes(app, service, principal)
    add_operator_routes(app, service, principal)
    add_org_routes(app, Organisations(service.network, tokens, service.funds), principal)
    add_sso_routes(app, SingleSignOn(service.network, tokens, PendingLogins(service.store.engine))
                   if service.network.sso else None)
    add_agent_routes(app, service, tokens, principal, agents_at)

    @app.post("/v1/session", status_code=204)
    def session(request: Request, who: Principal = Depends(principal)) -> Response:  # noqa: B008
        """The dashboard's cookie for what a browser opens without headers (simulation reports): a sign-in,
        on the audit trail."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        tokens.audit.signed_in(by(who, request), who.tenant, time.time(), "dashboard")
        reply = Response(status_code=204)
        reply.set_cookie(SESSION, token, httponly=True, samesite="strict", path="/sim-reports")
        return reply

    @app.delete("/v1/session", status_code=204)
    def end_session() -> Response:
        reply = Response(status_code=204)
        reply.delete_cookie(SESSION, path="/sim-reports")
        return reply

    if service.reports is not None:
        service.reports.mkdir(parents=True, exist_ok=True)
        reports = StaticFiles(directory=service.reports, html=True)
        app.mount("/sim-reports", TokenCookie(reports, tokens), name="sim-reports")
    app.mount("/vendor", StaticFiles(directory=VENDOR), name="vendor")  # the chart library
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")  # last: the API routes win
    if gateway is not None:  # a follower's or an API worker's: what only the leader answers is relayed there
        app.add_middleware(LeaderRelay, target=gateway.leader, front=gateway.front)
    app.add_middleware(Limits)  # outermost: it bounds and marks what is relayed too
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    unnamed = [f"{m} {r.path}" for r in app.routes if isinstance(r, APIRoute) and _asks(r.dependant, principal)
               for m in sorted(r.methods) if (m, r.path) not in NEEDS]
    if unnamed:
        raise RuntimeError(f"routes with no role named in control/roles.py: {', '.join(unnamed)}")
    return app


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the job spec as the request body of the routes that read one (they read raw
    YAML or JSON themselves, so FastAPI cannot see it): clients and fuzzers know what to send."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    spec = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(spec.pop("$defs", {}))
    components["JobSpec"] = spec
    body = {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}},
        "application/yaml": {"schema": {"type": "string", "description": "the same fields, as YAML"}}}}
    for path in ("/v1/jobs", "/v1/quote"):
        schema["paths"][path]["post"]["requestBody"] = body
    schema["components"].setdefault("securitySchemes", {})["HTTPBearer"] = {"type": "http", "scheme": "bearer"}
    for route in app.routes:  # the routes that ask who calls need the bearer token
        if isinstance(route, APIRoute) and route.include_in_schema and _asks(route.dependant, app.state.principal):
            for method in route.methods:
                if (op := schema["paths"].get(route.path_format, {}).get(method.lower())) is not None:
                    op["security"] = [{"HTTPBearer": []}]
    app.openapi_schema = schema
    return schema


def _asks(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _asks(d, call) for d in dependant.dependencies)


class TokenCookie:
    """Static files behind the same tokens as the API, carried by the dashboard's session cookie (a browser
    opening a report in a new tab sends no Authorization header)."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app, self.tokens = app, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookies = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
        token = next((c.split("=", 1)[1] for c in cookies.split("; ") if c.startswith(SESSION + "=")), "")
        if scope["type"] == "http":
            who = self.tokens.principal(token) if token else None
            if who is None:
                await problem(401, "Unauthorized", "log in to the dashboard to open simulation reports")(
                    scope, receive, send)
                return
            why = refusal(who, "GET", "/v1/sim-reports")  # the reports' role, not only a valid token
            if why is not None:
                await problem(403, "Forbidden", why)(scope, receive, send)
                return
        await self.app(scope, receive, send)
