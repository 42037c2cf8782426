"""The store: SQLAlchemy 2 + Alembic. SQLite (WAL) by default, PostgreSQL by URL. Source of truth."""

from zhisuan.store.db import connect, migrate
from zhisuan.store.jobs import JobRecord, JobStore, Transition

__all__ = ["JobRecord", "JobStore", "Transition", "connect", "migrate"]
