"""What only the leading process can answer, relayed there by any other: a job's logs (the leader reaches every
center, remote ones through their agents' connections, which only it holds), the agents' status and the model
services (whose replicas' readiness its probes know). A follower
relays to the leader's URL (its lease says which); an API worker (serve/workers.py) to its own server, which
answers or relays again. A request that was relayed once is answered where it lands (a follower that has
just stopped leading answers as well as it can), never relayed in a circle. It sits inside `Limits` (bodies
bounded, security headers added); answers stream through as they come (followed logs)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhisuan.api.limits import SECURITY_HEADERS
from zhisuan.api.shapes import problem
from zhisuan.gateway.proxy import RELAYED

# the agents' status; a job's logs; model services, whose replicas' readiness the leader's probes know (it
# reaches replicas behind agents)
LEADER_ONLY = re.compile(r"^/v1/(agents(/[^/]+/starts)?|jobs/[^/]+/logs|services(/[^/]+)?)$")
SERVERS_OWN = {"/v1/control-plane"}  # an API worker hands these to its server: whether *it* leads
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
       "proxy-authorization", "proxy-connection"}
ADDED = {k.decode() for k, _ in SECURITY_HEADERS}  # Limits adds them to the relayed answer as to any other
TIMEOUT = httpx.Timeout(connect=3.0, read=300.0, write=10.0, pool=10.0)
# followed logs hold a connection each while they stream (the leader bounds them per tenant): httpx's default
# pool of 100 would let a few tenants' streams keep every other tenant's relayed request waiting
LIMITS = httpx.Limits(max_connections=2048, max_keepalive_connections=64)


class LeaderRelay:
    """ASGI middleware: `target()` is where to relay (None: answer here); `front`: relay even what was relayed
    already (an API worker to its own server)."""

    def __init__(self, app: ASGIApp, target: Callable[[], str | None], front: bool = False) -> None:
        self.app, self.target, self.front = app, target, front
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (LEADER_ONLY.match(scope["path"]) or
                                           (self.front and scope["path"] in SERVERS_OWN)):
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        relayed = any(k == RELAYED.lower() for k, _ in headers)
        url = self.target()
        if url is None or (relayed and not self.front):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        sent = [(k, v) for k, v in headers if k not in HOP and k != RELAYED.lower()] + [(RELAYED, "1")]
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS)
        request = self._client.build_request(scope["method"], url.rstrip("/") + scope["path"] + (f"?{query}" if query
                                             else ""), headers=sent, content=body)
        try:
            upstream = await self._client.send(request, stream=True)
        except httpx.HTTPError as e:
            await problem(503, "Service unavailable", f"the replica that leads the control plane could not be "
                          f"reached ({e or type(e).__name__}); retry shortly",
                          headers={"Retry-After": "2"})(scope, receive, send)
            return
        try:
            await send({"type": "http.response.start", "status": upstream.status_code,
                        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in upstream.headers.items()
                                    if k.lower() not in HOP | ADDED]})
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.HTTPError, OSError):  # the leader broke off, or the client left: the answer ends here
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await upstream.aclose()


async def _body(receive: Receive) -> bytes:
    """The request's whole body (Limits, outside, cuts it off at its bound)."""
    parts: list[bytes] = []
    while True:
        message: Message = await receive()
        parts.append(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            return b"".join(parts)
