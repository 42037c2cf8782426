"""The GPU-sharing experiment: the openb trace as tasks and pools, bad rows named, runs repeatable, and
fragmentation-aware placement allocating more than random placement on a sample of the cluster."""

import gzip
from importlib import resources

import pytest
from typer.testing import CliRunner

from zhisuan.cli.main import app
from zhisuan.model import parse_network
from zhisuan.scheduler.policies import NODE_SCORES
from zhisuan.sim.sharing import arrivals, load_nodes, load_tasks, run_sharing, summarise

NODES = "sn,cpu_milli,memory_mib,gpu,model\n"
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"


def packaged(name):
    return gzip.decompress(resources.files("zhisuan.sim").joinpath("data", "openb", name).read_bytes()).decode()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Every 8th GPU node of the openb cluster and the whole default pod list."""
    d = tmp_path_factory.mktemp("openb")
    lines = packaged("openb_node_list_gpu_node.csv.gz").splitlines()
    (d / "nodes.csv").write_text("\n".join([lines[0], *lines[1::8]]) + "\n")
    return d / "nodes.csv"


def test_the_packaged_trace_loads_as_the_paper_describes():
    pools, tasks = load_nodes(), load_tasks()
    assert sum(p.nodes for p in pools) == 1213 and sum(p.nodes * p.devices_per_node for p in pools) == 6212
    assert len(tasks) == 8152
    assert sum(1 for t in tasks if t.request.milli) == 3078  # shares of one GPU
    assert sum(1 for t in tasks if not t.request.devices_per_node) == 1088  # CPU-only pods
    assert sum(t.asked for t in tasks) == 6_086_800
    everything = load_nodes("openb_node_list_all_node.csv.gz")
    assert sum(p.nodes for p in everything if not p.devices_per_node) == 310
    g2 = next(p for p in pools if p.chip.name == "G2")
    assert "ASSUMPTION" in g2.chip.source  # an undisclosed code is labelled, not passed off as a known chip


@pytest.mark.parametrize("row, says", [
    ("p,1000,100,1,nan,", "line 2: gpu_milli"),
    ("p,-5,100,0,0,", "line 2: cpu_milli"),
    ("p,1000,100,1,1500,", "line 2: gpu_milli must be 1..1000"),
    ("p,1000,100,2,500,", "line 2: a share"),
    ("p,0,100,0,0,", "line 2: asks neither"),
])
def test_bad_pod_rows_are_refused_with_their_line(tmp_path, row, says):
    f = tmp_path / "pods.csv"
    f.write_text(PODS + row + "\n")
    with pytest.raises(ValueError, match=says):
        load_tasks(f)


def test_a_gpu_model_no_node_has_is_refused(tmp_path):
    f = tmp_path / "pods.csv"
    f.write_text(PODS + "p,1000,100,1,500,T4|H999\n")
    with pytest.raises(ValueError, match="H999"):
        run_sharing(load_nodes(), load_tasks(f), NODE_SCORES["fgd"])


def test_copies_grow_the_asks_to_the_tune_and_not_past_it():
    tasks = load_tasks()
    cap = 6212 * 1000
    order = arrivals(tasks, cap, 1.3, 42)
    total = sum(t.asked for t in order)
    assert 1.29 * cap < total <= 1.3 * cap
    half = arrivals(tasks, cap, 0.5, 42)  # below the trace's own asks: it stops inside the trace
    assert 0.49 * cap < sum(t.asked for t in half) <= 0.5 * cap
    assert order == arrivals(tasks, cap, 1.3, 42) and order != arrivals(tasks, cap, 1.3, 43)


def test_fragmentation_aware_placement_allocates_more_than_random(sample):
    pools, tasks = load_nodes(sample), load_tasks()
    runs = [run_sharing(pools, tasks, NODE_SCORES[name], seed) for name in ("random", "frag-memory")
            for seed in (42, 43)]
    for r in runs:
        assert all(0 <= pct <= 100 for pct in r.at.values())
        assert all(r.at[x] <= x + 0.5 for x in r.at)  # nothing is allocated that has not arrived
    rnd, mine = summarise(runs)
    assert mine.alloc_pct > rnd.alloc_pct + 2, (mine, rnd)
    again = run_sharing(pools, tasks, NODE_SCORES["frag-memory"], 42)
    assert again.at == runs[2].at  # same seed, same run


def test_sharing_command(sample, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["sharing", "--nodes", str(sample), "--policies", "best-fit", "--seeds", "1",
                              "--tune", "0.5", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "best-fit" in res.output and "GPU alloc" in res.output
    bad = runner.invoke(app, ["sharing", "--nodes", str(sample), "--policies", "best-fits", "--seeds", "1"])
    assert bad.exit_code != 0 and "best-fits" in bad.output
    missing = runner.invoke(app, ["sharing", "--nodes", str(tmp_path / "none.csv")])
    assert missing.exit_code != 0 and "--nodes" in missing.output


def test_a_trace_with_shares_cpu_only_jobs_and_consumed_cpus_replays(tmp_path):
    """Our CSV trace format: a share (devices 0.5), a CPU-only job, CPUs consumed per node, priorities and a
    censored flag; the same scheduler places them."""
    from zhisuan.sim.readers import load_trace
    from zhisuan.sim.runner import run_all

    f = tmp_path / "t.csv"
    f.write_text("submit,duration,devices,chip,cpus,memory,priority,censored\n"
                 "0,100,0.5,A100,4,8,0,\n"
                 "0,100,0.5,A100,4,8,0,\n"
                 "0,100,0,,100,16,0,1\n"
                 "0,100,0,,100,16,5,\n")
    trace = load_trace(str(f), chip="A100")
    jobs = sorted(trace.jobs, key=lambda j: j.id)
    assert [(j.devices, j.milli, j.amount) for j in jobs[:2]] == [(1, 500, 0.5)] * 2
    assert jobs[2].devices == 0 and jobs[2].cpus == 100 and jobs[2].censored and jobs[3].priority == 5
    assert any("censored" in n for n in trace.notes)
    net = parse_network("name: one\ncenters:\n  - {name: c, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5, pools: "
                        "[{name: p, accelerator: A100, nodes: 1, devices_per_node: 1, cpus_per_node: 128, "
                        "price_per_device_hour: 10}]}\n")
    _, [result] = run_all(str(f), ["fifo"], "network", interval=0, network=net, chip="A100")
    order = sorted(range(4), key=lambda i: result.jobs.trace_jobs[i].id)
    starts = [float(result.jobs.first_start[i]) for i in order]
    # the shares run side by side on the one device (4 CPUs each); the CPU-only jobs (100 CPUs each) take
    # the node's 128 CPUs in turn: CPUs are consumed, not only checked
    assert starts == [0.0, 0.0, 0.0, 100.0]
    assert sum(result.device_seconds) == pytest.approx(100.0)  # two half devices for 100 s each


@pytest.mark.parametrize("row, says", [
    ("0,100,1.5,A100", "devices above 1 must be whole"),
    ("0,100,0,A100", "CPU-only job: give its cpus"),
    ("0,100,0.0005,A100", "thousandths"),
    ("0,100,-1,A100", "devices must be"),
    ("0,100,1,A100,nan", "cpus must be"),
])
def test_bad_share_rows_are_refused_with_their_line(row, says):
    from zhisuan.sim.trace import TraceError, parse_csv

    with pytest.raises(TraceError, match=f"line 2: .*{says}"):
        parse_csv("submit,duration,devices,chip,cpus\n" + row + "\n")
