"""Tables of the data services: datasets, their files' checksums, replicas at centers, and transfers.

Replica and transfer rows are kept after they end (`removed_at`, `ended_at`): they are what storage and
transfer lines on the bill are computed from."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhisuan.store.schema import Base


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_datasets_owner_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # uploading | ready | removed
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)
    home: Mapped[str] = mapped_column(String(64))  # the center it was put at
    shared_with: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of tenants who may read it
    rule_copies: Mapped[int | None] = mapped_column(Integer, nullable=True)  # replication rule: N copies…
    rule_regions: Mapped[str] = mapped_column(Text, default="[]")  # …one in each of these regions first
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class DatasetFileRow(Base):
    __tablename__ = "dataset_files"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))


class ReplicaRow(Base):
    __tablename__ = "replicas"
    __table_args__ = (Index("ix_replicas_live", "dataset_id", "center", "removed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    center: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))  # staging | ready | bad
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)  # kept by a replication rule, never evicted
    created_at: Mapped[float] = mapped_column(Float)
    last_used: Mapped[float] = mapped_column(Float)
    removed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TransferRow(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)  # who pays: the job's tenant or the dataset's owner
    source: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | done | failed | cancelled
    bytes_total: Mapped[int] = mapped_column(BigInteger)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rate: Mapped[float] = mapped_column(Float, default=0.0)  # bytes/s, latest
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cny_per_gb: Mapped[float] = mapped_column(Float)  # the link's price when it was queued
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
