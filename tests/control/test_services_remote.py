"""A model service whose replicas run on remote engines: two real Slurm clusters and a real Ray head
(started by `make test`). Each replica's address comes from its engine (Slurm's NodeAddr of the batch host,
the Ray driver node's IP), its readiness is probed there and the gateway routes to it."""

import contextlib
import os
import time

import httpx
import pytest

from tests.builders import live
from tests.control.test_services import chat, script, streamed  # noqa: F401 (fixture)
from tests.engines.test_slurm import clusters, node_addr  # noqa: F401 (fixture)
from tests.engines.test_slurm import network_yaml as slurm_network
from zhisuan.engines import EngineDown, build_fleet, with_inventory
from zhisuan.gateway.replicas import Registry
from zhisuan.model import JobState, parse_network
from zhisuan.store import Principal

RAY = os.environ.get("ZHISUAN_TEST_RAY", "")
ACME = Principal("acme", False)


def network_yaml(root):
    """The two test Slurm clusters and the Ray head as a third center."""
    return slurm_network(root).replace("tenants:", f"""  - name: rayc
    region: north
    pue: 1.2
    carbon_kg_per_kwh: 0.3
    engine: ray
    engine_config: {{address: '{RAY}', resources: {{910B: Ascend 910B3}}, prices: {{910B: 10}}, run_as_uid: 65534}}
tenants:""")


def service_spec(script):  # noqa: F811
    # the interpreter by path: a Ray job's PATH is the head's, whose python may sit where nobody can read it
    return f"""name: chat
tenant: acme
kind: service
resources: {{accelerators: 910b3:8}}
service: {{model: echo, ready: /health, replicas: {{min: 3, max: 3}}}}
run: exec /usr/bin/python3 {script} --host 0.0.0.0 --port $PORT --model echo
"""


@pytest.fixture
def remote(clusters, tmp_path, script):  # noqa: F811
    if not RAY:
        if os.environ.get("CI"):
            pytest.fail("no Ray head: run the suite with `make test`, which starts one (scripts/ray-up.sh)")
        pytest.skip("no Ray head (run `make test` or scripts/ray-up.sh and set ZHISUAN_TEST_RAY)")
    declared = parse_network(network_yaml(clusters))
    fleet = build_fleet(declared, tmp_path / "runs")
    network = with_inventory(declared, fleet)
    store, loop, service = live(tmp_path, network, fleet, health_every=60.0)
    svc = service.deploy(service_spec(script), ACME, time.time())
    yield service, loop, Registry(feed=service.keeper.endpoints), svc
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())
    for rec in store.find(states={s for s in JobState if not s.terminal}):
        if rec.engine_handle:
            with contextlib.suppress(OSError, EngineDown):
                fleet.of(rec.center or "").cancel(rec.engine_handle)


def test_replicas_on_two_slurm_clusters_and_a_ray_head_are_reached_where_their_engines_say(remote):
    service, loop, registry, _svc = remote
    end = time.time() + 120
    ready = []
    while time.time() < end and len(ready) < 3:
        loop.step(time.time())
        service.keeper.probe()
        ready = [r for r in registry.of("echo", "acme") if r.ready]
        time.sleep(0.3)
    assert {r.center for r in ready} == {"alpha", "beta", "rayc"}, service.services(ACME)
    replicas = {service.store.get(r.id).center: service.store.get(r.id) for r in ready}
    # Slurm ran alpha's replica on 910b-0 (NodeAddr 198.18.1.2: alpha's namespace, not a name this machine
    # resolves) as nobody; the replica listens on its node's address
    addr = node_addr("alpha", "910b-0")
    assert replicas["alpha"].engine_handle and service.keeper.hosts[replicas["alpha"].id][1] == addr
    assert service.fleet.of("alpha").uid_of(replicas["alpha"].engine_handle) == 65534
    hosts = {r.center: r.url.rsplit(":", 1)[0] for r in ready}
    assert hosts == {"alpha": f"http://{addr}", "beta": f"http://{node_addr('beta', '910b-1')}",
                     "rayc": "http://127.0.0.1"}
    for r in ready:  # each replica answers where its engine said it runs, to its key only
        ask = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{r.url}/v1/chat/completions", timeout=5, json=ask,
                            headers={"Authorization": f"Bearer {r.key}"})
        assert answer.status_code == 200
        assert httpx.post(f"{r.url}/v1/chat/completions", timeout=5, json=ask).status_code == 401
    status, body = chat(registry)
    assert status == 200 and b"hi there" in body
    assert registry.replicas[next(r for r in ready if r.center == "alpha").id].served == 1  # idle: the cheapest
    events = streamed(registry)
    assert events[-1] == "data: [DONE]" and sum('"content"' in e for e in events) == 2
    # a replica killed under its Slurm cluster is replaced (placed again by the scheduler) and served again
    victim = replicas["beta"]
    service.fleet.of("beta").cancel(victim.engine_handle)
    end = time.time() + 120
    while time.time() < end:
        loop.step(time.time())
        service.keeper.probe()
        fresh = [r for r in registry.of("echo", "acme") if r.ready and r.id != victim.id]
        if service.store.get(victim.id).state.terminal and len(fresh) == 3:
            break
        time.sleep(0.3)
    assert service.store.get(victim.id).state is JobState.FAILED
    assert len(fresh) == 3 and "beta" in {r.center for r in fresh}, service.services(ACME)
