"""Limits the kernel enforces on a local job, beyond its uid (sandbox.py).

Each gang member runs in a cgroup of its own — memory, CPU and pids from what the spec asked, else the
member's proportional share of its node (as Slurm's DefMemPerGPU / DefCpuPerGPU) — so a job that
allocates past its memory is killed by the kernel alone and fails saying so, and a fork bomb stops at its
pids limit. And each member runs in a private mount namespace: `/proc` mounted again with `hidepid=2` (a
job sees its own processes only: not another tenant's replica with its key, not the root wrapper), and
`/tmp`, `/var/tmp`, `/dev/shm` fresh tmpfs of its own (gone when it ends; their pages count against its
memory). cgroup v2 is used where its controllers are enabled, v1 (memory, cpu, pids hierarchies) otherwise;
without either, or without the right to unshare, jobs run without these limits and the engine says so.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PARENT = "zhisuan"  # every job's cgroup is below this one
PIDS = 4096  # processes and threads per member (Kubernetes' podPidsLimit is often 1024-4096)
CPU_PERIOD_US = 100_000
MIN_CPUS = 0.1  # a floor, so a job holding a sliver of a device can still start its interpreter
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
SHARED = Path("/var/lib/zhisuan/shared")  # see shared_folder
STAGE = Path("/run/zhisuan/stage")  # where a fresh scratch folder is made ready before it is moved in place


@dataclass(frozen=True)
class Limits:
    """What one gang member may use (memory in bytes, CPUs as a fraction of the machine's cores)."""

    memory: int
    cpus: float
    pids: int = PIDS


def limits_for(share: float, cpus: float, memory_gib: float, cpus_per_node: int, memory_gib_per_node: float,
               pids: int = PIDS) -> Limits:
    """A member's limits: what it asked (per node), else `share` (the fraction of its node's devices it
    holds; 1 for a CPU-only job that asked nothing) of the node's CPUs and memory."""
    c = cpus if cpus > 0 else share * cpus_per_node
    m = memory_gib if memory_gib > 0 else share * memory_gib_per_node
    return Limits(max(int(m * 2**30), 16 * 2**20), max(c, MIN_CPUS), pids)


def _mounts(mountinfo: Path) -> tuple[Path | None, dict[str, Path]]:
    """The cgroup2 mount and the v1 mounts by controller, from mountinfo."""
    v2: Path | None = None
    v1: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in mountinfo.read_text(encoding="utf-8").splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            point = Path(fields[4].replace("\\040", " "))
            if tail[0] == "cgroup2" and v2 is None:
                v2 = point
            elif tail[0] == "cgroup":
                for option in tail[2].split(","):
                    v1.setdefault(option, point)
    return v2, v1


class Cgroups:
    """A cgroup per gang member, named by the job's uid and the member's rank."""

    CONTROLLERS = ("memory", "cpu", "pids")

    def __init__(self, mountinfo: Path = Path("/proc/self/mountinfo")) -> None:
        v2, v1 = _mounts(mountinfo)
        self.v2: Path | None = None
        self.v1: dict[str, Path] = {}
        enabled = set()
        if v2 is not None:
            with contextlib.suppress(OSError):
                enabled = set((v2 / "cgroup.controllers").read_text(encoding="ascii").split())
        if v2 is not None and enabled >= set(self.CONTROLLERS):
            self.v2 = v2
        elif all(c in v1 for c in self.CONTROLLERS):
            self.v1 = {c: v1[c] for c in self.CONTROLLERS}

    @property
    def version(self) -> int:
        """2, 1, or 0 when this machine offers no cgroup with memory, cpu and pids controllers."""
        return 2 if self.v2 is not None else 1 if self.v1 else 0

    def _dirs(self, name: str) -> list[Path]:
        if self.v2 is not None:
            return [self.v2 / PARENT / name]
        return [root / PARENT / name for root in self.v1.values()]

    def create(self, name: str, limits: Limits) -> list[Path]:
        """Make the member's cgroup (one per v1 hierarchy) with its limits; the `cgroup.procs` files the
        member's first process joins. An earlier holder's group that is still busy is refused, not shared."""
        if self.v2 is not None:
            parent = self.v2 / PARENT
            parent.mkdir(exist_ok=True)
            wanted = " ".join(f"+{c}" for c in self.CONTROLLERS)
            _set(self.v2 / "cgroup.subtree_control", wanted, optional=True)  # often enabled already
            _set(parent / "cgroup.subtree_control", wanted)
        dirs = self._dirs(name)
        for d in dirs:
            if d.exists():
                with contextlib.suppress(FileNotFoundError):
                    d.rmdir()  # an empty leftover (its stats, e.g. OOM kills, must not carry over)
            d.mkdir(parents=True)
        quota = max(1000, int(limits.cpus * CPU_PERIOD_US))
        if self.v2 is not None:
            d = dirs[0]
            _set(d / "memory.max", limits.memory)
            _set(d / "memory.swap.max", 0, optional=True)
            _set(d / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            _set(d / "pids.max", limits.pids)
        else:
            memory, cpu, pids = (self.v1[c] / PARENT / name for c in self.CONTROLLERS)
            _set(memory / "memory.limit_in_bytes", limits.memory)
            _set(memory / "memory.memsw.limit_in_bytes", limits.memory, optional=True)  # no swapping past it
            _set(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
            _set(cpu / "cpu.cfs_quota_us", quota)
            _set(pids / "pids.max", limits.pids)
        return [d / "cgroup.procs" for d in dirs]

    def _memory_dir(self, name: str) -> Path:
        return self._dirs(name)[0] if self.v2 is not None else self.v1.get("memory", Path("/")) / PARENT / name

    def oom_kills(self, name: str) -> int:
        """How many processes of the member the kernel killed for exceeding its memory. The kernel counts
        a kill after sending it (and logging it), so a victim's parent can see it dead a moment before."""
        events = self._memory_dir(name) / ("memory.events" if self.v2 is not None else "memory.oom_control")
        with contextlib.suppress(OSError, ValueError):
            for line in events.read_text(encoding="ascii").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def signal(self, name: str, sig: int) -> int:
        """Send `sig` to every process in the member's cgroup; how many there were."""
        try:
            pids = [int(p) for p in (self._memory_dir(name) / "cgroup.procs").read_text(encoding="ascii").split()]
        except (OSError, ValueError):
            return 0
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return len(pids)

    def peak(self, name: str) -> int:
        """The most memory the member's processes held at once, bytes (0: unknown)."""
        path = self._memory_dir(name) / ("memory.peak" if self.v2 is not None else "memory.max_usage_in_bytes")
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text(encoding="ascii").split()[0])
        return 0

    def remove(self, name: str, wait: float = 1.0) -> bool:
        """Remove the member's cgroup once its processes have left (killed ones take a moment)."""
        end = time.monotonic() + wait
        for d in self._dirs(name):
            while d.exists():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        return False
                    time.sleep(0.02)
        return True

    def names(self, prefix: str) -> list[str]:
        """Names of the groups starting with `prefix` (a uid's members, for a server ending its jobs)."""
        root = (self.v2 if self.v2 is not None else self.v1.get("memory")) if self.version else None
        if root is None or not (root / PARENT).is_dir():
            return []
        return [p.name for p in (root / PARENT).iterdir() if p.is_dir() and p.name.startswith(prefix)]


def _set(path: Path, value: object, optional: bool = False) -> None:
    """Write one cgroup setting; `optional` ones (swap, where swap accounting is off) may be absent."""
    try:
        path.write_text(str(value), encoding="ascii")
    except OSError:
        if not optional:
            raise


@functools.cache
def can_unshare() -> bool:
    """Whether this process may give a job a mount namespace of its own with a hidden /proc (root with
    CAP_SYS_ADMIN and util-linux's unshare; a container may refuse it)."""
    if os.geteuid() != 0:
        return False
    probe = "mount -t tmpfs -o size=1m tmpfs /tmp && mount -t proc -o hidepid=2 proc /proc"
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", probe],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def shared_folder(prefix: str) -> Path:
    """A fresh folder every job uid can read, outside the scratch folders a confined job has its own of: where
    the demo, a test or a benchmark puts a script its jobs run (the repo's model backend). The caller
    removes it."""
    base = None
    if os.geteuid() == 0:
        base = SHARED
        base.mkdir(parents=True, exist_ok=True)
        for d in (base, base.parent):
            d.chmod(0o755)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    folder.chmod(0o755)
    return folder


def shown_code() -> tuple[Path, ...]:
    """The server's own Python and package: a job or a model replica may run them (`python -m
    zhisuan.gateway.backend`), and a checkout may live in /tmp (a CI clone)."""
    return tuple(dict.fromkeys(Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(__file__).parents[2])))


def cage_script(command: str, drop: list[str], limits: Limits | None, runs: Path, shown: tuple[Path, ...] = ()) -> str:
    """What runs as root inside the member's new mount namespace, then drops to the job's uid: private
    scratch folders and a /proc that shows the job its own processes only. A runs folder inside a scratch
    folder (a test's /tmp/...) is bound into the fresh one at its own path, so the job's folders stay where
    they were, and so are the `shown` folders, read-only. A mount that fails ends the member with 125 and a
    line in its log, never a job run unconfined."""
    size = f",size={limits.memory}" if limits is not None else ""
    lines = []
    for folder in map(Path, SCRATCH):
        fail = f"{{ echo 'zhisuan: could not give the job its own {folder}' >&2; exit 125; }}"
        tmpfs = f"mount -t tmpfs -o nosuid,nodev,mode=1777{size} zhisuan-scratch"
        if runs == folder:
            continue  # the runs folder itself: root's, the job could not write there anyway
        binds = sorted({(p, False) for p in shown if p.is_relative_to(folder) and p != folder and p.exists()}
                       | ({(runs, True)} if runs.is_relative_to(folder) else set()), key=lambda b: len(b[0].parts))
        if not binds:
            lines.append(f"{tmpfs} {folder} || {fail}")
            continue
        steps = [f"{tmpfs} {STAGE}"]
        for path, writable in binds:  # outer ones first: a runs folder inside a read-only checkout stays writable
            inside = shlex.quote(str(STAGE / path.relative_to(folder)))
            steps += [f"(umask 022 && mkdir -p {inside})", f"mount --bind {shlex.quote(str(path))} {inside}"]
            if not writable:
                steps.append(f"mount -o remount,bind,ro {inside}")
        steps.append(f"mount --move {STAGE} {folder}")
        lines.append(f"{{ {' && '.join(steps)}; }} || {fail}")
    lines.append("mount -t proc -o nosuid,nodev,noexec,hidepid=2 proc /proc || "
                 "{ echo 'zhisuan: could not hide other processes from the job' >&2; exit 125; }")
    lines.append(f"exec {shlex.join([*drop, '/bin/sh', '-c', command])}")
    return "\n".join(lines) + "\n"


def enter_command(procs: list[Path], cage: Path) -> list[str]:
    """The member's first process: joins its cgroups (its children stay in them), enters a new mount
    namespace and runs its cage script. `$$` is this shell's own pid."""
    joins = "".join(f"echo $$ > {shlex.quote(str(p))} && " for p in procs)
    return ["/bin/sh", "-c", f"{joins}exec unshare --mount --propagation private /bin/sh {shlex.quote(str(cage))}"]
