"""How the local engine keeps a tenant's job to itself.

When the server runs as root, every attempt of a job runs under a user id of its own, taken from a
range no account uses (`setpriv --reuid --regid --clear-groups`): it cannot read what the server keeps
(tokens, database, other jobs' folders: root's, mode 0600/0700), cannot signal another job's processes,
and every process it starts — however it daemonises or calls setsid — still carries that uid, so a
cancel or a time limit kills exactly that tree (found in /proc by uid). What the engine must trust
(pids, exit codes, the handle) is written by root into files the job cannot write.

Run as another user, the engine cannot switch uids: jobs then run as the server's user, can read what
it can, and are stopped by process group only. The README says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from zhisuan.engines.confine import Cgroups

UID_BASE = 3_000_000  # job uids: UID_BASE .. UID_BASE + UID_SPAN - 1 (no account, no group, no home)
UID_SPAN = 1_000_000
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
SHARED = (Path("/dev/shm"), Path("/tmp"), Path("/var/tmp"))  # scratch any uid may write: cleared between holders
LEASES = Path("/run/zhisuan/uids")  # machine-wide leases of job uids (a tmpfs: gone at a reboot, as the jobs are)


def isolating() -> bool:
    """True when jobs get uids of their own (the server runs as root and setpriv is here)."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def process_uids() -> Iterator[tuple[int, int]]:
    """(pid, real uid) of every process, from /proc."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        yield int(entry.name), int(line.split()[1])
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue


def uids_running() -> set[int]:
    """The real uids of every process (one pass over /proc, however many uids are asked about)."""
    return {uid for _, uid in process_uids()}


def processes_of(uid: int) -> list[int]:
    """Pids of every process running under `uid` (real uid, from /proc)."""
    return [pid for pid, u in process_uids() if u == uid]


def signal_uid(uid: int, sig: int) -> int:
    """Send `sig` to every process of `uid`; how many there were."""
    pids = processes_of(uid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return len(pids)


class UidPool:
    """Hands out job uids in turn (the next one is kept with the leases, root-only), never one another run holds.

    The uids are the machine's, not one engine's: another server, an agent, or the same server with another
    runs folder may run jobs here too. So each uid taken is leased machine-wide (a file in LEASES naming the
    attempt that holds it), taken under a lock, and taken over only once that attempt has ended; and an engine
    signals "every process of the uid" only while its attempt still holds the lease — a late look at a run
    that ended can never kill the next job given its uid."""

    def __init__(self, leases: Path | None = None, shared: tuple[Path, ...] = SHARED) -> None:
        self.leases = leases or LEASES
        self.file = self.leases / ".next"  # machine-wide too: a uid comes round again after UID_SPAN others
        self.shared = shared

    def take(self, owner: str) -> int:
        """A free uid, leased to `owner` (the attempt's folder)."""
        self.leases.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.leases / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                n = int(self.file.read_text(encoding="ascii"))
            except (FileNotFoundError, ValueError):
                n = 0
            running = uids_running()  # once: a scan of /proc per candidate took seconds with many jobs
            for k in range(UID_SPAN):
                uid = UID_BASE + (n + k) % UID_SPAN
                lease = self.leases / str(uid)
                holder = lease.read_text(encoding="utf-8") if lease.exists() else None
                if (holder is not None and not _ended(holder, uid, running)) or uid in running:
                    continue
                tmp = lease.with_suffix(".tmp")
                tmp.write_text(owner, encoding="utf-8")
                os.replace(tmp, lease)
                clear_leftovers(uid, self.shared)
                nxt = self.file.with_suffix(".tmp")
                nxt.write_text(str((n + k + 1) % UID_SPAN), encoding="ascii")
                os.replace(nxt, self.file)
                return uid
        raise OSError("every job uid is in use")

    def holds(self, uid: int, owner: str) -> bool:
        try:
            return (self.leases / str(uid)).read_text(encoding="utf-8") == owner
        except FileNotFoundError:
            return False

    def release(self, uid: int, owner: str) -> None:
        if self.holds(uid, owner):
            with contextlib.suppress(FileNotFoundError):
                (self.leases / str(uid)).unlink()


def _ended(attempt: str, uid: int, running: set[int]) -> bool:
    """Whether the attempt that leased `uid` is over: its folder is gone, or nothing of it runs (its members'
    wrappers have exited and no process has the uid). An attempt still being spawned has no handle yet."""
    folder = Path(attempt)
    handle = folder / "handle.json"
    if not folder.exists():
        return True
    if not handle.exists():
        return False
    try:
        pids = [int(p) for p in json.loads(handle.read_text(encoding="utf-8")).get("pids", [])]
    except (OSError, ValueError):
        return False
    return not any(Path(f"/proc/{p}").exists() for p in pids) and uid not in running


def sweep_groups(groups: Cgroups, leases: Path) -> int:
    """Remove the cgroups of runs that are over (a crash, or a slow exit, left them): their uid is leased to
    no run, or to one that has ended. A run being started holds its lease and keeps its groups. How many."""
    running, removed = uids_running(), 0
    for name in groups.names(""):
        uid = name.partition("-")[0]
        try:
            holder: str | None = (leases / uid).read_text(encoding="utf-8")
        except FileNotFoundError:
            holder = None
        except OSError:
            continue
        if uid.isdigit() and (holder is None or _ended(holder, int(uid), running)):
            removed += groups.remove(name, wait=0)
    return removed


def clear_leftovers(uid: int, shared: tuple[Path, ...] = ()) -> int:
    """Delete what an earlier holder of `uid` left in the machine's shared scratch folders (`/dev/shm`,
    `/tmp`): the next job given the uid — perhaps another tenant's — must not read it. How many entries."""
    removed = 0
    for folder in shared:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


def reap(runs: Path, leases: Path | None = None) -> int:
    """Kill every process of the jobs started under the runs folder `runs` and free their uids; how many.

    A server leaves its jobs running when it stops (a restart adopts them), so whoever ends a network for
    good — the demo, a test, a benchmark — ends its jobs with this, even those whose stop was still on its way."""
    leases = leases or LEASES
    roots = {str(runs), str(runs.resolve())}
    killed: set[int] = set()
    for lease in leases.glob("[0-9]*"):
        try:
            holder = lease.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        if not any(holder.startswith(r + os.sep) for r in roots):
            continue
        uid = int(lease.name)
        with contextlib.suppress(OSError, ValueError):  # a member not yet dropped to its uid is root, in its group
            for pid in json.loads((Path(holder) / "handle.json").read_text(encoding="utf-8")).get("pids", []):
                with contextlib.suppress(OSError):
                    os.killpg(int(pid), signal.SIGKILL)
                    killed.add(int(pid))
        end = time.monotonic() + 5
        while (pids := processes_of(uid)) and time.monotonic() < end:  # forks meanwhile; zombies until reaped
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.05)
        groups = Cgroups()
        for name in groups.names(f"{uid}-"):  # the members' cgroups (confine.py), empty now
            groups.remove(name)
        with contextlib.suppress(FileNotFoundError):
            if lease.read_text(encoding="utf-8") == holder:
                lease.unlink()
    return len(killed)


def check_reachable(root: Path) -> None:
    """Job uids must be able to pass through every folder above the runs root (others' execute bit)."""
    for folder in [root, *root.parents]:
        if folder.exists() and not os.stat(folder).st_mode & 0o001:
            raise OSError(f"the runs folder {root} is below {folder}, which other users cannot pass through "
                          f"(chmod o+x {folder}, or choose another --runs): jobs run under uids of their own")


def owned_dir(path: Path, uid: int | None, mode: int) -> Path:
    """Create `path` (or take it over) for `uid` with `mode`; for the server itself when uid is None."""
    path.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        for root, dirs, files in os.walk(path):  # a checkpoint folder passes from attempt to attempt
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, uid)
        os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


def job_env(extra: dict[str, str], home: Path) -> dict[str, str]:
    """A clean environment: nothing of the server's (its database URL, tokens, credentials), the job's own."""
    return {"PATH": SAFE_PATH, "HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8", **extra}


def stop_tree(uid: int | None, pids: list[int], sig: int = signal.SIGTERM) -> None:
    """Signal a job's whole tree: every process of its uid, else (no isolation) its members' process groups."""
    if uid is not None:
        signal_uid(uid, sig)
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
