"""The store: SQLAlchemy 2 + Alembic. SQLite (WAL) by default, PostgreSQL by URL. Source of truth."""

from zhisuan.store.db import connect, migrate
from zhisuan.store.jobs import JobRecord, JobStore, Transition
from zhisuan.store.services import ServiceRecord, ServiceStore, TokenUsageStore
from zhisuan.store.tokens import Principal, TokenStore
from zhisuan.store.usage import UsageStore

__all__ = ["JobRecord", "JobStore", "Principal", "ServiceRecord", "ServiceStore", "TokenStore", "TokenUsageStore",
           "Transition", "UsageStore", "connect", "migrate"]
