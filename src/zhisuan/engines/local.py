"""The local engine: each gang member is a subprocess on this machine, with the devices assigned to it.

A job has a folder under the runs root with one folder per attempt and a `checkpoint/` folder kept
across attempts (`$ZHISUAN_CHECKPOINT_DIR`). The attempt folder is the server's: `intent.json`, written
before anything is spawned (so an attempt is begun at most once), `handle.json` (the members' wrapper
pids), the exit codes and the logs, all root-only; the job runs in its `work/` folder under a uid of its
own (see sandbox.py) with a clean environment. Each member's wrapper — a root `sh` the job cannot signal
— waits for the job's command and records its exit code, so a control process restarted after a crash
re-adopts running jobs from disk: live wrappers are running, exit files are results, neither is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhisuan.engines import confine
from zhisuan.engines.base import (
    MAX_LOG,
    EngineStatus,
    ExternalLoad,
    Launch,
    Usage,
    cap_file,
    file_delta,
    tail_file,
)
from zhisuan.engines.confine import Limits
from zhisuan.engines.devices import VISIBLE, share_env
from zhisuan.engines.inputs import hand_inputs
from zhisuan.engines.rendezvous import free_port, gang_env
from zhisuan.engines.sandbox import (
    UidPool,
    check_reachable,
    isolating,
    job_env,
    owned_dir,
    processes_of,
    stop_tree,
    sweep_groups,
)
from zhisuan.model import Pool

LOG_CAP = 64 * 1024 * 1024  # bytes of output kept on disk per gang member (the end of it): kubelet keeps 5 × 10 MiB


@dataclass(frozen=True)
class _Run:
    """What the attempt folder records about a started job."""

    pids: list[int]  # the members' wrappers (empty when only the intent was written before a crash)
    members: int
    uid: int | None  # the job's own uid (None: not isolated)
    started: float
    timeout: float | None
    stop_requested: float | None = None  # when SIGTERM was sent (a preemption, a timeout)
    memory: int | None = None  # each member's memory limit, bytes (None: no cgroup of its own)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of ours is a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _why(code: int) -> str:
    """A shell's exit code in words: 128 + N is death by signal N."""
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(code - 128).name}"
    return "non-zero exit"


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically (a reader sees the old file or the whole new one), readable by root only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class LocalEngine:
    kind = "local"
    starts_at_submit = True  # a submitted job's processes run at once: no queue of its own

    def __init__(self, root: Path, grace: float = 5.0, isolate: bool | None = None, log_cap: int = LOG_CAP,
                 pids: int = confine.PIDS) -> None:
        self.root = Path(root).resolve()  # jobs run in their own folder: relative paths would break
        self.grace, self.log_cap, self.pids = grace, log_cap, pids
        self.isolate = isolating() if isolate is None else isolate
        # what the kernel enforces beyond the uid (confine.py): a cgroup and a mount namespace per member
        self.cgroups = confine.Cgroups() if self.isolate else None
        self.namespaces = self.isolate and confine.can_unshare()
        if self.namespaces:
            confine.STAGE.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.shown = confine.shown_code()  # kept visible, read-only, where a job's /tmp is its own
        owned_dir(self.root, None, 0o711)  # jobs pass through to their own folder, and see nothing else
        if self.isolate:
            check_reachable(self.root)
        self.uids = UidPool()
        if self.cgroups is not None and self.cgroups.version:
            sweep_groups(self.cgroups, self.uids.leases)  # what a crash or a slow exit left
        self._runs: dict[str, _Run] = {}  # handle -> what its folder says (pids never change)

    def run_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def attempt_dir(self, job_id: str, attempt: int) -> Path:
        return self.run_dir(job_id) / f"attempt-{attempt}"

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        """The handle of a job's attempt this engine began (from disk, so it survives restarts), else None;
        without `attempt`, the latest one. An attempt is begun once its intent is written."""
        if attempt is None:
            found = sorted(self.run_dir(job_id).glob("attempt-*/intent.json"), key=lambda p: int(p.parent.name[8:]))
            return str(found[-1].parent) if found else None
        run = self.attempt_dir(job_id, attempt)
        return str(run) if (run / "intent.json").exists() else None

    def inventory(self) -> list[Pool]:
        return []  # local pools are declared in the network file (or found by NVML, see nvml.py)

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        return []  # this machine's devices are zhisuan's alone

    def health(self) -> None:
        return None  # this process is the engine

    def usage(self, handle: str) -> Usage | None:
        return None  # metering of local jobs comes with NVML sampling

    def submit(self, launch: Launch) -> str:
        env = dict(launch.env)
        if launch.milli:  # the engine's word on the share wins over the job's own env
            env.update(share_env(launch.pool.chip.stack, launch.milli, launch.pool.chip.memory_gb))
        pool = launch.pool
        share = (launch.milli / 1000 if launch.milli else launch.devices_per_node / pool.devices_per_node) \
            if pool.devices_per_node and launch.devices_per_node else 1.0
        limits = confine.limits_for(share, launch.cpus, launch.memory_gib, pool.cpus_per_node,
                                    pool.memory_gib_per_node, self.pids)
        return self.run(launch.job_id, launch.command, launch.devices, launch.pool.chip.stack, env,
                        launch.timeout, launch.attempt, launch.inputs, limits)

    def run(self, job_id: str, command: str, devices: list[list[str]], stack: str,
            env: dict[str, str] | None = None, timeout: float | None = None, attempt: int = 1,
            inputs: dict[str, str] | None = None, limits: Limits | None = None) -> str:
        """Start one process per node of the gang; `devices[i]` are the device ids of member i, each member
        held to `limits` by a cgroup of its own when this machine has them (see confine.py)."""
        owned_dir(self.run_dir(job_id), None, 0o711)
        run = self.attempt_dir(job_id, attempt)
        if (run / "intent.json").exists():
            raise OSError(f"attempt {attempt} of {job_id} was begun before: it is not started twice")
        owned_dir(run, None, 0o711)
        uid = self.uids.take(str(run)) if self.isolate else None
        work = owned_dir(run / "work", uid, 0o700)
        checkpoint = owned_dir(self.run_dir(job_id) / "checkpoint", uid, 0o700)
        env = {**(env or {}), **hand_inputs(work, inputs or {})}
        started = time.time()
        if uid is None or self.cgroups is None or not self.cgroups.version or not self.namespaces:
            limits = None  # no cgroup of its own: signalled by its uid (a member joins its groups as it unshares)
        known = {"uid": uid, "members": len(devices), "started": started, "timeout": timeout,
                 "memory": limits.memory if limits else None}
        _write(run / "intent.json", known)
        pids: list[int] = []
        try:
            self._spawn(run, work, checkpoint, uid, job_id, command, devices, stack, env or {}, attempt, pids, limits)
            _write(run / "handle.json", {**known, "pids": pids})
        except BaseException:  # a full disk, a process table full: no member is left running untracked
            stop_tree(None, pids, signal.SIGKILL)  # the wrappers' groups (a member may not have dropped yet)
            stop_tree(uid, pids, signal.SIGKILL)
            if uid is not None:
                self._drop_groups(uid, len(devices))
            raise
        return str(run)

    def _member(self, run: Path, rank: int, uid: int | None, command: str, limits: Limits | None) -> list[str]:
        """The command a member's root wrapper runs: the job's, dropped to its uid, inside its cgroup and
        mount namespace where this machine gives them."""
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"] \
            if uid is not None else []  # no setuid program raises a job again (as allowPrivilegeEscalation: false)
        if uid is None or not self.namespaces:
            return [*drop, "/bin/sh", "-c", command]
        procs = self.cgroups.create(f"{uid}-{rank}", limits) if self.cgroups is not None and limits else []
        cage = run / f"cage-{rank}.sh"  # root's, 0600: the command is on no command line another uid could see
        fd = os.open(cage, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(confine.cage_script(command, drop, limits, self.root, self.shown))
        return confine.enter_command(procs, cage)

    def _drop_groups(self, uid: int, members: int) -> None:
        """Remove the members' cgroups, waiting at most a second in all (on the loop's thread): one that
        stays busy is left, and removed when its uid is next given out."""
        if self.cgroups is not None and self.cgroups.version:
            end = time.monotonic() + 1.0
            for rank in range(members):
                self.cgroups.remove(f"{uid}-{rank}", wait=max(0.0, end - time.monotonic()))

    def _spawn(self, run: Path, work: Path, checkpoint: Path, uid: int | None, job_id: str, command: str,
               devices: list[list[str]], stack: str, env: dict[str, str], attempt: int, pids: list[int],
               limits: Limits | None) -> None:
        port, n = str(free_port()), str(len(devices))  # every member runs here: member 0 is on loopback
        hosts = ",".join(["localhost"] * len(devices))
        for rank, ids in enumerate(devices):
            gang = gang_env("127.0.0.1", port, hosts, n, str(rank), str(len(ids)), ",".join(ids))
            member_env = job_env({**gang, **env, VISIBLE.get(stack, "ZHISUAN_VISIBLE_DEVICES"): ",".join(ids),
                                  "ZHISUAN_JOB_ID": job_id, "ZHISUAN_NODE_RANK": str(rank),
                                  "ZHISUAN_NNODES": n, "ZHISUAN_ATTEMPT": str(attempt),
                                  "ZHISUAN_CHECKPOINT_DIR": str(checkpoint)}, work)
            # the root wrapper outlives a SIGTERM (a no-op trap; the job's own shell starts with default
            # handlers), so a job that handles it — saving a checkpoint — still gets its exit code recorded
            exit_file = shlex.quote(str(run / f"exit-{rank}"))
            script = f"trap : TERM\n{shlex.join(self._member(run, rank, uid, command, limits))}\necho $? > {exit_file}"
            fd = os.open(run / f"out-{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as out:
                proc = subprocess.Popen(["/bin/sh", "-c", script], cwd=work, env=member_env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            pids.append(proc.pid)

    def host_of(self, handle: str) -> str | None:
        """Every run is on this machine."""
        return "127.0.0.1"

    def uid_of(self, handle: str) -> int | None:
        """The uid a run's processes have (None: runs are not isolated)."""
        return self._run(handle).uid

    def _run(self, handle: str) -> _Run:
        run = self._runs.get(handle)
        if run is None:
            folder = Path(handle)
            if not folder.resolve().is_relative_to(self.root):
                raise ValueError(f"not a run of this engine: {handle}")
            known = folder / "handle.json"
            d = json.loads((known if known.exists() else folder / "intent.json").read_text(encoding="utf-8"))
            stop = folder / "stop"
            run = _Run([int(p) for p in d.get("pids", [])], int(d["members"]), d["uid"], float(d["started"]),
                       d["timeout"], stop.stat().st_mtime if stop.exists() else None, d.get("memory"))
            if run.pids:  # a run begun but not yet recorded may still get its handle: read it again then
                self._runs[handle] = run
        return run

    def _alive(self, handle: str, run: _Run) -> list[bool]:
        """Per member: is its wrapper still there? Without pids (a crash right after the intent), the
        job's uid tells whether anything of it runs (while the uid is still the run's)."""
        if run.pids:
            return [_alive(p) for p in run.pids]
        mine = run.uid is not None and self.uids.holds(run.uid, handle)
        return [bool(mine and run.uid is not None and processes_of(run.uid))] * run.members

    def poll(self, handle: str) -> EngineStatus:
        run = self._run(handle)
        for rank in range(run.members):  # a job that prints without end cannot fill the disk
            cap_file(Path(handle) / f"out-{rank}.log", self.log_cap)
        codes = []
        timed_out = run.timeout is not None and time.time() - run.started > run.timeout
        alive = self._alive(handle, run)
        for rank in range(run.members):
            # liveness first: the wrapper writes its exit file before it exits, so once the process is
            # seen dead the file is final (checking the file first races with a process just ending)
            if alive[rank]:
                if timed_out:  # SIGTERM at the time limit, SIGKILL a grace period later
                    self.stop(handle)
                    if time.time() - (self._run(handle).stop_requested or 0.0) >= self.grace:
                        self._signal(handle, run, signal.SIGKILL)
                return EngineStatus("running")
            exit_file = Path(handle) / f"exit-{rank}"
            if not exit_file.exists():
                self._end(handle, run)
                if timed_out:
                    return EngineStatus("failed", None, f"timeout after {run.timeout:g} s")
                return EngineStatus("failed", None, f"process of node {rank} ended without an exit code (killed)")
            codes.append(int(exit_file.read_text().strip() or 1))
        oom = self._out_of_memory(handle, run, codes)
        self._end(handle, run)
        bad = [c for c in codes if c != 0]
        if oom:  # as Slurm's OUT_OF_MEMORY: the kernel killed a process of the job, whatever its exit code
            return EngineStatus("failed", bad[0] if bad else codes[0], oom)
        if timed_out and bad:
            return EngineStatus("failed", bad[0], f"timeout after {run.timeout:g} s")
        return EngineStatus("failed", bad[0], _why(bad[0])) if bad else EngineStatus("succeeded", 0)

    def _out_of_memory(self, handle: str, run: _Run, codes: list[int]) -> str:
        """Why the job failed if the kernel killed any of its processes for memory (else ""): counted as an
        OOM kill, or a member ended by SIGKILL whose memory had reached its limit (the count may lag)."""
        cgroups, said = self.cgroups, Path(handle) / "oom"  # kept: the groups go at the end, a poll may repeat
        if said.exists():
            return said.read_text(encoding="utf-8")
        if run.memory is None or run.uid is None or cgroups is None or not self.uids.holds(run.uid, handle):
            return ""
        hit = [rank for rank, code in enumerate(codes) if cgroups.oom_kills(f"{run.uid}-{rank}") or (
            code == 128 + signal.SIGKILL and cgroups.peak(f"{run.uid}-{rank}") >= 0.98 * run.memory)]
        if not hit:
            return ""
        why = (f"out of memory: node {hit[0]} went past its limit of {run.memory / 2**30:.3g} GiB "
               f"(resources.memory, or the node's memory in proportion to the devices it holds)")
        said.write_text(why, encoding="utf-8")
        return why

    def _end(self, handle: str, run: _Run) -> None:
        """The job is over: whatever it left behind (daemons, orphans of a killed member) goes too, its
        cgroups are removed, and its uid is free for the next job (only while this run still holds it: see
        sandbox.UidPool); its folder is closed to the uid, which a later job may be given."""
        if run.uid is not None and self.uids.holds(run.uid, handle):
            self._tree(run, signal.SIGKILL)
            self._drop_groups(run.uid, run.members)
            self._close(handle)
            self.uids.release(run.uid, handle)

    def _close(self, handle: str) -> None:
        """The uid may be given to another tenant's job one day: what this run left on disk is closed to it
        (its attempt folder root's 0700; the checkpoint folder too, unless a later attempt holds it now)."""
        folder = Path(handle)
        os.chmod(folder, 0o700)
        checkpoint = folder.parent / "checkpoint"
        if self.handle_of(folder.parent.name) == handle and checkpoint.exists():
            os.chown(checkpoint, 0, 0)
            os.chmod(checkpoint, 0o700)

    def _signal(self, handle: str, run: _Run, sig: int) -> None:
        """Signal the run's whole tree: by its uid while it holds it, else (not isolated) its process groups."""
        if run.uid is None:
            stop_tree(None, run.pids, sig)
        elif self.uids.holds(run.uid, handle):
            self._tree(run, sig)

    def _tree(self, run: _Run, sig: int) -> None:
        """Every process of an isolated run: its cgroups' members where it has them (no process leaves its
        cgroup, and reading them costs what the job runs, not a scan of every process here), else its uid's."""
        if run.memory is not None and run.uid is not None and self.cgroups is not None:
            for rank in range(run.members):
                self.cgroups.signal(f"{run.uid}-{rank}", sig)
        else:
            stop_tree(run.uid, run.pids, sig)

    def stop(self, handle: str) -> None:
        """Ask the job to end (SIGTERM to its whole tree) and return at once; the time is kept on disk, so
        a later `cancel` knows the grace period has been given."""
        run = self._run(handle)
        if run.stop_requested is None:
            (Path(handle) / "stop").touch()
            self._runs[handle] = run = _Run(run.pids, run.members, run.uid, run.started, run.timeout, time.time())
            self._signal(handle, run, signal.SIGTERM)

    def cancel(self, handle: str) -> None:
        """SIGTERM the job's tree, SIGKILL what is left after the grace period (at once when `stop` gave
        that grace already)."""
        run = self._run(handle)
        graced = run.stop_requested is not None and time.time() - run.stop_requested >= self.grace
        for sig in ((signal.SIGKILL,) if graced else (signal.SIGTERM, signal.SIGKILL)):
            self._signal(handle, run, sig)
            deadline = time.time() + self.grace
            while time.time() < deadline and any(self._alive(handle, run)):
                time.sleep(0.05)
            if not any(self._alive(handle, run)):
                self._end(handle, run)
                return

    def logs(self, handle: str) -> str:
        """stdout+stderr of every gang member (the end of each, at most MAX_LOG bytes in all); members are
        headed by their node rank when there are several."""
        files = sorted(Path(handle).glob("out-*.log"))
        texts = [tail_file(f, MAX_LOG // max(len(files), 1)) for f in files]
        if len(texts) == 1:
            return texts[0]
        return "".join(f"== node {f.stem[4:]} ==\n{t}" for f, t in zip(files, texts, strict=True))

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str:
        """What the gang's log files gained since `offsets` (updated in place). Whole lines only, so a
        follower never sees half a line; with several members each line is prefixed by its node rank."""
        files = sorted(Path(handle).glob("out-*.log"))
        return file_delta(files, offsets, whole_lines=True, label=len(files) > 1)

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str:
        """The last partial lines once a job has ended (a final line without a newline)."""
        files = sorted(Path(handle).glob("out-*.log"))
        return file_delta(files, offsets, whole_lines=False, label=len(files) > 1)
