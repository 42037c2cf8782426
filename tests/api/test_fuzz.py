"""Schemathesis over the API's own OpenAPI schema (job specs included as request bodies): whatever it
sends — valid specs, broken ones, odd path and query values — the server never answers 5xx, and every
error is problem+json. Run in-process against the ASGI app on a real SQLite store and local engine."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from tests.control.test_loop import NETWORK
from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.store import JobStore, TokenStore, connect, migrate

TOKENS: dict[str, str] = {}


def fuzz_app():
    tmp = Path(tempfile.mkdtemp(prefix="zhisuan-fuzz-"))
    tmp.chmod(0o711)
    engine = connect(f"sqlite:///{tmp / 'z.db'}")
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    loop = ControlLoop(store, NETWORK, LocalEngine(tmp / "runs", grace=0.5))
    TOKENS["admin"] = tokens.issue("ops", 0.0, admin=True)
    return create_app(Service(store, NETWORK, loop, tmp / "reports"), tokens)


schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app())  # the plugin's lazy fixtures break on pytest 9


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_server_fail(case):
    response = case.call(headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    if response.status_code >= 400:
        kind = response.headers.get("content-type") or [""]
        kind = kind[0] if isinstance(kind, list) else kind
        assert kind.startswith("application/problem+json"), (case.method, case.path, response.text[:200])
