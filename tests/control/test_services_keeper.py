"""The service keeper's harder cases with real replica processes on the local engine: a command that cannot
start backs off instead of flooding the store with jobs, a replica spanning two nodes is reached at member
0, and autoscaling on tokens/s."""

import asyncio
import threading
import time

import pytest

from tests.builders import live
from tests.control.test_services import ACME, script, spec, until_ready  # noqa: F401 (fixture)
from zhisuan.gateway.errors import GatewayError
from zhisuan.gateway.proxy import Gateway
from zhisuan.gateway.replicas import Registry
from zhisuan.model import parse_network
from zhisuan.store import Principal

NETWORK = parse_network("""
name: pair
centers:
  - {name: east, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: gpu, accelerator: a100, nodes: 2, devices_per_node: 1, price_per_device_hour: 10}]}
  - {name: west, region: west, pue: 1.2, carbon_kg_per_kwh: 0.5,
     pools: [{name: gpu, accelerator: a100, nodes: 2, devices_per_node: 1, price_per_device_hour: 12}]}
""")


def world(tmp_path):
    store, loop, service = live(tmp_path, NETWORK)
    return store, loop, service, Registry(feed=service.keeper.endpoints)


@pytest.mark.parametrize("run", ["exit 3", "echo done"])
def test_a_replica_that_cannot_start_is_replaced_with_a_growing_back_off(tmp_path, run):
    store, loop, service, _ = world(tmp_path)
    svc = service.deploy(spec("x.py").replace("run: exec python3 x.py --port $PORT --model echo", f"run: {run}")
                         .replace("min: 2, max: 2", "min: 1, max: 1"), ACME, time.time())
    end = time.time() + 8
    while time.time() < end:
        loop.step(time.time())
        time.sleep(0.05)
    made = store.find(tenant="acme")
    # without a back-off this would be a new job per step (about a hundred); with it: the first failure
    # replaced at once, the next after 5 s
    assert 2 <= len(made) <= 3 and sum(r.state.terminal for r in made) >= 2
    listed = service.services(ACME)[0]
    assert listed["failures"] >= 2 and listed["retry_at"] > time.time()
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())
    assert svc.id not in service.keeper.failures


def test_a_replica_on_two_nodes_is_one_gang_reached_at_member_0(tmp_path, script):  # noqa: F811
    store, loop, service, registry = world(tmp_path)
    run = (f'run: if [ "$ZHISUAN_NODE_RANK" = 0 ]; then exec python3 {script} --port $PORT --model echo; '
           'else exec sleep 600; fi')
    text = spec(script).replace(f"run: exec python3 {script} --port $PORT --model echo", run) \
        .replace("accelerators: a100:1}", "accelerators: a100:1, nodes: 2}").replace("min: 2, max: 2", "min: 1, max: 1")
    svc = service.deploy(text, ACME, time.time())
    try:
        [ready] = until_ready(service, loop, registry, 1)
        rec = store.get(ready.id)
        assert len(rec.nodes) == 2 and rec.center == "east"  # one placement, both nodes of the pool
        answer = asyncio.run(_chat(registry))
        assert answer == 200
    finally:
        service.stop_service(svc.id, ACME, time.time())
        loop.step(time.time())


async def _chat(registry, words="hi there"):
    gateway = Gateway(registry)
    try:
        body = b'{"model": "echo", "messages": [{"role": "user", "content": "%s"}]}' % words.encode()
        r = await gateway.forward("acme", "/v1/chat/completions", body)
        return r.status_code
    except GatewayError as e:
        return e.status
    finally:
        await gateway.aclose()


def test_a_service_scales_on_tokens_per_second(tmp_path, script):  # noqa: F811
    _store, loop, service, registry = world(tmp_path)
    service.keeper.load, service.keeper.window = registry.load, 2.0
    text = spec(script).replace("replicas: {min: 2, max: 2}}", "replicas: {min: 1, max: 2}, autoscale: "
                                "{tokens_per_s: 40, up_after: 1s, down_after: 3s}}") \
        .replace("--model echo", "--model echo --delay 0.1")
    svc = service.deploy(text, ACME, time.time())
    until_ready(service, loop, registry, 1)
    stop = threading.Event()
    answered = []

    def clients():  # two clients, 20 completion tokens a call, about 10 calls/s: ~200 tokens/s, 5x the target
        async def one():
            while not stop.is_set():
                answered.append(await _chat(registry, " ".join(["w"] * 20)))

        async def many():
            await asyncio.gather(one(), one())

        asyncio.run(many())

    load = threading.Thread(target=clients)
    load.start()
    try:
        ready = until_ready(service, loop, registry, 2, limit=40)
    finally:
        stop.set()
        load.join()
    assert len(ready) == 2 and service.service_store.get(svc.id).desired == 2
    assert answered and set(answered) == {200}
    end = time.time() + 30
    while time.time() < end and len(service.keeper.replicas[svc.id]) > 1:  # no load: back to the minimum
        loop.step(time.time())
        service.keeper.probe()
        time.sleep(0.2)
    assert len(service.keeper.replicas[svc.id]) == 1 and service.service_store.get(svc.id).desired == 1
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())


def test_a_job_cannot_pass_itself_off_as_another_tenants_replica(tmp_path, script):  # noqa: F811
    from zhisuan.model import SpecError
    from zhisuan.store import Principal

    store, loop, service, _ = world(tmp_path)
    svc = service.deploy(spec(script).replace("min: 2, max: 2", "min: 1, max: 1"), ACME, time.time())
    forged = f"name: f\ntenant: lab\nresources: {{accelerators: a100:1}}\nenv: {{ZHISUAN_SERVICE: {svc.id}}}\nrun: x"
    with pytest.raises(SpecError, match=r"env\.ZHISUAN_SERVICE"):
        service.submit(forged, Principal("lab", False), time.time())
    with pytest.raises(SpecError, match=r"service\.port_env"):
        service.deploy(spec(script).replace("replicas:", "port_env: ZHISUAN_JOB_ID, replicas:"), ACME, time.time())
    # written straight to the store (as by an older version): a restart does not take it for a replica
    lab_job = store.submit_record(service.validate(forged.replace("ZHISUAN_SERVICE", "X"), Principal("lab", False))
                                  .model_copy(update={"env": {"ZHISUAN_SERVICE": svc.id}}), time.time())
    loop.step(time.time())
    assert service.keeper.replicas[svc.id] and lab_job.id not in service.keeper.replicas[svc.id]
    service.stop_service(svc.id, ACME, time.time())
    loop.step(time.time())


DRIP = '''import os, socket, threading, time
def drip(c):
    c.sendall(b"HTTP/1.1 200 OK\\r\\n")
    while True:  # the headers never end: a line every half second
        c.sendall(b"X-Slow: y\\r\\n")
        time.sleep(0.5)
s = socket.socket()
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen()
while True:
    threading.Thread(target=drip, args=(s.accept()[0],), daemon=True).start()
'''


def test_a_replica_that_drips_its_answer_holds_no_one_elses_probe_up(tmp_path, script):  # noqa: F811
    import shutil

    from zhisuan.engines.confine import shared_folder

    folder = shared_folder("drip-")
    (folder / "drip.py").write_text(DRIP)
    (folder / "drip.py").chmod(0o644)
    store, loop, service, registry = world(tmp_path)
    one = 'replicas: {min: 1, max: 1}'
    evil = service.deploy(spec(script).replace("tenant: acme", "tenant: evil").replace("model: echo", "model: drip")
                          .replace("min: 2, max: 2", "min: 1, max: 1")
                          .replace(f"exec python3 {script} --port $PORT --model echo",
                                   f"exec python3 {folder}/drip.py"), Principal("evil", False), time.time())
    good = service.deploy(spec(script).replace("replicas: {min: 2, max: 2}", one), ACME, time.time())
    try:
        end = time.time() + 60
        while time.time() < end:
            loop.step(time.time())
            prober = threading.Thread(target=service.keeper.probe)
            prober.start()
            prober.join(30)
            assert not prober.is_alive(), "a dripping replica held the shared prober up"
            if [r for r in registry.of("echo", "acme") if r.ready]:
                break
            time.sleep(0.2)
        assert [r for r in registry.of("echo", "acme") if r.ready]
        [bad] = service.keeper.replicas[evil.id]
        assert store.get(bad).state.name == "RUNNING" and service.keeper.ready.get(bad) is False
    finally:
        for svc, who in ((evil, Principal("evil", False)), (good, ACME)):
            service.stop_service(svc.id, who, time.time())
        loop.step(time.time())
        shutil.rmtree(folder, ignore_errors=True)
