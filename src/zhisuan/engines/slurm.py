"""A Slurm cluster as a center, through Slurm's own commands (sbatch, squeue/sacct --json, scancel,
sinfo --json, scontrol ping). One engine per cluster, named by its slurm.conf (`conf`) and/or `cluster`.

A gang is `--nodes=N --ntasks-per-node=1 --gres=gpu:TYPE:K`, pinned with `--nodelist` to the nodes
the zhisuan scheduler chose; a share of one GPU is `--gres=shard:K` (Slurm's gres/shard, SHARDS_PER_GPU
shards per GPU, so jobs on shards of one GPU run side by side) and a CPU-only job asks no GRES at all.
The job name is `zs-<job id>` and the comment `zhisuan:<job id>:<attempt>`,
so a restarted control loop finds its jobs again, and every other job in `squeue` is the cluster's own
load (`load`), which the scheduler plans around. Output goes to the job's run folder, which must be
visible to the cluster's nodes (here: the same machine).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pwd
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from zhisuan.engines.base import EngineDown, EngineStatus, ExternalLoad, Launch, Usage, file_delta, tail_file
from zhisuan.engines.devices import VISIBLE, share_env
from zhisuan.engines.inputs import hand_inputs
from zhisuan.engines.rendezvous import gang_env, port_for
from zhisuan.engines.sandbox import SAFE_PATH
from zhisuan.model import Pool

log = logging.getLogger(__name__)

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}
QUEUED = {"PENDING", "REQUEUED"}
HOLDING = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "STAGE_OUT"}  # jobs that hold nodes
UNAVAILABLE = {"DOWN", "DRAIN", "FAIL", "MAINTENANCE", "NOT_RESPONDING", "POWERED_DOWN", "POWER_DOWN", "FUTURE",
               "RESERVED", "INVALID_REG", "REBOOT_REQUESTED", "REBOOT_ISSUED"}  # node states/flags: no new jobs


SHARDS_PER_GPU = 100  # gres.conf `Name=shard Count=100` per GPU (scripts/slurm-up.sh): a shard is 1/100 GPU
DETAIL = re.compile(r"(gpu|shard)(?::[^:(,]+)?:(\d+)\(IDX:([^)]*)\)")  # squeue gres_detail entries


def shards_of(milli: int) -> int:
    """Shards a share of `milli` thousandths of one GPU asks (rounded up: never less than the share)."""
    return max(1, math.ceil(milli * SHARDS_PER_GPU / 1000))


def gres_args(gtype: str, devices_per_node: int, milli: int) -> list[str]:
    """sbatch's GRES for a job: whole GPUs of the pool's type, shards of one GPU, or nothing (CPU-only)."""
    if milli:
        return [f"--gres=shard:{shards_of(milli)}"]
    return [f"--gres=gpu:{gtype}:{devices_per_node}"] if devices_per_node else []


def gpus_held(detail: str) -> int:
    """GPUs one node's `gres_detail` holds: `gpu:a100:2(IDX:0-1)` -> 2; shards hold their GPUs too
    (`shard:50(IDX:0)` -> 1), since Slurm gives a GPU whole or as shards, never both at once."""
    held = 0
    for name, count, idx in DETAIL.findall(detail):
        if name == "gpu":
            held += int(count)
        else:
            held += sum(int(b) - int(a) + 1 if b else 1 for a, _, b in
                        (r.partition("-") for r in idx.split(",") if r and r[0].isdigit()))
    return held


class SlurmError(OSError):
    """A Slurm command refused (not a silent controller: that is EngineDown)."""


def gres_of(gres: str) -> tuple[str, int] | None:
    """`gpu:a100:8(S:0-1)` -> ("a100", 8); None when the node has no typed GPUs."""
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) == 3 and parts[2].isdigit():
            return parts[1], int(parts[2])
    return None


class SlurmEngine:
    kind = "slurm"
    starts_at_submit = False  # sbatch queues: the job runs when slurmctld starts it

    def __init__(self, center: str, runs: Path, conf: str | None = None, cluster: str | None = None,
                 partition: str | None = None, chips: dict[str, str] | None = None,
                 prices: dict[str, float] | None = None, timeout: float = 10.0, cache: float = 0.5,
                 run_as: str | None = None, accounts: dict[str, str] | None = None) -> None:
        self.center, self.runs = center, Path(runs).resolve()
        # never root: a job runs as its tenant's cluster account, else `run_as` (default: nobody)
        self.run_as = run_as or ("nobody" if os.geteuid() == 0 else None)
        self.accounts = accounts or {}
        if self.run_as and not self.accounts:
            log.warning("%s: no `accounts` in engine_config: every tenant's jobs run as the cluster account %s "
                        "and, on a shared node, could signal one another's processes", center, self.run_as)
        self.conf, self.cluster, self.partition = conf, cluster, partition
        self.chips, self.prices = chips or {}, prices or {}
        self.timeout, self.cache = timeout, cache
        self._jobs: tuple[float, dict[str, dict[str, Any]]] = (float("-inf"), {})
        self._targets: dict[str, tuple[str, str]] = {}  # pool name -> (partition, gres type), from inventory

    @classmethod
    def from_config(cls, center: str, cfg: dict[str, Any], runs: Path) -> SlurmEngine:
        """`engine_config` keys: conf (slurm.conf path), cluster (-M), partition, chips {gres type: catalog
        name}, prices {gres type: CNY per device-hour}, timeout (s), run_as (the cluster account jobs run as;
        default nobody), accounts {tenant: cluster account}."""
        unknown = set(cfg) - {"conf", "cluster", "partition", "chips", "prices", "timeout", "run_as", "accounts"}
        if unknown:
            raise ValueError(f"engine_config of {center}: unknown keys {sorted(unknown)}")
        return cls(center, runs, cfg.get("conf"), cfg.get("cluster"), cfg.get("partition"), cfg.get("chips"),
                   cfg.get("prices"), float(cfg.get("timeout", 10.0)), run_as=cfg.get("run_as"),
                   accounts=cfg.get("accounts"))

    def _cmd(self, args: list[str]) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        if self.conf:
            env["SLURM_CONF"] = self.conf
        if self.cluster:
            args = [args[0], "-M", self.cluster, *args[1:]]
        try:
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise EngineDown(f"{self.center}: `{args[0]}` did not answer in {self.timeout:g} s") from e
        except FileNotFoundError as e:
            raise EngineDown(f"{self.center}: Slurm's `{args[0]}` is not installed here") from e
        if done.returncode != 0:
            msg = (done.stderr or done.stdout).strip()
            if any(sign in msg for sign in ("Unable to contact slurm controller", "Connection refused", "is DOWN")):
                raise EngineDown(f"{self.center}: slurmctld does not answer ({msg.splitlines()[-1]})")
            raise SlurmError(f"{self.center}: {' '.join(args[:2])} failed: {msg}")
        return done.stdout

    def _json(self, args: list[str]) -> dict[str, Any]:
        """A `--json` command's answer. squeue and sinfo exit 0 with an `errors` list when slurmctld is
        gone, so those errors mean the controller is down; sacct's mean nothing was found."""
        data: dict[str, Any] = json.loads(self._cmd(args))
        errors = data.get("errors") or []
        if errors and args[0] in ("squeue", "sinfo"):
            raise EngineDown(f"{self.center}: {args[0]}: {errors[0].get('description', errors[0])}")
        return data

    def health(self) -> None:
        out = self._cmd(["scontrol", "ping"])
        if "is UP" not in out:
            raise EngineDown(f"{self.center}: {out.strip() or 'scontrol ping: no answer'}")

    def inventory(self) -> list[Pool]:
        """Pools = nodes grouped by partition and GPU type/count (`sinfo --json`), chips via the catalog."""
        groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for node in self._json(["sinfo", "--json"])["nodes"]:
            gres = gres_of(node.get("gres", ""))
            if gres is None:
                continue
            for part in node.get("partitions", []):
                if self.partition is None or part == self.partition:
                    groups.setdefault((part, *gres), []).append(node)
        pools = []
        for (part, gtype, count), nodes in sorted(groups.items()):
            if gtype not in self.prices:
                raise ValueError(f"engine_config.prices: no price for gres type {gtype!r} of {self.center}")
            nodes.sort(key=lambda n: str(n["name"]))
            self._targets[f"{part}-{gtype}"] = (part, gtype)
            pools.append(Pool(
                name=f"{part}-{gtype}", accelerator=self.chips.get(gtype, gtype), nodes=len(nodes),
                devices_per_node=count, cpus_per_node=min(int(n["cpus"]) for n in nodes),
                memory_gib_per_node=min(int(n["real_memory"]) for n in nodes) / 1024,
                price_per_device_hour=float(self.prices[gtype]), node_names=[str(n["name"]) for n in nodes]))
        return pools

    def _target(self, pool: Pool) -> tuple[str, str]:
        """(partition, gres type) of a pool: as the inventory found it, else from a `<partition>-<type>` name."""
        if pool.name not in self._targets:
            part, _, gtype = pool.name.rpartition("-")
            if not part:
                raise SlurmError(f"{self.center}: pool {pool.name!r} is not named <partition>-<gres type>")
            self._targets[pool.name] = (part, gtype)
        return self._targets[pool.name]

    def submit(self, launch: Launch) -> str:
        user = self.accounts.get(launch.tenant, self.run_as)
        ids = pwd.getpwnam(user) if user else None  # KeyError: no such account here, the start fails alone
        run = self.runs / launch.job_id
        checkpoint = run / "checkpoint"
        checkpoint.mkdir(parents=True, exist_ok=True)
        stack_var = VISIBLE.get(launch.pool.chip.stack)
        lines = [f"export PATH={SAFE_PATH}", f"export HOME={shlex.quote(str(run))}"]
        # member 0 runs the batch step, so srun's launch node is its address; the hosts are the ones zhisuan
        # asks for (--nodelist), known now: nothing to run on the node before the job's own command
        hosts = ",".join(launch.pool.node_names[n] for n in launch.nodes) if launch.pool.node_names else \
            "$SLURM_JOB_NODELIST"
        gang = gang_env("$SLURM_LAUNCH_NODE_IPADDR", str(port_for(launch.job_id, launch.attempt)), hosts,
                        "$SLURM_NNODES", "$SLURM_NODEID", str(launch.devices_per_node), "$CUDA_VISIBLE_DEVICES")
        lines += [f'export {k}="{v}"' for k, v in gang.items()]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in launch.env.items()]
        lines += [f"export ZHISUAN_JOB_ID={launch.job_id}", "export ZHISUAN_NODE_RANK=$SLURM_NODEID",
                  "export ZHISUAN_NNODES=$SLURM_NNODES", f"export ZHISUAN_ATTEMPT={launch.attempt}",
                  f"export ZHISUAN_CHECKPOINT_DIR={shlex.quote(str(checkpoint))}"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in hand_inputs(run, launch.inputs).items()]
        if stack_var and stack_var != "CUDA_VISIBLE_DEVICES":  # Slurm sets CUDA_VISIBLE_DEVICES for gres/gpu
            lines.append(f"export {stack_var}=$CUDA_VISIBLE_DEVICES")  # and gres/shard (the shards' GPU)
        if launch.milli:
            chip = launch.pool.chip
            lines += [f"export {k}={shlex.quote(v)}" for k, v in share_env(chip.stack, launch.milli,
                                                                              chip.memory_gb).items()]
        command, batch = run / f"command-{launch.attempt}.sh", run / f"batch-{launch.attempt}.sh"
        command.write_text("\n".join([*lines, launch.command, ""]), encoding="utf-8")
        label = " --label" if len(launch.nodes) > 1 else ""
        partition, gtype = self._target(launch.pool)
        batch.write_text(f"#!/bin/bash\nexport PATH={SAFE_PATH}\nexec srun{label} --ntasks-per-node=1 /bin/bash "
                         f"{command}\n", encoding="utf-8")
        if ids is not None:  # the job's folder is its account's (output, checkpoints); nothing else of zhisuan's
            for path in (run, checkpoint, command):
                os.chown(path, ids.pw_uid, ids.pw_gid)
            os.chmod(run, 0o700)
            os.chmod(command, 0o600)
        # --export=NONE: nothing of the server's environment (database URL, credentials) reaches the job
        args = ["sbatch", "--parsable", "--export=NONE", f"--job-name=zs-{launch.job_id}",
                f"--comment=zhisuan:{launch.job_id}:{launch.attempt}",
                f"--nodes={len(launch.nodes)}", "--ntasks-per-node=1",
                *gres_args(gtype, launch.devices_per_node, launch.milli), f"--chdir={run}",
                f"--output={run}/slurm-%j.out", f"--partition={partition}"]
        if launch.cpus:
            args.append(f"--cpus-per-task={math.ceil(launch.cpus)}")
        if launch.pool.node_names:
            args.append("--nodelist=" + ",".join(launch.pool.node_names[n] for n in launch.nodes))
        if launch.timeout:
            args.append(f"--time={max(1, math.ceil(launch.timeout / 60))}")
        if ids is not None:
            args += [f"--uid={ids.pw_uid}", f"--gid={ids.pw_gid}"]
        job = self._cmd([*args, str(batch)]).strip().split(";")[0]
        self._jobs = (float("-inf"), {})
        return f"{job}@{run}"

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        found = [job for job in self._all_jobs().values() if job.get("name") == f"zs-{job_id}"
                 and (attempt is None or job.get("comment") == f"zhisuan:{job_id}:{attempt}")]
        if not found:
            return None
        latest = max(found, key=lambda j: int(j["job_id"]))
        return f"{latest['job_id']}@{self.runs / job_id}"

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        """The cluster's own load on these pools: running jobs that zhisuan did not submit (their GPUs per
        node from squeue's gres_detail, until their end_time) and nodes that take no new jobs (down,
        drained, ... from sinfo), whole."""
        where: dict[str, list[tuple[Pool, int]]] = {}
        for pool in pools:
            for i, name in enumerate(pool.node_names):
                where.setdefault(name, []).append((pool, i))
        out = []
        for job in self._all_jobs(fresh=True).values():
            if str(job.get("comment") or "").startswith("zhisuan:") or job.get("job_state") not in HOLDING:
                continue
            names = [n["nodename"] for n in (job.get("job_resources") or {}).get("allocated_nodes", [])]
            end = float(job.get("end_time") or 0) or math.inf
            what = f"slurm job {job['job_id']} ({job.get('user_name', '?')})"
            for name, gres in zip(names, job.get("gres_detail") or [], strict=False):
                held = gpus_held(gres)
                for pool, i in where.get(name, []) if held else []:
                    out.append(ExternalLoad(f"slurm:{job['job_id']}", pool.name, (i,), held,
                                            float(job.get("start_time") or 0), end, what))
        for node in self._json(["sinfo", "--json"])["nodes"]:
            states = {str(node.get("state", "")).upper(), *(str(f).upper() for f in node.get("state_flags") or [])}
            bad = sorted(states & UNAVAILABLE)
            for pool, i in where.get(str(node["name"]), []) if bad else []:
                reason = f": {node['reason']}" if node.get("reason") else ""
                out.append(ExternalLoad(f"node:{node['name']}", pool.name, (i,), pool.devices_per_node, time.time(),
                                        math.inf, f"node {node['name']} {'/'.join(bad).lower()}{reason}"))
        return out

    def host_of(self, handle: str) -> str | None:
        """The NodeAddr of the node running the job's batch step (member 0; `--nodelist` order)."""
        host = str(self._all_jobs().get(handle.split("@")[0], {}).get("batch_host") or "")
        if not host:
            return None
        node: dict[str, Any] = next((n for n in self._json(["sinfo", "--json"])["nodes"]
                                     if str(n.get("name")) == host), {})
        return str(node.get("address") or host)

    def uid_of(self, handle: str) -> int | None:
        """The uid the job runs under, as slurmctld records it."""
        uid = self._all_jobs().get(handle.split("@")[0], {}).get("user_id")
        return int(uid) if isinstance(uid, int) else None

    def _all_jobs(self, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """Every job slurmctld still holds (one squeue per `cache` seconds, whatever the number of jobs)."""
        at, jobs = self._jobs
        if fresh or time.monotonic() - at > self.cache:
            data = self._json(["squeue", "--json", "--states=all"])
            jobs = {str(j["job_id"]): j for j in data["jobs"]}
            self._jobs = (time.monotonic(), jobs)
        return jobs

    def poll(self, handle: str) -> EngineStatus:
        job_id = handle.split("@")[0]
        job = self._all_jobs().get(job_id)
        if job is None:
            return self._poll_sacct(job_id)
        state = str(job["job_state"])
        if state in QUEUED:
            start = float(job.get("start_time") or 0)
            why = str(job.get("state_reason") or "None")
            return EngineStatus("queued", None, f"slurm {state if why == 'None' else why}", start or None)
        if state in ACTIVE:
            return EngineStatus("running")
        code = int(job.get("exit_code") or 0)
        exit_code = code >> 8 if code > 255 else code
        if state == "COMPLETED":
            return EngineStatus("succeeded", 0)
        return EngineStatus("failed", exit_code or None, f"slurm {state} ({job.get('state_reason', '')})")

    def _poll_sacct(self, job_id: str) -> EngineStatus:
        jobs = self._json(["sacct", "--json", "-j", job_id]).get("jobs", [])
        if not jobs:
            return EngineStatus("failed", None, f"slurm job {job_id} is unknown to the cluster")
        state = str(jobs[0]["state"]["current"])
        if state in ACTIVE:
            return EngineStatus("running")
        return EngineStatus("succeeded", 0) if state == "COMPLETED" else EngineStatus("failed", None, f"slurm {state}")

    def stop(self, handle: str) -> None:
        """SIGTERM to every step of the job (its tasks, not the batch shell); a queued job is just cancelled."""
        job = handle.split("@")[0]
        if str(self._all_jobs().get(job, {}).get("job_state")) in QUEUED:
            self.cancel(handle)
            return
        self._cmd(["scancel", "--signal=TERM", job])

    def cancel(self, handle: str) -> None:
        self._cmd(["scancel", handle.split("@")[0]])
        self._jobs = (float("-inf"), {})

    def _out(self, handle: str) -> Path:
        job_id, run = handle.split("@", 1)
        return Path(run) / f"slurm-{job_id}.out"

    def logs(self, handle: str) -> str:
        return tail_file(self._out(handle))

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str:
        return file_delta([self._out(handle)], offsets, whole_lines=True, label=False)

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str:
        return file_delta([self._out(handle)], offsets, whole_lines=False, label=False)

    def usage(self, handle: str) -> Usage | None:
        """Allocated GPU-seconds from sacct's TRES; busy from the steps' average `gres/gpuutil` when the
        cluster gathers it (acct_gather with NVML), else None: Slurm then did not measure."""
        jobs = self._json(["sacct", "--json", "-j", handle.split("@")[0]]).get("jobs", [])
        return usage_of(jobs[0]) if jobs else None


def usage_of(job: dict[str, Any]) -> Usage:
    """A Usage from one `sacct --json` job record (shards counted as their fraction of a GPU)."""
    alloc = job["tres"]["allocated"]
    gpus: float = sum(int(t["count"]) for t in alloc if t["type"] == "gres" and t["name"] == "gpu")
    gpus += sum(int(t["count"]) for t in alloc if t["type"] == "gres" and t["name"] == "shard") / SHARDS_PER_GPU
    elapsed = float(job["time"]["elapsed"])
    utils = [float(t["count"]) for step in job.get("steps", [])
             for t in step.get("tres", {}).get("requested", {}).get("average", [])
             if t.get("type") == "gres" and t.get("name") == "gpuutil"]
    energy = consumed_energy(job)
    if not utils:
        return Usage(gpus * elapsed, elapsed, None, "sacct AllocTRES gres/gpu (+ gres/shard) × elapsed", energy)
    busy = min(1.0, sum(utils) / len(utils) / 100.0) * gpus * elapsed
    return Usage(gpus * elapsed, elapsed, busy, "sacct gres/gpuutil (step average)", energy)


def consumed_energy(job: dict[str, Any]) -> float | None:
    """Joules the job's steps consumed (`ConsumedEnergyRaw`), when the cluster gathers energy
    (AcctGatherEnergyType); a cluster that does not reports 0 or nothing, which is None here, not 0 J."""
    total = 0.0
    for step in job.get("steps", []):
        for t in step.get("tres", {}).get("consumed", {}).get("total", []):
            if t.get("type") == "energy" and isinstance(t.get("count"), int | float) and t["count"] > 0:
                total += float(t["count"])
    return total if total > 0 and math.isfinite(total) else None
