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
import os
import shutil
import signal
from pathlib import Path

UID_BASE = 3_000_000  # job uids: UID_BASE .. UID_BASE + UID_SPAN - 1 (no account, no group, no home)
UID_SPAN = 1_000_000
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def isolating() -> bool:
    """True when jobs get uids of their own (the server runs as root and setpriv is here)."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def processes_of(uid: int) -> list[int]:
    """Pids of every process running under `uid` (real uid, from /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return found


def signal_uid(uid: int, sig: int) -> int:
    """Send `sig` to every process of `uid`; how many there were."""
    pids = processes_of(uid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return len(pids)


class UidPool:
    """Hands out job uids in turn (the next one is kept on disk, root-only), skipping any still in use."""

    def __init__(self, root: Path) -> None:
        self.file = root / ".next-uid"

    def take(self) -> int:
        try:
            n = int(self.file.read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            n = 0
        for k in range(UID_SPAN):
            uid = UID_BASE + (n + k) % UID_SPAN
            if not processes_of(uid):
                tmp = self.file.with_suffix(".tmp")
                tmp.write_text(str((n + k + 1) % UID_SPAN), encoding="ascii")
                os.replace(tmp, self.file)
                return uid
        raise OSError("every job uid is in use")


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
