"""A Kubernetes cluster as a center: batch/v1 Jobs through the official `kubernetes` client, and a
Volcano PodGroup (gang of `nodes` pods, all or nothing) when the center's `volcano: true`.

A gang of N nodes is an Indexed Job with N pods (rank = JOB_COMPLETION_INDEX), one pod per node, each
limited to `devices_per_node` of the chip's device resource (nvidia.com/gpu, huawei.com/Ascend910,
amd.com/gpu …); a share of one GPU is limited by a sharing device plugin's resources (HAMi's or Volcano's
vGPU, see kubeshare.py) and a CPU-only job asks no device at all. Jobs are named `zs-<job id>-<tag>` and
labelled `zhisuan.io/job=<job id>`, so a restarted control loop finds them again. Needs
`pip install 'zhisuan[kubernetes]'`.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime
from typing import Any

from zhisuan.engines.base import MAX_LOG, EngineDown, EngineStatus, ExternalLoad, Launch, TextLogs, Usage
from zhisuan.engines.kubeshare import DEVICE_RESOURCE, SHARE_RESOURCES, device_limits, devices_of
from zhisuan.engines.rendezvous import gang_env
from zhisuan.model import Pool

PRODUCT_LABEL = "zhisuan.io/accelerator"  # node label naming the chip, e.g. "A100 SXM4 80GB" -> A100-SXM4-80GB


RENDEZVOUS_PORT = 29500  # torch.distributed's default; each pod has its own network namespace


class KubernetesEngine(TextLogs):
    kind = "kubernetes"
    starts_at_submit = False  # pods wait Pending until the cluster's scheduler binds them

    def __init__(self, center: str, api: Any, namespace: str = "default", image: str = "python:3.11-slim",
                 chips: dict[str, str] | None = None, prices: dict[str, float] | None = None, volcano: bool = False,
                 timeout: float = 10.0, checkpoint_claim: str | None = None, run_as_uid: int = 65534,
                 sharing: str = "hami") -> None:
        if sharing not in SHARE_RESOURCES:
            raise ValueError(f"engine_config.sharing of {center}: one of {sorted(SHARE_RESOURCES)}, not {sharing!r}")
        self.center, self.api, self.namespace, self.image = center, api, namespace, image
        self.sharing = sharing
        self.chips, self.prices, self.volcano, self.timeout = chips or {}, prices or {}, volcano, timeout
        self.checkpoint_claim = checkpoint_claim
        self.run_as_uid = run_as_uid

    @classmethod
    def from_config(cls, center: str, cfg: dict[str, Any]) -> KubernetesEngine:
        """`engine_config` keys: kubeconfig (path) or host (+ token), namespace, image (default container
        image), chips {node label value: catalog chip}, prices {node label value: CNY per device-hour},
        volcano (bool), timeout (s), checkpoint_claim (a PersistentVolumeClaim mounted at /checkpoint),
        run_as_uid (the non-root uid pods run as; default 65534, nobody), sharing (how a share of one GPU is
        asked: `hami`, the default, or `volcano` for Volcano's vGPU; see kubeshare.py)."""
        known = {"kubeconfig", "host", "token", "namespace", "image", "chips", "prices", "volcano", "timeout",
                 "checkpoint_claim", "run_as_uid", "sharing"}
        if set(cfg) - known:
            raise ValueError(f"engine_config of {center}: unknown keys {sorted(set(cfg) - known)}")
        try:
            from kubernetes import client, config
        except ImportError as e:
            raise ValueError(f"center {center}: pip install 'zhisuan[kubernetes]' for Kubernetes centers") from e
        if "host" in cfg:
            conf = client.Configuration()
            conf.host = str(cfg["host"])
            if cfg.get("token"):
                conf.api_key = {"authorization": f"Bearer {cfg['token']}"}
            api = client.ApiClient(conf)
        else:
            api = config.new_client_from_config(config_file=cfg.get("kubeconfig"))  # type: ignore[no-untyped-call]
        return cls(center, api, str(cfg.get("namespace", "default")), str(cfg.get("image", "python:3.11-slim")),
                   cfg.get("chips"), cfg.get("prices"), bool(cfg.get("volcano", False)), float(cfg.get("timeout", 10)),
                   cfg.get("checkpoint_claim"), int(cfg.get("run_as_uid", 65534)), str(cfg.get("sharing", "hami")))

    def _call(self, group: str, method: str, *args: Any, **kw: Any) -> Any:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api = {"core": client.CoreV1Api, "batch": client.BatchV1Api, "custom": client.CustomObjectsApi,
               "version": client.VersionApi}[group](self.api)
        try:
            return getattr(api, method)(*args, _request_timeout=self.timeout, **kw)
        except ApiException as e:
            if e.status is None or e.status >= 500:
                raise EngineDown(f"{self.center}: the API server answers {e.status}: {e.reason}") from e
            raise OSError(f"{self.center}: {method} refused ({e.status} {e.reason}): {e.body}") from e
        except (OSError, HTTPError) as e:  # refused, reset or timed out
            raise EngineDown(f"{self.center}: the API server does not answer ({e})") from e

    def health(self) -> None:
        self._call("version", "get_code")

    def inventory(self) -> list[Pool]:
        """Pools = schedulable nodes grouped by chip label and allocatable device count."""
        groups: dict[tuple[str, str, int], list[Any]] = {}
        for node in self._call("core", "list_node").items:
            labels = node.metadata.labels or {}
            if node.spec.unschedulable or PRODUCT_LABEL not in labels:
                continue
            chip = self.chips.get(labels[PRODUCT_LABEL], labels[PRODUCT_LABEL])
            for resource in DEVICE_RESOURCE.values():
                count = int((node.status.allocatable or {}).get(resource, "0"))
                if count:
                    groups.setdefault((labels[PRODUCT_LABEL], chip, count), []).append(node)
        pools = []
        for (label, chip, count), nodes in sorted(groups.items()):
            if label not in self.prices:
                raise ValueError(f"engine_config.prices: no price for {label!r} of {self.center}")
            nodes.sort(key=lambda n: str(n.metadata.name))
            pools.append(Pool(name=label.lower().replace("_", "-"), accelerator=chip, nodes=len(nodes),
                              devices_per_node=count, price_per_device_hour=float(self.prices[label]),
                              node_names=[str(n.metadata.name) for n in nodes]))
        return pools

    def job_manifest(self, launch: Launch, name: str) -> dict[str, Any]:
        limits = device_limits(launch, self.sharing)
        resources: dict[str, Any] = {"limits": limits}
        if launch.cpus:
            resources["requests"] = {"cpu": f"{launch.cpus:g}"}
        n = len(launch.nodes)
        # rank first: the gang's variables refer to it as $(ZHISUAN_NODE_RANK), which Kubernetes expands
        env: list[dict[str, Any]] = [{"name": "ZHISUAN_NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
        hosts = ",".join(f"{name}-{i}.{name}" for i in range(n))  # Indexed Job pods behind the headless Service
        gang = gang_env(f"{name}-0.{name}", str(RENDEZVOUS_PORT), hosts, str(n), "$(ZHISUAN_NODE_RANK)",
                        str(launch.devices_per_node), ",".join(str(i) for i in range(launch.devices_per_node)))
        env += [{"name": k, "value": v} for k, v in gang.items() if k != "ZHISUAN_NODE_RANK"]
        env += [{"name": k, "value": v} for k, v in launch.env.items()]
        env += [{"name": "ZHISUAN_JOB_ID", "value": launch.job_id}, {"name": "ZHISUAN_NNODES", "value": str(n)},
                {"name": "ZHISUAN_ATTEMPT", "value": str(launch.attempt)},
                {"name": "ZHISUAN_CHECKPOINT_DIR", "value": "/checkpoint"}]
        labels = {"zhisuan.io/job": launch.job_id, "zhisuan.io/attempt": str(launch.attempt)}
        pod: dict[str, Any] = {
            "restartPolicy": "Never",
            "nodeSelector": {PRODUCT_LABEL: next((k for k, v in self.chips.items() if v == launch.pool.accelerator),
                                                 launch.pool.accelerator)},
            # a tenant's code: not root, no privilege to gain, no API credentials of the cluster's
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": self.run_as_uid, "runAsGroup": self.run_as_uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "job", "image": launch.image or self.image, "command": ["/bin/sh", "-c",
                            launch.command], "env": env,
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                            "resources": resources}],
        }
        if self.checkpoint_claim:  # kept across attempts; without a claim /checkpoint is the pod's own
            pod["volumes"] = [{"name": "checkpoint", "persistentVolumeClaim": {"claimName": self.checkpoint_claim}}]
            pod["containers"][0]["volumeMounts"] = [{"name": "checkpoint", "mountPath": "/checkpoint",
                                                     "subPath": launch.job_id}]
        annotations = {}
        if self.volcano or (launch.milli and self.sharing == "volcano"):  # Volcano's vGPU needs its scheduler
            pod["schedulerName"] = "volcano"
        if self.volcano:
            annotations["scheduling.k8s.io/group-name"] = name
        if n > 1:  # one pod per node of the gang, each reachable as <job>-<rank>.<job>
            pod["subdomain"] = name
            pod["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"job-name": name}}, "topologyKey": "kubernetes.io/hostname"}]}}
        spec: dict[str, Any] = {"completions": n, "parallelism": n, "completionMode": "Indexed", "backoffLimit": 0,
                                "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod}}
        if launch.timeout:
            spec["activeDeadlineSeconds"] = int(launch.timeout)
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": self.namespace, "labels": labels}, "spec": spec}

    def pod_group(self, launch: Launch, name: str) -> dict[str, Any]:
        return {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                "metadata": {"name": name, "namespace": self.namespace, "labels": {"zhisuan.io/job": launch.job_id}},
                "spec": {"minMember": len(launch.nodes)}}

    def submit(self, launch: Launch) -> str:
        name = f"zs-{launch.job_id}-{uuid.uuid4().hex[:5]}".lower()
        if self.volcano:
            self._call("custom", "create_namespaced_custom_object", "scheduling.volcano.sh", "v1beta1",
                       self.namespace, "podgroups", self.pod_group(launch, name))
        made = self._call("batch", "create_namespaced_job", self.namespace, self.job_manifest(launch, name))
        if len(launch.nodes) > 1:  # the members' DNS names; deleted with the job (owner reference)
            uid = getattr(getattr(made, "metadata", None), "uid", None)
            self._call("core", "create_namespaced_service", self.namespace, self.gang_service(launch, name, uid))
        return name

    def gang_service(self, launch: Launch, name: str, job_uid: str | None) -> dict[str, Any]:
        """A headless Service over the gang's pods, so member 0's name resolves for the others
        (published before they are ready: the rendezvous is what makes them ready)."""
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": {"zhisuan.io/job": launch.job_id}}
        if job_uid:
            meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid}]
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {"job-name": name},
                         "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT}]}}

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        selector = f"zhisuan.io/job={job_id}" + (f",zhisuan.io/attempt={attempt}" if attempt is not None else "")
        jobs = self._call("batch", "list_namespaced_job", self.namespace, label_selector=selector)
        active = [j for j in jobs.items if not _finished(j)]
        return str(active[0].metadata.name) if active else None

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        """Devices that pods other than zhisuan's request on each node (bound and not ended), and nodes
        cordoned since the inventory, whole. Pods carry no end time: inf."""
        where = {name: (pool, i) for pool in pools for i, name in enumerate(pool.node_names)}
        used: dict[str, int] = {}
        pods = self._call("core", "list_pod_for_all_namespaces",
                          field_selector="status.phase!=Succeeded,status.phase!=Failed").items
        for pod in pods:
            if "zhisuan.io/job" in (pod.metadata.labels or {}) or not pod.spec.node_name:
                continue
            for c in pod.spec.containers:
                asks = {**((c.resources.requests or {}) if c.resources else {}),
                        **((c.resources.limits or {}) if c.resources else {})}
                used[pod.spec.node_name] = used.get(pod.spec.node_name, 0) + sum(
                    int(v) for k, v in asks.items() if k in DEVICE_RESOURCE.values())
        now = time.time()
        out = [ExternalLoad(f"pods:{name}", where[name][0].name, (where[name][1],), n, now, math.inf,
                            f"{n} devices requested by other pods on {name}")
               for name, n in sorted(used.items()) if n and name in where]
        for node in self._call("core", "list_node").items:
            name = str(node.metadata.name)
            if node.spec.unschedulable and name in where:
                pool, i = where[name]
                out.append(ExternalLoad(f"node:{name}", pool.name, (i,), pool.devices_per_node, now, math.inf,
                                        f"node {name} cordoned"))
        return out

    def _pods(self, name: str) -> list[Any]:
        pods = self._call("core", "list_namespaced_pod", self.namespace, label_selector=f"job-name={name}").items
        return sorted(pods, key=lambda p: (p.metadata.annotations or {}).get(
            "batch.kubernetes.io/job-completion-index", p.metadata.name))

    def poll(self, handle: str) -> EngineStatus:
        job = self._call("batch", "read_namespaced_job_status", handle, self.namespace)
        if (job.status.succeeded or 0) >= (job.spec.completions or 1):
            return EngineStatus("succeeded", 0)
        if not _finished(job):
            if (job.status.ready or 0) + (job.status.succeeded or 0) >= (job.spec.completions or 1):
                return EngineStatus("running")
            for pod in self._pods(handle):  # a pod not yet bound to a node: the job waits in the cluster
                for cond in pod.status.conditions or []:
                    if cond.type == "PodScheduled" and cond.status == "False":
                        return EngineStatus("queued", None, f"kubernetes {cond.reason}: {cond.message or ''}".strip())
            return EngineStatus("running")
        for pod in self._pods(handle):
            for cs in (pod.status.container_statuses or []):
                term = cs.state.terminated if cs.state else None
                if term is not None and term.exit_code:
                    return EngineStatus("failed", int(term.exit_code), f"kubernetes pod {pod.metadata.name}: "
                                        f"{term.reason or 'Error'}")
        cond = next((c for c in job.status.conditions or [] if c.type == "Failed"), None)
        return EngineStatus("failed", None, f"kubernetes Job failed: {cond.reason if cond else 'unknown'}")

    def host_of(self, handle: str) -> str | None:
        """The pod IP of member 0 (completion index 0) once it runs: the control plane must reach the pod
        network (zhisuan in the cluster, or routed to it)."""
        pods = self._pods(handle)
        if not pods or pods[0].status.phase != "Running" or not pods[0].status.pod_ip:
            return None
        return str(pods[0].status.pod_ip)

    def stop(self, handle: str) -> None:
        """Delete the Job: its pods get SIGTERM, then SIGKILL after their termination grace period."""
        self._call("batch", "delete_namespaced_job", handle, self.namespace, propagation_policy="Background")

    def cancel(self, handle: str) -> None:
        self._call("batch", "delete_namespaced_job", handle, self.namespace, propagation_policy="Background")

    def logs(self, handle: str) -> str:
        pods = self._pods(handle)
        texts = [str(self._call("core", "read_namespaced_pod_log", p.metadata.name, self.namespace,
                                limit_bytes=MAX_LOG // max(len(pods), 1))) for p in pods]
        if len(texts) == 1:
            return texts[0]
        return "".join(f"== node {i} ==\n{t}" for i, t in enumerate(texts))

    def usage(self, handle: str) -> Usage | None:
        """Allocated device-seconds from the Job's start and completion times and its pods' limits."""
        job = self._call("batch", "read_namespaced_job_status", handle, self.namespace)
        start, end = job.status.start_time, job.status.completion_time
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            return None
        limits = job.spec.template.spec.containers[0].resources.limits or {}
        devices = devices_of(limits) * (job.spec.completions or 1)
        elapsed = (end - start).total_seconds()
        return Usage(devices * elapsed, elapsed, None, "Job start/completion × device limits")


def _finished(job: Any) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or [])
