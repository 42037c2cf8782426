"""A Ray cluster as a center, through the Ray Jobs API (JobSubmissionClient) and the state API.

Devices are Ray custom resources (`{"A100": 8}` on a node); `engine_config.resources` maps each
resource name to a catalog chip, so the inventory is every node's amount of each mapped resource.
A job is one Ray job whose entrypoint reserves `devices_per_node` of the pool's resource (a share of one
device: that fraction of it — Ray schedules fractional resources — with the share's environment; a
CPU-only job: its CPUs); its
submission id is `zs-<job id>-<attempt tag>`, and its metadata names the zhisuan job, so a restarted
control loop finds it again. A gang over several Ray nodes would need a placement group inside the
job: such placements are refused with that reason. Needs `pip install 'zhisuan[ray]'`.
"""

from __future__ import annotations

import math
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from zhisuan.engines.base import EngineDown, EngineStatus, ExternalLoad, Launch, TextLogs, Usage, cut
from zhisuan.engines.devices import VISIBLE, share_env
from zhisuan.engines.inputs import hand_inputs
from zhisuan.engines.rendezvous import gang_env, port_for
from zhisuan.model import Pool

RUNNING = {"PENDING", "RUNNING"}


class RayEngine(TextLogs):
    kind = "ray"
    starts_at_submit = False  # a Ray job is PENDING until its entrypoint resources are free

    def __init__(self, center: str, address: str, resources: dict[str, str], prices: dict[str, float],
                 timeout: float = 10.0, checkpoints: str = "/tmp/zhisuan-checkpoints",
                 run_as_uid: int | None = None) -> None:
        self.center, self.address = center, address.rstrip("/")
        self.resources, self.prices, self.timeout = resources, prices, timeout
        self.checkpoints = checkpoints
        self.run_as_uid = run_as_uid
        self._client: Any = None

    @classmethod
    def from_config(cls, center: str, cfg: dict[str, Any]) -> RayEngine:
        """`engine_config` keys: address (the Jobs API, http://127.0.0.1:8265), resources {Ray resource:
        catalog chip}, prices {Ray resource: CNY per device-hour}, timeout (s), checkpoints (a folder every
        node shares, for $ZHISUAN_CHECKPOINT_DIR), run_as_uid (when the raylets run as root: the uid the
        job's command drops to with setpriv)."""
        unknown = set(cfg) - {"address", "resources", "prices", "timeout", "checkpoints", "run_as_uid"}
        if unknown or "address" not in cfg or "resources" not in cfg:
            raise ValueError(f"engine_config of {center}: needs address and resources; unknown keys {sorted(unknown)}")
        return cls(center, str(cfg["address"]), dict(cfg["resources"]), dict(cfg.get("prices", {})),
                   float(cfg.get("timeout", 10.0)), str(cfg.get("checkpoints", "/tmp/zhisuan-checkpoints")),
                   int(cfg["run_as_uid"]) if cfg.get("run_as_uid") is not None else None)

    def _jobs(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as e:
                raise EngineDown(f"{self.center}: Ray is not installed: pip install 'zhisuan[ray]'") from e
            try:
                self._client = JobSubmissionClient(self.address)
            except (ConnectionError, RuntimeError) as e:
                raise EngineDown(f"{self.center}: the Ray Jobs API at {self.address} does not answer: {e}") from e
        return self._client

    def _call(self, method: str, *args: Any, **kw: Any) -> Any:
        try:
            return getattr(self._jobs(), method)(*args, **kw)
        except (ConnectionError, httpx.HTTPError) as e:
            raise EngineDown(f"{self.center}: Ray does not answer: {e}") from e
        except RuntimeError as e:  # the Jobs API reports request failures as RuntimeError
            if "Failed to connect" in str(e) or "Connection" in str(e):
                raise EngineDown(f"{self.center}: Ray does not answer: {e}") from e
            raise OSError(f"{self.center}: Ray refused: {e}") from e

    def health(self) -> None:
        try:
            httpx.get(f"{self.address}/api/version", timeout=self.timeout).raise_for_status()
        except httpx.HTTPError as e:
            raise EngineDown(f"{self.center}: Ray dashboard at {self.address} does not answer ({e})") from e

    def inventory(self) -> list[Pool]:
        """One pool per mapped resource: the nodes that have it, the amount per node (state API)."""
        try:
            from ray.util.state import list_nodes
        except ImportError as e:
            raise EngineDown(f"{self.center}: Ray is not installed: pip install 'zhisuan[ray]'") from e
        nodes = [n for n in list_nodes(address=self.address, detail=True, timeout=int(self.timeout))
                 if n.state == "ALIVE"]
        pools = []
        for resource, chip in sorted(self.resources.items()):
            have = sorted((str(n.node_name), int(n.resources_total.get(resource, 0))) for n in nodes
                          if n.resources_total.get(resource, 0) >= 1)
            if not have:
                continue
            if resource not in self.prices:
                raise ValueError(f"engine_config.prices: no price for Ray resource {resource!r} of {self.center}")
            pools.append(Pool(name=resource.lower(), accelerator=chip, nodes=len(have),
                              devices_per_node=min(k for _, k in have), price_per_device_hour=self.prices[resource],
                              node_names=[name for name, _ in have], max_gang_nodes=1))
        return pools

    def _resource(self, pool: Pool) -> str:
        for resource in self.resources:
            if resource.lower() == pool.name:
                return resource
        raise OSError(f"{self.center}: pool {pool.name} has no Ray resource in engine_config.resources")

    def submit(self, launch: Launch) -> str:
        if len(launch.nodes) > 1:
            raise OSError(f"{self.center}: a gang over {len(launch.nodes)} Ray nodes needs a placement group "
                          "inside the job; the Ray engine starts single-node jobs only")
        devices = ",".join(launch.devices[0])
        gang = gang_env("127.0.0.1", str(port_for(launch.job_id, launch.attempt)), "localhost", "1", "0",
                        str(launch.devices_per_node), devices)
        env = {**gang, **launch.env, "ZHISUAN_JOB_ID": launch.job_id, "ZHISUAN_NODE_RANK": "0", "ZHISUAN_NNODES": "1",
               "ZHISUAN_ATTEMPT": str(launch.attempt), "ZHISUAN_CHECKPOINT_DIR": self.checkpoint_dir(launch.job_id),
               VISIBLE.get(launch.pool.chip.stack, "ZHISUAN_VISIBLE_DEVICES"): devices}
        if launch.milli:
            env.update(share_env(launch.pool.chip.stack, launch.milli, launch.pool.chip.memory_gb))
        if launch.inputs:  # beside the checkpoints, on the filesystem the Ray node shares with this process
            env.update(hand_inputs(Path(self.checkpoints) / f".inputs-{launch.job_id}-{launch.attempt}", launch.inputs))
        amount = launch.milli / 1000 if launch.milli else float(launch.devices_per_node)
        resources = {self._resource(launch.pool): amount} if amount else {}  # Ray takes fractions of a resource
        submission = f"zs-{launch.job_id}-{uuid.uuid4().hex[:6]}"
        entrypoint = f"bash -c {shlex.quote(launch.command)}"
        if self.run_as_uid is not None:  # a root raylet: the job itself runs under an unprivileged uid
            uid, folder = self.run_as_uid, shlex.quote(self.checkpoint_dir(launch.job_id))
            base = shlex.quote(self.checkpoints)
            entrypoint = (f"mkdir -p -m 1777 {base} && mkdir -p {folder} && chown {uid}:{uid} {folder} && "
                          f"cd /tmp && exec setpriv --reuid={uid} --regid={uid} --clear-groups -- {entrypoint}")
        self._call("submit_job", entrypoint=entrypoint, submission_id=submission,
                   entrypoint_resources=resources, entrypoint_num_cpus=launch.cpus if not amount else 0,
                   runtime_env={"env_vars": env},
                   metadata={"zhisuan_job": launch.job_id, "zhisuan_name": launch.name,
                             "zhisuan_devices": f"{amount:g}", "zhisuan_attempt": str(launch.attempt),
                             "zhisuan_resource": self._resource(launch.pool)})
        return submission

    def host_of(self, handle: str) -> str | None:
        """The IP of the Ray node the job's entrypoint runs on (its driver node)."""
        node = self._call("get_job_info", handle).driver_node_id
        if not node:
            return None
        from ray.util.state import list_nodes
        found = list_nodes(address=self.address, filters=[("node_id", "=", node)], timeout=int(self.timeout))
        return str(found[0].node_ip) if found else None

    def uid_of(self, handle: str) -> int | None:
        """The uid a job's command runs under, when this engine drops to one (`run_as_uid`)."""
        return self.run_as_uid

    def checkpoint_dir(self, job_id: str) -> str:
        """Kept across attempts; a path every Ray node can reach (`engine_config.checkpoints`, shared storage)."""
        return f"{self.checkpoints.rstrip('/')}/{job_id}"

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        for job in self._call("list_jobs"):
            meta = job.metadata or {}
            if meta.get("zhisuan_job") == job_id and str(job.status.value) in RUNNING and (
                    attempt is None or meta.get("zhisuan_attempt") == str(attempt)):
                return str(job.submission_id)
        return None

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        """Devices used on each node by anything but zhisuan's running jobs: the autoscaler's per-node usage
        minus the entrypoint resources of our jobs there. Ray knows no end time for them (inf)."""
        try:
            report = httpx.get(f"{self.address}/api/cluster_status", timeout=self.timeout).json()
            by_node = report["data"]["clusterStatus"]["loadMetricsReport"]["usageByNode"]
            from ray.util.state import list_nodes
            names = {n.node_id: str(n.node_name) for n in list_nodes(address=self.address, timeout=int(self.timeout))}
        except (httpx.HTTPError, KeyError, ValueError) as e:
            raise EngineDown(f"{self.center}: Ray's cluster status does not answer: {e}") from e
        ours: dict[tuple[str, str], float] = {}
        for job in self._call("list_jobs"):
            meta = job.metadata or {}
            if meta.get("zhisuan_job") and str(job.status.value) == "RUNNING" and job.driver_node_id:
                key = (names.get(job.driver_node_id, ""), meta.get("zhisuan_resource", ""))
                ours[key] = ours.get(key, 0.0) + float(meta.get("zhisuan_devices", 0))
        out = []
        now = time.time()
        for pool in pools:
            resource = self._resource(pool)
            for node_id, usage in by_node.items():
                name = names.get(node_id, "")
                used = float(usage.get(resource, [0.0, 0.0])[0]) - ours.get((name, resource), 0.0)
                if name in pool.node_names and used >= 1:
                    what = f"other Ray work on {name} ({int(used)} {resource})"
                    out.append(ExternalLoad(f"ray:{node_id[:8]}", pool.name, (pool.node_names.index(name),),
                                            int(used), now, math.inf, what))
        return out

    def poll(self, handle: str) -> EngineStatus:
        info = self._call("get_job_info", handle)
        status = str(info.status.value)
        if status == "PENDING":
            return EngineStatus("queued", None, f"ray PENDING: {(info.message or '').strip()[:200]}".rstrip(": "))
        if status in RUNNING:
            return EngineStatus("running")
        if status == "SUCCEEDED":
            return EngineStatus("succeeded", 0)
        first = (info.message or "").splitlines()[0] if info.message else ""
        return EngineStatus("failed", info.driver_exit_code, f"ray {status}: {first}".rstrip(": "))

    def stop(self, handle: str) -> None:
        """Ray's stop: SIGTERM to the entrypoint, SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (Ray's own grace)."""
        self._call("stop_job", handle)

    def cancel(self, handle: str) -> None:
        self._call("stop_job", handle)

    def logs(self, handle: str) -> str:
        return cut(str(self._call("get_job_logs", handle)))

    def usage(self, handle: str) -> Usage | None:
        """Allocated device-seconds from the job's start and end (times in ms) and the devices it reserved
        (kept in its metadata); Ray does not measure device use."""
        info = self._call("get_job_info", handle)
        if not info.start_time:
            return None
        amount = float((info.metadata or {}).get("zhisuan_devices", 0))
        end = info.end_time or info.start_time
        elapsed = (end - info.start_time) / 1000.0
        return Usage(amount * elapsed, elapsed, None, "Ray job start/end × entrypoint resources")
