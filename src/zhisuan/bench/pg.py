"""A PostgreSQL for a benchmark: the repo's throw-away one (scripts/postgres-up.sh, fsync off: it measures
the server, not a disk), started if it is not up and stopped again only if this started it; each run gets a
fresh database of its own, dropped afterwards. Run from the repo root (it uses scripts/)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5434/postgres"


def running() -> bool:
    return subprocess.run(["/usr/lib/postgresql/15/bin/pg_isready", "-h", "127.0.0.1", "-p", "5434", "-t", "2"],
                          capture_output=True, check=False).returncode == 0


@contextmanager
def scratch_database() -> Iterator[str]:
    started = not running()
    if started:
        subprocess.run(["bash", "scripts/postgres-up.sh"], check=True, capture_output=True)
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        yield SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        try:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        finally:
            admin.dispose()
            if started:
                subprocess.run(["bash", "scripts/postgres-down.sh"], check=False, capture_output=True)
