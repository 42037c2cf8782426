"""Forwarding one OpenAI-style request to a replica of its model, with httpx: least outstanding requests
first, another replica when one fails before the first byte, streams (SSE) relayed chunk by chunk.

Bounds: the request body (1 MiB), its JSON (an object with a string `model`), connect/read timeouts, and
at most `MAX_TRIES` replicas per request, at most `MAX_TENANT_INFLIGHT` requests in flight per tenant (the
upstream connections are shared: one tenant must not hold them all; over it: 429). A replica that cannot
be reached or answers 5xx before sending anything is passed over for a back-off (replicas.FAIL_BACKOFF);
the client sees an error only when no replica could answer, in OpenAI's error shape. An answer holds its
slot, and the bytes it keeps, until its last byte is handed to the client (gateway/answer.py): one up to
`WHOLE` bytes is read whole first (another replica is tried if it breaks off), a larger one passes through
as fast as the client reads it, so a client that reads slowly, or not at all, costs about `WHOLE` bytes and
what the kernel had received from the replica (anyio on uvloop takes it all in at once: a few MiB), never
the whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, NamedTuple

import anyio
import httpx

from zhisuan.control.link import CenterLink
from zhisuan.gateway.answer import PIECE, Cut, Relayed
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.meter import GatewayMeter
from zhisuan.gateway.replicas import Registry, Replica
from zhisuan.gateway.tunnel import VIA, ViaAgents
from zhisuan.gateway.usage import BodyUsage, StreamCounter, Tokens, from_body, prompt_estimate

MAX_BODY = 1 << 20
MAX_ANSWER = 64 << 20  # a non-streamed answer larger than this is refused, or cut: replicas run tenants' code
WHOLE = 256 << 10  # a non-streamed answer up to this is read whole before it is relayed; a larger one streams
DRAIN_TIMEOUT = 30.0  # seconds a non-streamed answer whose client went is still read for its usage
MAX_BUFFERED = 256 << 20  # bytes one tenant's answers may keep until they are handed to their clients
MAX_TRIES = 3
MAX_TENANT_INFLIGHT = 128  # of the 512 upstream connections
TIMEOUT = httpx.Timeout(connect=2.0, read=300.0, write=10.0, pool=10.0)
PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
RELAYED = "X-Zhisuan-Relayed"  # on a request a follower relayed: the leader answers it, never relays it on


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


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


class Got(NamedTuple):
    """A replica's answer as far as it was read before relaying: its first bytes, and the rest to come."""

    upstream: httpx.Response
    first: bytes
    rest: AsyncIterator[bytes]
    whole: bool  # `first` is all of it: the replica's part is over
    held: int  # bytes of the tenant's budget it keeps until it is handed to the client


def _too_large() -> GatewayError:
    return GatewayError(502, f"the replica's answer is over {MAX_ANSWER} bytes, or your answers being relayed "
                        f"keep over {MAX_BUFFERED} bytes", "upstream_error", code="answer_too_large")


class Gateway:
    def __init__(self, registry: Registry, meter: GatewayMeter | None = None,
                 client: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.monotonic,
                 links: Callable[[str], CenterLink | None] | None = None,
                 leader: Callable[[], str | None] | None = None, front: bool = False) -> None:
        self.registry = registry
        self.leader = leader or (lambda: None)  # a follower: the leading server's URL, where it relays
        # an API worker (serve/workers.py): `leader` is its own server, which is handed even relayed requests
        self.front = front
        self.meter = meter or GatewayMeter()
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        # replicas in centers that open no port are reached through their agents (gateway/tunnel.py)
        transport = ViaAgents(httpx.AsyncHTTPTransport(limits=limits), links or (lambda _: None))
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, transport=transport)
        self.clock = clock
        self.inflight: dict[str, int] = {}  # tenant -> its requests in flight
        self.buffered: dict[str, int] = {}  # tenant -> bytes its answers keep until handed over
        self._closing: set[asyncio.Task[None]] = set()

    def _release(self, tenant: str) -> None:
        _less(self.inflight, tenant, 1)

    def _later(self, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` from where awaiting is not possible (a finaliser, a cancelled task)."""
        try:
            task = asyncio.get_running_loop().create_task(job)
        except RuntimeError:  # no running loop: the process is ending
            job.close()
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(self, tenant: str, path: str, body: bytes, region: str | None = None, token: str = "",
                      relayed: bool = False) -> Relayed:
        """`token`: the caller's, for the leader a follower relays to (a replica it cannot reach itself: one
        behind a center's agent, whose connection the leader holds); `relayed`: this request was relayed."""
        if path not in PATHS:
            raise GatewayError(404, f"no such endpoint {path}")
        request = parse(body, path)
        if self.inflight.get(tenant, 0) >= MAX_TENANT_INFLIGHT:
            raise GatewayError(429, f"{MAX_TENANT_INFLIGHT} requests of yours are in flight; retry when one ends",
                               "requests", code="rate_limit_exceeded")
        self.inflight[tenant] = self.inflight.get(tenant, 0) + 1
        answered = False
        try:
            answer = await self._forward(tenant, path, request, body, region,
                                         "" if relayed and not self.front else token)
            answered = True
            return answer
        finally:
            if not answered:  # an answer gives its tenant's slot back when its last byte is handed over
                self._release(tenant)

    async def _forward(self, tenant: str, path: str, request: dict[str, Any], body: bytes,
                       region: str | None, token: str) -> Relayed:
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
            got = await self._try(tenant, replica, path, body, stream)
            if got is not None:
                return self._answer(tenant, model, replica, got, request, start, stream)
        leader = self.leader()
        if leader and token:  # the leader may reach what this follower cannot, or know a model deployed since this
            # follower last read the services: it answers, and meters, it (or says it serves no such model)
            via = Replica("leader", model, leader, key=token, relay=True)
            got = await self._try(tenant, via, path, body, stream, region)
            if got is not None:
                return self._answer(tenant, model, via, got, request, start, stream)
        if not self.registry.known(model, tenant):  # not metered: made-up names must not grow the meter or /metrics
            raise GatewayError(404, f"the model {model!r} is not served here; see /v1/models", code="model_not_found",
                               param="model")
        self.meter.failed(tenant, model)
        why = f"tried {len(tried)}" if tried else "its service is deployed and no replica is ready yet"
        raise GatewayError(503, f"no replica of {model!r} could answer ({why})", "service_unavailable",
                           code="no_replica_ready")

    async def _try(self, tenant: str, replica: Replica, path: str, body: bytes, stream: bool,
                   region: str | None = None) -> Got | None:
        """Send to one replica and read its first bytes (a non-streamed answer: up to WHOLE of them); None if it
        failed before its answer was read that far (passed over)."""
        replica.inflight += 1
        upstream = None
        held = 0  # bytes of this answer counted in the tenant's budget
        try:
            headers = {"content-type": "application/json", "accept-encoding": "identity"}  # relayed as it comes
            if replica.key:  # the replica's own key, never the caller's token (but to the leader, relaying)
                headers["authorization"] = f"Bearer {replica.key}"
            if replica.relay:
                headers[RELAYED] = "1"
                if region:
                    headers["x-zhisuan-region"] = region
            req = self.client.build_request("POST", replica.url.rstrip("/") + path, content=body, headers=headers,
                                            extensions={VIA: replica.via} if replica.via else None)
            upstream = await self.client.send(req, stream=True)
            if upstream.status_code >= 500:
                raise httpx.HTTPStatusError("server error", request=req, response=upstream)
            chunks = upstream.aiter_raw()
            if stream:
                return Got(upstream, await anext(chunks, b""), chunks, False, 0)
            declared = upstream.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER:
                await upstream.aclose()
                raise _too_large()
            content = bytearray()
            async for chunk in chunks:  # left at WHOLE: the rest is read as the client takes the answer
                content += chunk
                held += len(chunk)
                self.buffered[tenant] = self.buffered.get(tenant, 0) + len(chunk)
                if self.buffered[tenant] > MAX_BUFFERED:
                    await upstream.aclose()
                    raise _too_large()
                if len(content) > WHOLE:
                    break
            got = Got(upstream, bytes(content), chunks, len(content) <= WHOLE, held)
            held = 0  # the answer keeps them until it is handed over
            return got
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
                self._later(upstream.aclose())
            raise
        finally:
            _less(self.buffered, tenant, held)

    def _served(self, tenant: str, model: str, replica: Replica, tokens: Tokens, first_byte: float) -> None:
        """The replica's part is over: counted out of it, and metered."""
        replica.inflight -= 1
        replica.served += 1
        replica.tokens += tokens.completion
        if not replica.relay:  # a relayed answer is the leader's to meter
            self.meter.done(tenant, model, tokens, first_byte)

    def _answer(self, tenant: str, model: str, replica: Replica, got: Got, request: dict[str, Any], start: float,
                stream: bool) -> Relayed:
        """The answer relayed. What it holds is given back once, when it ends however it does, or when an answer
        never sent (its client left first) is collected. A non-streamed answer whose client went is still read
        to its end, for at most DRAIN_TIMEOUT: the replica made all of it, and its usage, the bill, is last."""
        first_byte = self.clock() - start
        counter = StreamCounter() if stream else BodyUsage()
        headers = {}
        if got.whole:
            headers["content-length"] = str(len(got.first))
            self._served(tenant, model, replica, self._tokens(got, request), first_byte)
        else:  # read as it passes
            counter.feed(got.first)
            if not stream and got.upstream.headers.get("content-length", "").isdigit():
                headers["content-length"] = got.upstream.headers["content-length"]
        read, ended, closing = [len(got.first)], [got.whole], [False]
        pending: list[asyncio.Future[bytes | None]] = []  # the replica's next bytes, being read

        async def upstream_next() -> bytes | None:
            """A non-streamed answer is read in a task of its own: a client leaving mid-read (a cancel) does not
            lose what was read, and the rest can be read for the bill. A stream whose client left is just closed."""
            if stream:
                chunk = await anext(got.rest, None)
            else:
                if not pending:
                    pending.append(asyncio.ensure_future(_next(got.rest)))
                try:
                    chunk = await asyncio.shield(pending[0])
                finally:
                    if pending[0].done():
                        pending.clear()
            if chunk is None:
                ended[0] = True
                return None
            read[0] += len(chunk)
            if read[0] > MAX_ANSWER and not stream:
                raise Cut(f"the replica's answer is over {MAX_ANSWER} bytes")
            counter.feed(chunk)
            return chunk

        def release() -> None:
            self._release(tenant)
            _less(self.buffered, tenant, got.held)
            if not got.whole:
                self._served(tenant, model, replica, counter.tokens(request), first_byte)

        async def close() -> None:
            if closing[0]:
                return
            closing[0] = True
            try:
                if not got.whole:  # else the replica's answer was read and closed already
                    with anyio.CancelScope(shield=True):  # a relay cancelled (its client left) still ends it
                        await finish()
            finally:
                release()

        async def finish() -> None:
            if not stream and got.upstream.status_code < 400:
                with anyio.move_on_after(DRAIN_TIMEOUT), contextlib.suppress(httpx.HTTPError, Cut):
                    while not ended[0] and not (isinstance(counter, BodyUsage) and counter.done):
                        await upstream_next()
            for reading in pending:
                reading.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await reading
            await got.upstream.aclose()

        def abandoned() -> None:
            if not closing[0]:  # never started: nobody else will end it
                self._later(close())

        async def chunks() -> AsyncIterator[bytes]:
            try:
                for at in range(0, len(got.first), PIECE):
                    yield got.first[at:at + PIECE]
                while (chunk := await upstream_next()) is not None:
                    yield chunk
            finally:
                await close()

        body = chunks()
        weakref.finalize(body, abandoned)
        media = got.upstream.headers.get("content-type", "text/event-stream" if stream else None)
        return Relayed(body, got.upstream.status_code, media, headers, close, got.first if got.whole else None)

    @staticmethod
    def _tokens(got: Got, request: dict[str, Any]) -> Tokens:
        """A whole answer's usage, else the prompt estimated."""
        tokens = None
        if got.upstream.status_code < 400:
            try:
                tokens = from_body(json.loads(got.first))
            except (ValueError, RecursionError):  # a replica's answer nested deeper than the parser goes
                tokens = None
        return tokens or Tokens(prompt_estimate(request), 0, measured=False)
