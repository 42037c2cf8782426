"""Busy, power and memory per device from the exporters centers run, read through a real Prometheus server
(Debian's package, installed by `make test`) scraping each exporter's documented payload
(tests/fixtures/exporters/, names and sources in its README)."""

import http.server
import os
import re
import shutil
import subprocess
import threading
import time

import httpx
import pytest

from tests.builders import ROOT
from zhisuan.engines.prometheus import EXPORTERS, MAX_BYTES, MetricsError, PrometheusMetrics, job_reading
from zhisuan.engines.rendezvous import free_port

FIXTURES = ROOT / "tests" / "fixtures" / "exporters"
FILES = {"dcgm": "dcgm.prom", "npu": "npu.prom", "amd": "amd.prom", "hami": "hami.prom"}



class Payloads(http.server.BaseHTTPRequestHandler):
    """Each exporter's payload at /<exporter>/metrics, as its daemon would serve it."""

    def do_GET(self):
        name = self.path.strip("/").split("/")[0]
        if name not in FILES:
            self.send_error(404)
            return
        # a live exporter stamps samples with the time of the scrape (the npu-exporter's payload carries them)
        now = str(int(time.time() * 1000))
        body = re.sub(rb" \d{13}$", b" " + now.encode(), (FIXTURES / FILES[name]).read_bytes(), flags=re.M)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed: `make test` installs it (scripts/apt-ensure.sh prometheus)")
        pytest.skip("no prometheus binary (run `make test`)")
    exporters = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Payloads)
    threading.Thread(target=exporters.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{exporters.server_address[1]}"
    folder = tmp_path_factory.mktemp("prometheus")
    jobs = "".join(f"  - job_name: {n}\n    metrics_path: /{n}/metrics\n"
                   f"    static_configs: [{{targets: ['{target}']}}]\n" for n in FILES)
    (folder / "prometheus.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n{jobs}",
                                           encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=open(folder / "prometheus.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # ready, and every exporter scraped at least once
            try:
                up = httpx.get(f"{url}/api/v1/query", params={"query": "up == 1"}, timeout=1).json()
                if len(up["data"]["result"]) == len(FILES):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert proc.poll() is None, (folder / "prometheus.log").read_text()
            time.sleep(0.3)
        else:
            pytest.fail("prometheus never scraped the exporters: " + (folder / "prometheus.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        exporters.shutdown()


@pytest.mark.parametrize("exporter", list(FILES))
def test_each_exporter_reads_as_busy_watts_and_memory(prometheus, exporter):
    readings = PrometheusMetrics(prometheus, exporter).readings()
    by_device = {r.device: r for r in readings}
    assert len(readings) == 2, readings  # one node, two devices
    first, second = sorted(by_device.values(), key=lambda r: -(r.busy or 0))
    assert first.busy == pytest.approx(0.75) and second.busy == pytest.approx(0.20)
    assert first.memory_bytes == pytest.approx(10 * 2**30) and second.memory_bytes == pytest.approx(2 * 2**30)
    if EXPORTERS[exporter].power is None:
        assert first.watts is None  # the exporter does not report power: nothing invented
    else:
        assert first.watts == pytest.approx(250) and second.watts == pytest.approx(100)
    job = job_reading(readings, [(r.node, r.device) for r in readings])
    assert job is not None and job.busy == pytest.approx(0.475) and job.devices == 2


def test_a_job_reads_only_its_own_devices(prometheus):
    readings = PrometheusMetrics(prometheus, "dcgm").readings()
    busiest = max(readings, key=lambda r: r.busy or 0)
    job = job_reading(readings, [(busiest.node, busiest.device)])
    assert job is not None and job.busy == pytest.approx(0.75) and job.memory_gib == pytest.approx(10)
    assert job_reading(readings, [("elsewhere", "7")]) is None


def test_a_bad_prometheus_answer_is_an_error_not_a_reading(prometheus):
    with pytest.raises(MetricsError):
        PrometheusMetrics(f"http://127.0.0.1:{free_port()}", "dcgm", timeout=1).readings()  # nobody listens

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * (MAX_BYTES + 1))

    with pytest.raises(MetricsError, match="refused"):
        PrometheusMetrics("http://metrics", "dcgm", httpx.Client(transport=httpx.MockTransport(huge))).readings()

    def poisoned(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"gpu": "0", "Hostname": "n"}, "value": [0, "NaN"]},
            {"metric": {"gpu": "1", "Hostname": "n"}, "value": [0, "+Inf"]},
            {"metric": {"gpu": "2", "Hostname": "n"}, "value": [0, "1e6"]}, {"bogus": 1}]}})

    got = PrometheusMetrics("http://metrics", "dcgm", httpx.Client(transport=httpx.MockTransport(poisoned))).readings()
    assert [(r.device, r.busy) for r in got] == [("2", 1.0)]  # non-finite dropped, out of range clamped


def test_the_live_loop_stores_a_jobs_measured_busy_from_prometheus(prometheus, tmp_path):
    """A center whose network entry names its Prometheus: running jobs are sampled from it (one read a round)
    and the samples carry the exporter as their source."""
    from zhisuan.control import ControlLoop
    from zhisuan.engines import LocalEngine
    from zhisuan.model import JobState, parse_job_spec, parse_network
    from zhisuan.store import JobStore, UsageStore, connect, migrate

    network = parse_network(f"""
name: measured
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    metrics: {{prometheus: "{prometheus}", exporter: dcgm}}
    pools:
      - {{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10,
         device_ids: ["0", "1"], node_names: [node-a]}}
""")
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store = JobStore(engine)
    job = store.submit(parse_job_spec("name: j\ntenant: acme\nresources: {accelerators: a100:2}\n"
                                      "constraints: {time_limit: 60}\nrun: sleep 1.5"), time.time())
    loop = ControlLoop(store, network, LocalEngine(tmp_path / "runs", grace=0.5))
    loop.sample_every = 0.2
    end = time.time() + 20
    while time.time() < end and not store.get(job).state.terminal:
        loop.step(time.time())
        time.sleep(0.05)
    assert store.get(job).state is JobState.SUCCEEDED
    samples = UsageStore(engine).samples(job)
    assert samples and {s["source"] for s in samples} == {"prometheus dcgm"}
    assert samples[0]["busy_fraction"] == pytest.approx(0.475) and samples[0]["watts"] == pytest.approx(350)


def test_a_prometheus_that_hangs_holds_no_control_step_up(tmp_path, monkeypatch):
    """The server samples on a thread of its own: while a center's Prometheus does not answer, control steps
    go on (placing, polling), and nothing is made up for the job meanwhile."""
    from tests.builders import live
    from zhisuan.control import sampler
    from zhisuan.model import JobState, parse_job_spec, parse_network
    from zhisuan.store import UsageStore

    monkeypatch.setattr(sampler, "PrometheusMetrics",  # a long read: a step that sampled would wait it out
                        lambda url, exporter, timeout: PrometheusMetrics(url, exporter, timeout=60))
    answer, asked = threading.Event(), threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.set()
            answer.wait(30)  # hangs until the test lets it answer
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    network = parse_network(f"""
name: slow
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    metrics: {{prometheus: "http://127.0.0.1:{server.server_address[1]}", exporter: dcgm}}
    pools:
      - {{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10,
         device_ids: ["0", "1"], node_names: [node-a]}}
""")
    store, loop, _ = live(tmp_path, network)
    stop = threading.Event()
    try:
        loop.sample_every = 0.1
        loop.start_sampling(stop)
        first = store.submit(parse_job_spec("name: a\ntenant: acme\nresources: {accelerators: a100:1}\n"
                                            "run: sleep 30"), time.time())
        end = time.time() + 20
        while time.time() < end and store.get(first).state is not JobState.RUNNING:
            loop.step(time.time())
            time.sleep(0.05)
        assert asked.wait(10)  # the sampler is now stuck in its read
        second = store.submit(parse_job_spec("name: b\ntenant: acme\nresources: {accelerators: a100:1}\n"
                                             "run: sleep 30"), time.time())
        stepping = threading.Thread(target=lambda: [loop.step(time.time()) for _ in range(3)])
        stepping.start()
        stepping.join(10)
        assert not stepping.is_alive() and not answer.is_set()  # steps ran while Prometheus still hung
        assert store.get(second).state in (JobState.SCHEDULED, JobState.RUNNING)
        assert UsageStore(store.engine).samples(first) == []  # nothing measured, nothing made up
    finally:
        answer.set()
        stop.set()
        server.shutdown()
        for rec in store.find(states={JobState.RUNNING, JobState.SCHEDULED}):
            loop.fleet.of(rec.center).cancel(rec.engine_handle)


def test_an_agent_measures_its_runs_at_its_own_centers_prometheus_and_the_server_stores_it(prometheus, tmp_path):
    """A remote center's Prometheus is inside it: its agent reads it (one read a round) and reports what its
    runs used as events; the server stores them as the run's samples, dated by its own clock."""
    from zhisuan.agent.core import AgentCore
    from zhisuan.agent.protocol import Done, Events
    from zhisuan.bench.timed import TimedEngine
    from zhisuan.control import ControlLoop
    from zhisuan.engines import Fleet
    from zhisuan.model import JobState, parse_job_spec, parse_network
    from zhisuan.store import JobStore, UsageStore, connect, migrate

    busiest = max(PrometheusMetrics(prometheus, "dcgm").readings(), key=lambda r: r.busy or 0)
    network = parse_network(f"""
name: far
centers:
  - name: far
    region: west
    join: agent
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools: [{{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 1, price_per_device_hour: 5,
             node_names: ['{busiest.node}'], device_ids: ['{busiest.device}']}}]
""")
    db = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(db)
    store = JobStore(db)
    loop = ControlLoop(store, network, Fleet({}))
    link, agent = loop.links["far"], AgentCore("far", TimedEngine())
    welcome = link.connect(agent.hello(), time.time())
    agent.welcomed(welcome.timeout, welcome.pools, welcome.acked)

    def exchange():
        for frame in link.take():
            link.receive(Done(ids=agent.execute(list(frame.items))), time.time())
        if events := agent.outgoing():
            agent.acked(link.receive(Events(items=events), time.time())[0].seq)

    job = store.submit(parse_job_spec("name: m\ntenant: acme\nresources: {accelerators: a100:1}\nrun: sleep 60"),
                       time.time())
    loop.step(time.time())
    exchange()
    loop.step(time.time())
    assert store.get(job).state is JobState.RUNNING
    assert agent.sample(PrometheusMetrics(prometheus, "dcgm")) == 1
    exchange()
    before = time.time()
    assert loop.agent_samples() == 1
    [sample] = UsageStore(db).samples(job)
    assert sample["busy_fraction"] == pytest.approx(0.75) and sample["source"] == "prometheus dcgm (via agent)"
    assert sample["watts"] == pytest.approx(250) and before - 5 < sample["at"] <= time.time()
