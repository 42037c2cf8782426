"""The agent's journal on disk (SQLite): the runs it holds and the events the server has not acknowledged.

It is what lets an agent be killed at any point, or cut from the server for hours, and lose nothing: a
start is journaled before the engine is asked (an attempt is begun at most once), every change of a run
is an event kept until the server acknowledges it, and a run that ended is kept until the server says it
has recorded the end. Times are the agent's monotonic clock (CLOCK_MONOTONIC, shared by the processes of
one boot); after a reboot they are unknown and taken as "now". Bounded: one pending event per run (a newer
state replaces an unsent older one) and at most MAX_SAMPLES device samples, oldest dropped first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SAMPLES = 20_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (handle TEXT PRIMARY KEY, job_id TEXT NOT NULL, attempt INTEGER NOT NULL,
  native TEXT NOT NULL DEFAULT '', launch TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL, exit_code INTEGER,
  reason TEXT NOT NULL DEFAULT '', expected_start REAL, started REAL, ended REAL, host TEXT, uid INTEGER,
  usage TEXT, on_loss TEXT NOT NULL DEFAULT 'wait', confirmed INTEGER NOT NULL DEFAULT 0,
  stop_asked REAL, errors INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, handle TEXT NOT NULL, kind TEXT NOT NULL,
  at REAL NOT NULL, body TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS events_handle ON events (handle, kind);
CREATE TABLE IF NOT EXISTS epochs (job_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS natives (handle TEXT PRIMARY KEY, native TEXT NOT NULL, at REAL NOT NULL);
"""
MAX_NATIVES = 100_000  # forgotten runs whose engine handles are kept (their logs are still asked for)
LIVE = ("starting", "queued", "running")
FIELDS = ("handle", "job_id", "attempt", "native", "launch", "state", "exit_code", "reason", "expected_start",
          "started", "ended", "host", "uid", "usage", "on_loss", "confirmed", "stop_asked", "errors")


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return "unknown"


@dataclass
class RunRow:
    handle: str
    job_id: str
    attempt: int
    native: str = ""
    launch: str = "{}"
    state: str = "starting"
    exit_code: int | None = None
    reason: str = ""
    expected_start: float | None = None
    started: float | None = None
    ended: float | None = None
    host: str | None = None
    uid: int | None = None
    usage: str | None = None
    on_loss: str = "wait"
    confirmed: int = 0
    stop_asked: float | None = None
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def live(self) -> bool:
        return self.state in LIVE


class Journal:
    """One SQLite file (":memory:" for an agent that shares its server's fate). Thread-safe."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self.agent_id = self._meta("agent") or self._set_meta("agent", uuid.uuid4().hex)
            if self._meta("boot") != boot_id():  # monotonic times of another boot mean nothing now
                now = time.monotonic()
                for col in ("expected_start", "started", "ended", "stop_asked"):
                    self.db.execute(f"UPDATE runs SET {col} = ? WHERE {col} IS NOT NULL", (now,))
                self.db.execute("UPDATE events SET at = ?", (now,))
                self._set_meta("boot", boot_id())
            self.seq = int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            self.seq = max(self.seq, int(self._meta("seq") or 0))

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> str:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # ---- runs ----------------------------------------------------------------------------------------

    def runs(self) -> dict[str, RunRow]:
        with self.lock:
            rows = self.db.execute(f"SELECT {', '.join(FIELDS)} FROM runs").fetchall()
        return {r[0]: RunRow(*r) for r in rows}

    def put(self, run: RunRow) -> None:
        """Write a run's row and queue an event saying how it stands now (replacing an unsent older one)."""
        values = tuple(getattr(run, f) for f in FIELDS)
        with self.lock:
            self.db.execute("BEGIN")
            self.db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(FIELDS)}) "
                            f"VALUES ({', '.join('?' * len(FIELDS))})", values)
            self.db.execute("DELETE FROM events WHERE handle = ? AND kind = 'run'", (run.handle,))
            self.seq += 1
            self.db.execute("INSERT INTO events (seq, handle, kind, at) VALUES (?, ?, 'run', ?)",
                            (self.seq, run.handle, time.monotonic()))
            self.db.execute("COMMIT")

    def quiet(self, run: RunRow) -> None:
        """Write a run's row without an event (bookkeeping the server need not hear of)."""
        values = tuple(getattr(run, f) for f in FIELDS)
        with self.lock:
            self.db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(FIELDS)}) "
                            f"VALUES ({', '.join('?' * len(FIELDS))})", values)

    def drop(self, handle: str, native: str = "") -> None:
        """The server has recorded the run's end: it leaves the journal; its engine handle is kept a while (a
        tenant reads its logs later; some engines find only live runs again)."""
        with self.lock:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM runs WHERE handle = ?", (handle,))
            self.db.execute("DELETE FROM events WHERE handle = ?", (handle,))
            if native:
                self.db.execute("INSERT OR REPLACE INTO natives (handle, native, at) VALUES (?, ?, ?)",
                                (handle, native, time.time()))
                self.db.execute("DELETE FROM natives WHERE handle IN (SELECT handle FROM natives ORDER BY at DESC "
                                "LIMIT -1 OFFSET ?)", (MAX_NATIVES,))
            self.db.execute("COMMIT")

    def native(self, handle: str) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT native FROM natives WHERE handle = ?", (handle,)).fetchone()
        return None if row is None else str(row[0])

    def epoch(self, job_id: str) -> int:
        with self.lock:
            row = self.db.execute("SELECT epoch FROM epochs WHERE job_id = ?", (job_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_epoch(self, job_id: str, epoch: int) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO epochs (job_id, epoch) VALUES (?, ?)", (job_id, epoch))

    # ---- events ----------------------------------------------------------------------------------------

    def sample(self, handle: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            self.db.execute("INSERT INTO events (seq, handle, kind, at, body) VALUES (?, ?, 'sample', ?, ?)",
                            (self.seq, handle, time.monotonic(), json.dumps(body)))
            over = self.db.execute("SELECT COUNT(*) FROM events WHERE kind = 'sample'").fetchone()[0] - MAX_SAMPLES
            if over > 0:
                self.db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE kind = 'sample' "
                                "ORDER BY seq LIMIT ?)", (over,))

    def pending(self, after: int, limit: int) -> list[tuple[int, str, str, float, str]]:
        """Unacknowledged events after `after` (those already sent on this connection), oldest first."""
        with self.lock:
            return list(self.db.execute("SELECT seq, handle, kind, at, body FROM events WHERE seq > ? "
                                        "ORDER BY seq LIMIT ?", (after, limit)))

    def ack(self, seq: int) -> None:
        """The server applied every event up to `seq`: they leave the journal."""
        with self.lock:
            self.db.execute("DELETE FROM events WHERE seq <= ?", (seq,))
            self._set_meta("seq", str(self.seq))

    def backlog(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
