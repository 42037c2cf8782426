"""Engines and migrations. SQLite gets WAL and a busy timeout so a reader never blocks the control loop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, text

DEFAULT_URL = "sqlite:///zhisuan.db"


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
