"""The local engine: each gang member is a subprocess on this machine, with the devices assigned to it.

Every member runs under `sh`, which writes the command's exit code to a file when it ends. A job has a
folder under the runs root with one folder per attempt (logs, exit codes, handle.json) and a
`checkpoint/` folder kept across attempts (`$ZHISUAN_CHECKPOINT_DIR`). A handle is the attempt's folder,
so a control process restarted after a crash re-adopts running jobs from disk: alive pids are running,
exit files are results, a dead pid without one was lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from zhisuan.engines.base import EngineStatus, ExternalLoad, Launch, Usage
from zhisuan.model import Pool

VISIBLE = {"cuda": "CUDA_VISIBLE_DEVICES", "cann": "ASCEND_RT_VISIBLE_DEVICES", "rocm": "HIP_VISIBLE_DEVICES",
           "dtk": "HIP_VISIBLE_DEVICES", "neuware": "MLU_VISIBLE_DEVICES", "synapseai": "HABANA_VISIBLE_MODULES"}


@dataclass(frozen=True)
class _Run:
    """What handle.json records about a started job."""

    pids: list[int]
    started: float
    timeout: float | None
    stop_requested: float | None = None  # when SIGTERM was sent (a preemption, a timeout)


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


class LocalEngine:
    kind = "local"
    starts_at_submit = True  # a submitted job's processes run at once: no queue of its own

    def __init__(self, root: Path, grace: float = 5.0) -> None:
        self.root = Path(root).resolve()  # jobs run in their own folder: relative paths would break
        self.grace = grace
        self.root.mkdir(parents=True, exist_ok=True)
        self._runs: dict[str, _Run] = {}  # handle -> what its handle.json says (pids never change)

    def run_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def attempt_dir(self, job_id: str, attempt: int) -> Path:
        return self.run_dir(job_id) / f"attempt-{attempt}"

    def handle_of(self, job_id: str, attempt: int | None = None) -> str | None:
        """The handle of a job's attempt this engine started (from disk, so it survives restarts), else None;
        without `attempt`, the latest one."""
        if attempt is None:
            found = sorted(self.run_dir(job_id).glob("attempt-*/handle.json"), key=lambda p: int(p.parent.name[8:]))
            return str(found[-1].parent) if found else None
        run = self.attempt_dir(job_id, attempt)
        return str(run) if (run / "handle.json").exists() else None

    def inventory(self) -> list[Pool]:
        return []  # local pools are declared in the network file (or found by NVML, see nvml.py)

    def load(self, pools: list[Pool]) -> list[ExternalLoad]:
        return []  # this machine's devices are zhisuan's alone

    def health(self) -> None:
        return None  # this process is the engine

    def usage(self, handle: str) -> Usage | None:
        return None  # metering of local jobs comes with NVML sampling

    def submit(self, launch: Launch) -> str:
        return self.run(launch.job_id, launch.command, launch.devices, launch.pool.chip.stack, launch.env,
                        launch.timeout, launch.attempt)

    def run(self, job_id: str, command: str, devices: list[list[str]], stack: str,
            env: dict[str, str] | None = None, timeout: float | None = None, attempt: int = 1) -> str:
        """Start one process per node of the gang; `devices[i]` are the device ids of member i."""
        run = self.attempt_dir(job_id, attempt)
        run.mkdir(parents=True, exist_ok=True)
        checkpoint = self.run_dir(job_id) / "checkpoint"
        checkpoint.mkdir(exist_ok=True)
        pids = []
        for rank, ids in enumerate(devices):
            member_env = {**os.environ, **(env or {}), VISIBLE.get(stack, "ZHISUAN_VISIBLE_DEVICES"): ",".join(ids),
                          "ZHISUAN_JOB_ID": job_id, "ZHISUAN_NODE_RANK": str(rank), "ZHISUAN_NNODES": str(len(devices)),
                          "ZHISUAN_ATTEMPT": str(attempt), "ZHISUAN_CHECKPOINT_DIR": str(checkpoint)}
            # the wrapper outlives a SIGTERM (a no-op trap, reset to default inside the job's subshell), so a
            # job that handles it — saving a checkpoint — still gets its exit code recorded; SIGKILL is the end
            script = f'trap : TERM\n(\n{command}\n)\necho $? > "{run}/exit-{rank}"'
            with (run / f"out-{rank}.log").open("ab") as out:
                proc = subprocess.Popen(["/bin/sh", "-c", script], cwd=run, env=member_env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            pids.append(proc.pid)
        meta = {"pids": pids, "started": time.time(), "timeout": timeout}
        (run / "handle.json").write_text(json.dumps(meta), encoding="utf-8")
        return str(run)

    def _run(self, handle: str) -> _Run:
        run = self._runs.get(handle)
        if run is None:
            d = json.loads((Path(handle) / "handle.json").read_text(encoding="utf-8"))
            stop = Path(handle) / "stop"
            run = _Run([int(p) for p in d["pids"]], float(d["started"]), d["timeout"],
                       stop.stat().st_mtime if stop.exists() else None)
            self._runs[handle] = run
        return run

    def poll(self, handle: str) -> EngineStatus:
        run = self._run(handle)
        codes = []
        timed_out = run.timeout is not None and time.time() - run.started > run.timeout
        for rank, pid in enumerate(run.pids):
            # liveness first: the wrapper writes its exit file before it exits, so once the process is
            # seen dead the file is final (checking the file first races with a process just ending)
            if _alive(pid):
                if timed_out:  # SIGTERM at the time limit, SIGKILL a grace period later
                    self.stop(handle)
                    if time.time() - (run.stop_requested or 0.0) >= self.grace:
                        self._signal(run.pids, signal.SIGKILL)
                return EngineStatus("running")
            exit_file = Path(handle) / f"exit-{rank}"
            if not exit_file.exists():
                if timed_out:
                    return EngineStatus("failed", None, f"timeout after {run.timeout:g} s")
                return EngineStatus("failed", None, f"process of node {rank} ended without an exit code (killed)")
            codes.append(int(exit_file.read_text().strip() or 1))
        bad = [c for c in codes if c != 0]
        if timed_out and bad:
            return EngineStatus("failed", bad[0], f"timeout after {run.timeout:g} s")
        return EngineStatus("failed", bad[0], "non-zero exit") if bad else EngineStatus("succeeded", 0)

    @staticmethod
    def _signal(pids: list[int], sig: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)

    def stop(self, handle: str) -> None:
        """Ask the job to end (SIGTERM to every member's process group) and return at once; the time is
        kept on disk, so a later `cancel` knows the grace period has been given."""
        run = self._run(handle)
        if run.stop_requested is None:
            (Path(handle) / "stop").touch()
            self._runs[handle] = run = _Run(run.pids, run.started, run.timeout, time.time())
            self._signal(run.pids, signal.SIGTERM)

    def cancel(self, handle: str) -> None:
        """SIGTERM each member's process group, SIGKILL what is left after the grace period (at once when
        `stop` gave that grace already)."""
        run = self._run(handle)
        pids = run.pids
        graced = run.stop_requested is not None and time.time() - run.stop_requested >= self.grace
        for sig in ((signal.SIGKILL,) if graced else (signal.SIGTERM, signal.SIGKILL)):
            self._signal(pids, sig)
            deadline = time.time() + self.grace
            while time.time() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.05)
            if not any(_alive(p) for p in pids):
                return

    def logs(self, handle: str) -> str:
        """stdout+stderr of every gang member; members are headed by their node rank when there are several."""
        files = sorted(Path(handle).glob("out-*.log"))
        texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        if len(texts) == 1:
            return texts[0]
        return "".join(f"== node {f.stem[4:]} ==\n{t}" for f, t in zip(files, texts, strict=True))

    def log_delta(self, handle: str, offsets: dict[str, int]) -> str:
        """What the gang's log files gained since `offsets` (updated in place). Whole lines only, so a
        follower never sees half a line; with several members each line is prefixed by its node rank."""
        return self._new_output(handle, offsets, whole_lines=True)

    def log_rest(self, handle: str, offsets: dict[str, int]) -> str:
        """The last partial lines once a job has ended (a final line without a newline)."""
        return self._new_output(handle, offsets, whole_lines=False)

    @staticmethod
    def _new_output(handle: str, offsets: dict[str, int], whole_lines: bool) -> str:
        files = sorted(Path(handle).glob("out-*.log"))
        out = []
        for f in files:
            start = offsets.get(f.name, 0)
            with f.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
            end = data.rfind(b"\n") + 1 if whole_lines else len(data)
            if end == 0:
                continue
            offsets[f.name] = start + end
            text = data[:end].decode("utf-8", errors="replace")
            if len(files) > 1:
                text = "".join(f"[node {f.stem[4:]}] {line}" for line in text.splitlines(keepends=True))
            out.append(text)
        return "".join(out)
