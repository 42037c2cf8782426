"""No blocking call on the event loop that relays every tenant's model streams: inside an `async def` of the
API, the control layer and the store are called through a worker thread (`anyio.to_thread.run_sync(f, ...)`
passes `f`, it does not call it); only what answers from memory is called directly."""

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "src" / "zhisuan" / "api"
OWNERS = {"service", "tokens", "data", "store", "relay", "gateway", "link", "links", "datasets"}
IN_MEMORY = {"links.get", "service.leading", "tokens.cached", "gateway.forward", "relay.file", "relay.count",
             "relay.arrived",
             "service.submit_async"}  # awaited: CPU checks on the loop, the store on the batch writer (below)


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


def test_a_submit_from_the_event_loop_touches_the_store_only_off_it(tmp_path):
    """The submit route's path: parsed and checked on the loop, stored by the batch writer's thread."""
    import asyncio
    import threading

    from sqlalchemy import event

    from tests.api.test_api import JOB, NETWORK
    from zhisuan.control.loop import ControlLoop
    from zhisuan.control.service import Service
    from zhisuan.engines.local import LocalEngine
    from zhisuan.store import JobStore, Principal, connect, migrate

    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store = JobStore(engine)
    service = Service(store, NETWORK, ControlLoop(store, NETWORK, LocalEngine(tmp_path / "runs", grace=0.5)))
    ran_on: set[int] = set()
    event.listen(engine, "before_cursor_execute", lambda *_: ran_on.add(threading.get_ident()))

    async def main():
        return threading.get_ident(), await asyncio.gather(
            *(service.submit_async(JOB.encode(), Principal("acme", False), 0.0, f"k{k}") for k in range(8)))

    loop_thread, recs = asyncio.run(main())
    stored_from = set(ran_on)
    assert len({r.id for r in recs}) == 8 and len(store.find()) == 8
    assert stored_from and loop_thread not in stored_from
