"""Several replicas of the control plane behind one client: `--url A,B,C` (or $ZHISUAN_URL). A request goes
to the replica that answered last; one that cannot be connected to is passed over for the next. Only a
connection that could not be made is tried elsewhere — the request was never sent, so even a submit without
an idempotency key is safe to send again. (In production a plain TCP load balancer in front of the replicas
does this for every client; this is for a CLI pointed at the replicas themselves.)"""

from __future__ import annotations

import ssl

import httpx


class Failover(httpx.BaseTransport):
    def __init__(self, urls: list[str], verify: ssl.SSLContext | bool = True) -> None:
        self.urls = [httpx.URL(u) for u in urls]
        self.inner = httpx.HTTPTransport(verify=verify)
        self.good = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        error: httpx.ConnectError | None = None
        for k in range(len(self.urls)):
            i = (self.good + k) % len(self.urls)
            u = self.urls[i]
            request.url = request.url.copy_with(scheme=u.scheme, host=u.host, port=u.port)
            request.headers["Host"] = u.netloc.decode("ascii")
            try:
                response = self.inner.handle_request(request)
            except httpx.ConnectError as e:
                error = e
                continue
            self.good = i
            return response
        assert error is not None
        raise error

    def close(self) -> None:
        self.inner.close()
