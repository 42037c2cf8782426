"""Forwarding one OpenAI-style request to a replica of its model, with httpx: least outstanding requests
first, another replica when one fails before the first byte, streams (SSE) relayed chunk by chunk.

Bounds: the request body (1 MiB), its JSON (an object with a string `model`), connect/read timeouts, and
at most `MAX_TRIES` replicas per request, at most `MAX_TENANT_INFLIGHT` requests in flight per tenant (the
upstream connections are shared: one tenant must not hold them all; over it: 429). A replica that cannot
be reached or answers 5xx before sending anything is passed over for a back-off (replicas.FAIL_BACKOFF);
the client sees an error only when no replica could answer, in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.responses import Response, StreamingResponse

from zhisuan.control.link import CenterLink
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.meter import GatewayMeter
from zhisuan.gateway.replicas import Registry, Replica
from zhisuan.gateway.tunnel import VIA, ViaAgents
from zhisuan.gateway.usage import StreamCounter, Tokens, from_body, prompt_estimate

MAX_BODY = 1 << 20
MAX_ANSWER = 64 << 20  # a whole (non-streamed) answer larger than this is refused: replicas run tenants' code
MAX_BUFFERED = 256 << 20  # bytes of whole answers one tenant's requests may hold while they are read
MAX_TRIES = 3
MAX_TENANT_INFLIGHT = 128  # of the 512 upstream connections
TIMEOUT = httpx.Timeout(connect=2.0, read=300.0, write=10.0, pool=10.0)
PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


SHAPES = {  # what each endpoint's main field must be, checked before a shared backend sees it
    "/v1/chat/completions": ("messages", "a list of message objects", lambda v: isinstance(v, list) and bool(v)
                             and all(isinstance(m, dict) for m in v)),
    "/v1/completions": ("prompt", "a string or a list", lambda v: isinstance(v, str | list)),
    "/v1/embeddings": ("input", "a string or a list", lambda v: isinstance(v, str | list)),
}


def parse(body: bytes, path: str = "") -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise GatewayError(413, f"request body over {MAX_BODY} bytes")
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as e:  # RecursionError: nesting deeper than the parser goes
        raise GatewayError(400, f"the body is not JSON: {e}") from None
    if not isinstance(request, dict):
        raise GatewayError(400, "the body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= 256:
        raise GatewayError(400, "model: a model name is required", param="model")
    if path in SHAPES:
        field, what, ok = SHAPES[path]
        if not ok(request.get(field)):
            raise GatewayError(400, f"{field}: must be {what}", param=field)
    return request


def _less(counts: dict[str, int], tenant: str, n: int) -> None:
    """Take `n` off a tenant's count; a count at 0 leaves the map (tenants come and go)."""
    left = counts.get(tenant, 0) - n
    if left > 0:
        counts[tenant] = left
    else:
        counts.pop(tenant, None)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


class Gateway:
    def __init__(self, registry: Registry, meter: GatewayMeter | None = None,
                 client: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.monotonic,
                 links: Callable[[str], CenterLink | None] | None = None) -> None:
        self.registry = registry
        self.meter = meter or GatewayMeter()
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        # replicas in centers that open no port are reached through their agents (gateway/tunnel.py)
        transport = ViaAgents(httpx.AsyncHTTPTransport(limits=limits), links or (lambda _: None))
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, transport=transport)
        self.clock = clock
        self.inflight: dict[str, int] = {}  # tenant -> its requests in flight
        self.buffered: dict[str, int] = {}  # tenant -> bytes of whole answers being read for it
        self._closing: set[asyncio.Task[None]] = set()

    def _release(self, tenant: str) -> None:
        _less(self.inflight, tenant, 1)

    def _close_later(self, upstream: httpx.Response) -> None:
        """Close an upstream answer from where awaiting is not possible (a finaliser, a cancelled task)."""
        with contextlib.suppress(RuntimeError):  # no running loop: the process is ending
            closing = asyncio.get_running_loop().create_task(upstream.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(self, tenant: str, path: str, body: bytes, region: str | None = None) -> Response:
        if path not in PATHS:
            raise GatewayError(404, f"no such endpoint {path}")
        request = parse(body, path)
        if self.inflight.get(tenant, 0) >= MAX_TENANT_INFLIGHT:
            raise GatewayError(429, f"{MAX_TENANT_INFLIGHT} requests of yours are in flight; retry when one ends",
                               "requests", code="rate_limit_exceeded")
        self.inflight[tenant] = self.inflight.get(tenant, 0) + 1
        streaming = False
        try:
            answer = await self._forward(tenant, path, request, body, region)
            streaming = isinstance(answer, StreamingResponse)
            return answer
        finally:
            if not streaming:  # a relayed stream releases its tenant's slot when it ends
                self._release(tenant)

    async def _forward(self, tenant: str, path: str, request: dict[str, Any], body: bytes,
                       region: str | None) -> Response:
        model: str = request["model"]
        stream = bool(request.get("stream"))
        options = request.get("stream_options")
        if stream and not (isinstance(options, dict) and options.get("include_usage") is True):
            # usage at the end, asked even of a caller who said no: backends that know it send it, and the bill
            # is not the caller's to switch off
            request["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            body = json.dumps(request).encode()
        tried: set[str] = set()
        start = self.clock()
        while len(tried) < MAX_TRIES:
            replica = self.registry.choose(model, self.clock(), tried, tenant, region)
            if replica is None:
                break
            tried.add(replica.id)
            answer = await self._try(tenant, replica, path, body, stream)
            if answer is None:
                continue
            upstream, rest, first = answer
            if not stream:
                return self._whole(tenant, model, replica, upstream, first, request, start)
            return self._relay(tenant, model, replica, upstream, rest, first, request, start)
        if not self.registry.known(model, tenant):  # not metered: made-up names must not grow the meter or /metrics
            raise GatewayError(404, f"the model {model!r} is not served here; see /v1/models", code="model_not_found",
                               param="model")
        self.meter.failed(tenant, model)
        why = f"tried {len(tried)}" if tried else "its service is deployed and no replica is ready yet"
        raise GatewayError(503, f"no replica of {model!r} could answer ({why})", "service_unavailable",
                           code="no_replica_ready")

    async def _try(self, tenant: str, replica: Replica, path: str, body: bytes,
                   stream: bool) -> tuple[httpx.Response, AsyncIterator[bytes], bytes] | None:
        """Send to one replica and read up to its first bytes; None if it failed before any (passed over)."""
        replica.inflight += 1
        upstream = None
        held = 0  # bytes of this answer counted in the tenant's buffer
        try:
            headers = {"content-type": "application/json", "accept-encoding": "identity"}  # relayed as it comes
            if replica.key:  # the replica's own key, never the caller's token
                headers["authorization"] = f"Bearer {replica.key}"
            req = self.client.build_request("POST", replica.url.rstrip("/") + path, content=body, headers=headers,
                                            extensions={VIA: replica.via} if replica.via else None)
            upstream = await self.client.send(req, stream=True)
            if upstream.status_code >= 500:
                raise httpx.HTTPStatusError("server error", request=req, response=upstream)
            if not stream:
                content = bytearray()
                async for chunk in upstream.aiter_raw():
                    content += chunk
                    held += len(chunk)
                    self.buffered[tenant] = self.buffered.get(tenant, 0) + len(chunk)
                    if len(content) > MAX_ANSWER or self.buffered[tenant] > MAX_BUFFERED:
                        await upstream.aclose()
                        raise GatewayError(502, f"the replica's answer is over {MAX_ANSWER} bytes, or your answers "
                                           f"being read hold over {MAX_BUFFERED} bytes", "upstream_error",
                                           code="answer_too_large")
                return upstream, _nothing(), bytes(content)
            chunks = upstream.aiter_raw()
            return upstream, chunks, await anext(chunks, b"")
        except GatewayError:
            replica.inflight -= 1
            raise
        except (httpx.HTTPError, OSError) as e:
            replica.inflight -= 1
            replica.blame(tenant, self.clock(), reached=upstream is not None or not isinstance(
                e, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError))
            if upstream is not None:
                await upstream.aclose()
            return None
        except asyncio.CancelledError:  # the client left while the replica answered
            replica.inflight -= 1
            if upstream is not None:
                self._close_later(upstream)
            raise
        finally:
            _less(self.buffered, tenant, held)

    def _whole(self, tenant: str, model: str, replica: Replica, upstream: httpx.Response, content: bytes,
               request: dict[str, Any], start: float) -> Response:
        replica.inflight -= 1
        replica.served += 1
        tokens = None
        if upstream.status_code < 400:
            try:
                tokens = from_body(json.loads(content))
            except (ValueError, RecursionError):  # a replica's answer nested deeper than the parser goes
                tokens = None
        tokens = tokens or Tokens(prompt_estimate(request), 0, measured=False)
        replica.tokens += tokens.completion
        self.meter.done(tenant, model, tokens, self.clock() - start)
        return Response(content, upstream.status_code, media_type=upstream.headers.get("content-type"))

    def _relay(self, tenant: str, model: str, replica: Replica, upstream: httpx.Response,
               rest: AsyncIterator[bytes], first: bytes, request: dict[str, Any], start: float) -> StreamingResponse:
        first_byte = self.clock() - start
        counter = StreamCounter()

        held = [True]

        def release() -> bool:
            """Once: when the stream ends, or when a stream that never started (its client left) is collected."""
            if not held:
                return False
            held.pop()
            replica.inflight -= 1
            self._release(tenant)
            return True

        def abandoned() -> None:
            if release():  # never started: nobody else will close the upstream connection
                self._close_later(upstream)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if first:
                    counter.feed(first)
                    yield first
                async for chunk in rest:
                    counter.feed(chunk)
                    yield chunk
            finally:
                release()
                replica.served += 1
                await upstream.aclose()
                tokens = counter.tokens(request)
                replica.tokens += tokens.completion
                self.meter.done(tenant, model, tokens, first_byte)

        body = chunks()
        weakref.finalize(body, abandoned)
        return StreamingResponse(body, upstream.status_code,
                                 media_type=upstream.headers.get("content-type", "text/event-stream"))
