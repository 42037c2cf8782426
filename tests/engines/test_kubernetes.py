"""The Kubernetes engine with the real `kubernetes` client against hand-written API answers replayed on
loopback (tests/engines/k8s/fixtures/README.md): no API server can run on this machine."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.engines.k8s.replay import Replay, fixture
from zhisuan.engines import EngineDown, Launch
from zhisuan.engines.kubernetes import KubernetesEngine

NS = "/apis/batch/v1/namespaces/ai/jobs"


def named(name_file, name):
    return json.loads(json.dumps(fixture(name_file)).replace("NAME", name))


@pytest.fixture
def api():
    replay = Replay()
    replay.on("GET", "/version/?", fixture("version.json"))
    replay.on("GET", "/api/v1/nodes", fixture("nodes.json"))
    replay.on("POST", NS, lambda body: {**body, "metadata": {**body["metadata"], "uid": "u-1"}, "status": {}},
              status=201)
    replay.on("POST", "/api/v1/namespaces/ai/services", lambda body: body, status=201)
    replay.on("POST", "/apis/scheduling.volcano.sh/v1beta1/namespaces/ai/podgroups", lambda body: body, status=201)
    yield replay
    replay.close()


def engine(api, **extra):
    cfg = {"host": api.url, "namespace": "ai", "chips": {"A100-SXM4-80GB": "A100 SXM4 80GB",
           "Ascend-910B3": "Ascend 910B3"}, "prices": {"A100-SXM4-80GB": 12, "Ascend-910B3": 8}, **extra}
    return KubernetesEngine.from_config("k8s", cfg)


def launch(eng, pool, nodes=(0, 1), devices=8, command="python train.py"):
    p = {x.name: x for x in eng.inventory()}[pool]
    return Launch("j-k8s1", "train", command, p, nodes, devices, [[]] * len(nodes), {"EPOCHS": "3"}, 3600.0)


def test_inventory_groups_schedulable_labelled_nodes(api):
    pools = {p.name: p for p in engine(api).inventory()}
    assert set(pools) == {"a100-sxm4-80gb", "ascend-910b3"}
    a100 = pools["a100-sxm4-80gb"]
    assert (a100.accelerator, a100.nodes, a100.devices_per_node) == ("A100 SXM4 80GB", 2, 8)
    assert a100.node_names == ["gpu-a100-0", "gpu-a100-1"]  # gpu-a100-2 is cordoned, cpu-0 has no devices
    assert pools["ascend-910b3"].accelerator == "Ascend 910B3"


def test_a_gang_is_an_indexed_job_with_one_pod_per_node(api):
    eng = engine(api)
    handle = eng.submit(launch(eng, "a100-sxm4-80gb"))
    (method, path, body), (_, service_path, service) = api.sent[-2:]
    assert (method, path) == ("POST", NS) and body["metadata"]["name"] == handle
    spec = body["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (2, 2, 0)
    assert spec["completionMode"] == "Indexed"
    assert spec["activeDeadlineSeconds"] == 3600
    pod = spec["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert pod["nodeSelector"] == {"zhisuan.io/accelerator": "A100-SXM4-80GB"}
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "kubernetes.io/hostname")
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["EPOCHS"]["value"] == "3" and env["ZHISUAN_NNODES"]["value"] == "2"
    assert "job-completion-index" in env["ZHISUAN_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert "schedulerName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False  # no cluster credentials inside a tenant's pod
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"]}}
    # rendezvous: member 0 by name behind a headless Service, every variable torchrun reads
    assert service_path.endswith("/services") and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"job-name": handle} and pod["subdomain"] == handle
    assert service["metadata"]["ownerReferences"][0]["uid"] == "u-1"  # deleted with the job
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert names[0] == "ZHISUAN_NODE_RANK"  # defined first: the others refer to it
    assert env["MASTER_ADDR"]["value"] == env["PET_MASTER_ADDR"]["value"] == f"{handle}-0.{handle}"
    assert env["ZHISUAN_NODELIST"]["value"] == f"{handle}-0.{handle},{handle}-1.{handle}"
    assert env["RANK"]["value"] == env["PET_NODE_RANK"]["value"] == "$(ZHISUAN_NODE_RANK)"
    assert (env["WORLD_SIZE"]["value"], env["PET_NPROC_PER_NODE"]["value"], env["MASTER_PORT"]["value"]) == (
        "2", "8", "29500")


def test_volcano_centers_get_a_pod_group_first(api):
    eng = engine(api, volcano=True)
    handle = eng.submit(launch(eng, "ascend-910b3", nodes=(0,), devices=4))
    (_, p1, group), (_, _, job) = api.sent[-2:]
    assert p1.endswith("/podgroups") and group["spec"]["minMember"] == 1 and group["metadata"]["name"] == handle
    pod = job["spec"]["template"]
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == handle
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"huawei.com/Ascend910": "4"}


def test_poll_reads_job_status_and_the_failed_pods_exit_code(api):
    eng = engine(api)
    api.on("GET", f"{NS}/zs-a/status", named("job_running.json", "zs-a"))
    api.on("GET", f"{NS}/zs-b/status", named("job_succeeded.json", "zs-b"))
    api.on("GET", f"{NS}/zs-c/status", named("job_failed.json", "zs-c"))
    api.on("GET", "/api/v1/namespaces/ai/pods", named("pods_failed.json", "zs-c"))
    assert eng.poll("zs-a").state == "running"
    assert eng.poll("zs-b").state == "succeeded"
    st = eng.poll("zs-c")
    assert (st.state, st.exit_code) == ("failed", 3) and "zs-c-1-x7k2p" in st.reason
    assert api.sent[-1][1].endswith("labelSelector=job-name%3Dzs-c")
    usage = eng.usage("zs-b")
    assert usage.elapsed_seconds == 300 and usage.allocated_device_seconds == 2 * 8 * 300


def test_logs_of_every_pod_in_rank_order(api):
    eng = engine(api)
    api.on("GET", "/api/v1/namespaces/ai/pods", named("pods_failed.json", "zs-c"))
    api.on("GET", "/api/v1/namespaces/ai/pods/zs-c-0-x7k2p/log", fixture("pod_log_0.txt"))
    api.on("GET", "/api/v1/namespaces/ai/pods/zs-c-1-x7k2p/log", fixture("pod_log_1.txt"))
    assert eng.logs("zs-c") == "== node 0 ==\nrank 0 starting\nrank 0 done\n== node 1 ==\nrank 1 starting\n" \
                               "traceback: CUDA error\n"


def test_cancel_deletes_the_job_with_its_pods(api):
    eng = engine(api)
    api.on("DELETE", f"{NS}/zs-a", named("status_deleted.json", "zs-a"))
    eng.cancel("zs-a")
    method, path, body = api.sent[-1]
    assert method == "DELETE" and path.startswith(f"{NS}/zs-a")
    assert "propagationPolicy=Background" in path or (body or {}).get("propagationPolicy") == "Background"


def test_a_refusal_is_an_error_naming_the_reason_and_a_silent_server_is_down(api):
    eng = engine(api)
    api.on("POST", NS, named("status_forbidden.json", "x"), status=403)
    with pytest.raises(OSError, match="exceeded quota"):
        eng.submit(launch(eng, "a100-sxm4-80gb"))
    eng.health()
    api.close()
    with pytest.raises(EngineDown, match="does not answer"):
        engine(api, timeout=2).health()


def test_load_is_what_other_pods_request_and_cordoned_nodes(api):
    eng = engine(api)
    api.on("GET", "/api/v1/pods", fixture("pods_all.json"))
    pools = eng.inventory()
    nodes = json.loads(json.dumps(fixture("nodes.json")))
    nodes["items"][1]["spec"]["unschedulable"] = True  # gpu-a100-1 cordoned after the inventory
    api.on("GET", "/api/v1/nodes", nodes)
    load = {(x.pool, x.nodes, x.devices_per_node) for x in eng.load(pools)}
    assert load == {("a100-sxm4-80gb", (0,), 7),  # 6 + 1 devices of other teams' pods on gpu-a100-0
                    ("ascend-910b3", (0,), 4),  # an inference server on npu-910b-0
                    ("a100-sxm4-80gb", (1,), 8)}  # cordoned: no new pods; zhisuan's own pod there is not load
    asked = next(p for _, p, _ in api.sent if "/api/v1/pods" in p)
    assert parse_qs(urlsplit(asked).query)["fieldSelector"] == ["status.phase!=Succeeded,status.phase!=Failed"]


def test_a_job_whose_pod_is_not_bound_is_queued_with_the_schedulers_reason(api):
    eng = engine(api)
    api.on("GET", f"{NS}/zs-p/status", named("job_pending.json", "zs-p"))
    api.on("GET", "/api/v1/namespaces/ai/pods", named("pods_pending.json", "zs-p"))
    st = eng.poll("zs-p")
    assert st.state == "queued" and "Insufficient nvidia.com/gpu" in st.reason


def test_attempts_are_labelled_and_found_again(api):
    eng = engine(api)
    eng.submit(launch(eng, "a100-sxm4-80gb"))
    body = next(b for m, p, b in api.sent if (m, p) == ("POST", NS))
    assert body["metadata"]["labels"]["zhisuan.io/attempt"] == "1"
    env = {e["name"]: e.get("value") for e in body["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ZHISUAN_ATTEMPT"] == "1" and env["ZHISUAN_CHECKPOINT_DIR"] == "/checkpoint"
    api.on("GET", NS, fixture("jobs_none.json"))
    assert eng.handle_of("j-k8s1", 2) is None
    query = parse_qs(urlsplit(api.sent[-1][1]).query)
    assert query["labelSelector"] == ["zhisuan.io/job=j-k8s1,zhisuan.io/attempt=2"]


def test_a_running_replica_is_reached_at_member_0s_pod_ip(api):
    eng = engine(api)
    api.on("GET", "/api/v1/namespaces/ai/pods", named("pods_running.json", "zs-svc"))
    assert eng.host_of("zs-svc") == "10.244.1.9"  # completion index 0, though listed second
    api.on("GET", "/api/v1/namespaces/ai/pods", named("pods_pending.json", "zs-svc"))
    assert eng.host_of("zs-svc") is None  # not bound yet: no address to route to
