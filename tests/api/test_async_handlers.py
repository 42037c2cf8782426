"""No blocking call on the event loop that relays every tenant's model streams: inside an `async def` of the
API, the control layer and the store are called through a worker thread (`anyio.to_thread.run_sync(f, ...)`
passes `f`, it does not call it); only what answers from memory is called directly."""

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "src" / "zhisuan" / "api"
OWNERS = {"service", "tokens", "data", "store", "relay", "gateway", "link", "links", "datasets"}
IN_MEMORY = {"links.get", "service.leading", "tokens.cached", "gateway.forward", "relay.file", "relay.count",
             "relay.arrived"}


def direct_calls() -> list[str]:
    found = []
    for f in sorted(API.glob("*.py")):
        for fn in ast.walk(ast.parse(f.read_text())):
            if not isinstance(fn, ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in OWNERS):
                    found.append(f"{node.func.value.id}.{node.func.attr}")
    return found


def test_async_handlers_call_the_store_only_through_a_worker_thread():
    calls = direct_calls()
    assert "relay.count" in calls  # the check sees into the handlers
    assert [c for c in calls if c not in IN_MEMORY] == []
