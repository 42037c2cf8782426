"""Engines and migrations. SQLite gets WAL and a busy timeout so a reader never blocks the control loop."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text

DEFAULT_URL = "sqlite:///zhisuan.db"

log = logging.getLogger("zhisuan.store")


def dialect_insert(dialect: str) -> Any:
    """The INSERT of this dialect, which says ON CONFLICT (SQLite and PostgreSQL both do)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert if dialect == "sqlite" else pg_insert


def insert_once(conn: Connection, table: Any, key: str, **values: Any) -> None:
    """INSERT a row unless one with the same `key` exists (two replicas racing to make it: one does), in the
    dialect's own words (ON CONFLICT DO NOTHING)."""
    make = dialect_insert(conn.engine.dialect.name)
    conn.execute(make(table).values(**values).on_conflict_do_nothing(index_elements=[key]))


def connect(url: str | None = None, busy_ms: int = 5000) -> Engine:
    """An engine for `url`, else $ZHISUAN_DB, else ./zhisuan.db (SQLite, WAL); a writer waits up to `busy_ms`
    for a lock before the store answers that it is unavailable."""
    url = url or os.environ.get("ZHISUAN_DB") or DEFAULT_URL
    sqlite = url.startswith("sqlite")
    # the API serves requests on worker threads while the control loop runs on its own
    engine = create_engine(url, connect_args={"check_same_thread": False} if sqlite else {})
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (what recovery needs); only an
            # OS crash or power loss may drop the last commits. SQLite's documented pairing for WAL.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def bound_transactions(engine: Engine, seconds: float) -> None:
    """PostgreSQL ends a session left idle inside a transaction for `seconds`: a replica frozen (SIGSTOP) or
    cut off mid-transaction cannot hold its row locks (the lease's among them) for longer, so the others
    can take the lease and go on. Connections opened from now on; those pooled before are let go."""
    if engine.dialect.name != "postgresql":
        return
    ms = max(1, int(seconds * 1000))

    @event.listens_for(engine, "connect")
    def _bounded(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"SET idle_in_transaction_session_timeout = {ms}")
        cur.close()
        dbapi_conn.commit()

    engine.dispose()


def checkpoint_apart(engine: Engine, stop: threading.Event, every: float = 1.0) -> threading.Thread | None:
    """SQLite: the WAL is copied back into the database by a thread of its own every `every` seconds (PASSIVE:
    writers never wait for it), not by whichever commit crosses the threshold — that commit, and every submit
    batched with it, used to wait for the copy and its fsync (the API's p99 under many clients)."""
    if engine.dialect.name != "sqlite":
        return None

    @event.listens_for(engine, "connect")
    def _no_auto(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    engine.dispose()

    def run() -> None:
        while not stop.wait(every):
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # busy or closing: the next round copies it
                log.debug("checkpoint skipped", exc_info=True)

    thread = threading.Thread(target=run, name="zhisuan-checkpoint", daemon=True)
    thread.start()
    return thread


class NewerSchema(RuntimeError):
    """The database was migrated by a newer zhisuan than this one: it must not write to it."""


@contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """One replica at a time (PostgreSQL's advisory lock, held by a connection of its own until the block
    ends): migrations and the first tokens are made once, however many replicas start together."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(724068101)"))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(724068101)"))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent); refuse a database a newer zhisuan migrated,
    naming both revisions."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        try:
            known = current is None or script.get_revision(current) is not None
        except CommandError:
            known = False
        if not known:
            raise NewerSchema(f"the database's schema is at revision {current}, newer than this zhisuan knows "
                              f"(up to {script.get_current_head()}): run a newer zhisuan against it")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
