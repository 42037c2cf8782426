"""Datasets in the store: who owns them and who may read them, their files' checksums, the replicas centers
hold, and the transfers between centers. The objects themselves live in the centers' S3 stores."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from zhisuan.store.schema_data import DatasetFileRow, DatasetRow, ReplicaRow, TransferRow

UPLOADING, READY, REMOVED = "uploading", "ready", "removed"
STAGING, BAD, EVICTING = "staging", "bad", "evicting"  # replica states beside READY
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE_TRANSFERS = (QUEUED, RUNNING)


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    owner: str
    name: str
    state: str
    size_bytes: int
    files: int
    home: str
    shared_with: tuple[str, ...]
    rule_copies: int | None
    rule_regions: tuple[str, ...]
    created_at: float

    @property
    def ref(self) -> str:
        return f"{self.owner}:{self.name}"

    @property
    def prefix(self) -> str:
        """Where its objects are in every center's bucket (owner and name are single checked segments). The id
        is part of it: a dataset removed and made again under its name never shares objects with the old one,
        whose objects are deleted later (under the name it had: a removed one is renamed NAME~removed~ID)."""
        return prefix_of(self.owner, self.name.split("~", 1)[0], self.id)


@dataclass(frozen=True)
class ReplicaRecord:
    id: int
    dataset_id: str
    center: str
    state: str
    size_bytes: int
    pinned: bool
    created_at: float
    last_used: float
    removed_at: float | None


@dataclass(frozen=True)
class TransferRecord:
    id: int
    dataset_id: str
    owner: str
    source: str
    target: str
    job_id: str | None
    state: str
    bytes_total: int
    bytes_done: int
    rate: float
    attempts: int
    error: str | None
    cny_per_gb: float
    created_at: float
    started_at: float | None
    ended_at: float | None

    @property
    def cny(self) -> float:
        return self.bytes_done / 1e9 * self.cny_per_gb


def _dataset(r: DatasetRow) -> DatasetRecord:
    return DatasetRecord(r.id, r.owner, r.name, r.state, r.size_bytes, r.files, r.home,
                         tuple(json.loads(r.shared_with)), r.rule_copies, tuple(json.loads(r.rule_regions)),
                         r.created_at)


def _replica(r: ReplicaRow) -> ReplicaRecord:
    return ReplicaRecord(r.id, r.dataset_id, r.center, r.state, r.size_bytes, r.pinned, r.created_at, r.last_used,
                         r.removed_at)


def _transfer(r: TransferRow) -> TransferRecord:
    return TransferRecord(r.id, r.dataset_id, r.owner, r.source, r.target, r.job_id, r.state, r.bytes_total,
                          r.bytes_done, r.rate, r.attempts, r.error, r.cny_per_gb, r.created_at, r.started_at,
                          r.ended_at)


class Exists(ValueError):
    """A dataset of that name is already the owner's."""


def prefix_of(owner: str, name: str, dataset_id: str) -> str:
    return f"datasets/{owner}/{name}/{dataset_id}"


def new_id() -> str:
    return f"d-{uuid.uuid4().hex[:12]}"


class DatasetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)

    # ---- datasets -----------------------------------------------------------------------------------

    def begin(self, owner: str, name: str, home: str, files: list[tuple[str, int, str]], now: float,
              dataset_id: str | None = None) -> DatasetRecord:
        """A dataset being uploaded to `home`: its files (path, bytes, md5) declared up front, unusable until
        `commit`. A removed one's name may be taken again. `dataset_id`: one made with `new_id` (its objects
        were put under its prefix first)."""
        row = DatasetRow(id=dataset_id or new_id(), owner=owner, name=name, state=UPLOADING,
                         size_bytes=sum(f[1] for f in files), files=len(files), home=home, shared_with="[]",
                         rule_copies=None, rule_regions="[]", created_at=now, updated_at=now)
        try:
            with self.session.begin() as s:
                old = s.scalar(select(DatasetRow).where(DatasetRow.owner == owner, DatasetRow.name == name))
                if old is not None and old.state != REMOVED:
                    raise Exists(f"{owner}:{name} exists ({old.state})")
                if old is not None:
                    old.name = f"{name[:150]}~removed~{old.id}"  # keeps its bill rows; frees the name
                    s.flush()
                s.add(row)
                s.flush()
                s.add_all(DatasetFileRow(dataset_id=row.id, path=p, size_bytes=n, md5=m) for p, n, m in files)
        except IntegrityError as e:
            raise Exists(f"{owner}:{name} exists") from e
        return _dataset(row)

    def commit(self, dataset_id: str, now: float) -> None:
        """Every file is at home with its checksum: usable, and its home replica ready."""
        with self.session.begin() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None or row.state != UPLOADING:
                raise ValueError(f"dataset {dataset_id} is not being uploaded")
            row.state, row.updated_at = READY, now
            s.add(ReplicaRow(dataset_id=row.id, center=row.home, state=READY, size_bytes=row.size_bytes,
                             pinned=False, created_at=now, last_used=now))

    def get(self, owner: str, name: str) -> DatasetRecord | None:
        with self.session() as s:
            row = s.scalar(select(DatasetRow).where(DatasetRow.owner == owner, DatasetRow.name == name,
                                                    DatasetRow.state != REMOVED))
            return _dataset(row) if row is not None else None

    def by_id(self, dataset_id: str) -> DatasetRecord | None:
        with self.session() as s:
            row = s.get(DatasetRow, dataset_id)
            return _dataset(row) if row is not None else None

    def visible(self, tenant: str) -> list[DatasetRecord]:
        """The tenant's own datasets and those shared with it (not removed), by owner and name."""
        with self.session() as s:
            rows = s.scalars(select(DatasetRow).where(DatasetRow.state != REMOVED)
                             .order_by(DatasetRow.owner, DatasetRow.name)).all()
            out = [_dataset(r) for r in rows]
        return [d for d in out if d.owner == tenant or tenant in d.shared_with]

    def with_rules(self) -> list[DatasetRecord]:
        """Ready datasets that carry a replication rule."""
        with self.session() as s:
            rows = s.scalars(select(DatasetRow).where(DatasetRow.state == READY, DatasetRow.rule_copies.is_not(None))
                             .order_by(DatasetRow.id)).all()
            return [_dataset(r) for r in rows]

    def files(self, dataset_id: str) -> dict[str, tuple[int, str]]:
        with self.session() as s:
            rows = s.scalars(select(DatasetFileRow).where(DatasetFileRow.dataset_id == dataset_id)).all()
            return {r.path: (r.size_bytes, r.md5) for r in rows}

    def set_sharing(self, dataset_id: str, tenants: list[str], now: float) -> None:
        with self.session.begin() as s:
            s.execute(update(DatasetRow).where(DatasetRow.id == dataset_id)
                      .values(shared_with=json.dumps(sorted(set(tenants))), updated_at=now))

    def set_rule(self, dataset_id: str, copies: int | None, regions: list[str], now: float) -> None:
        with self.session.begin() as s:
            s.execute(update(DatasetRow).where(DatasetRow.id == dataset_id)
                      .values(rule_copies=copies, rule_regions=json.dumps(regions), updated_at=now))

    def remove(self, dataset_id: str, now: float) -> None:
        """Gone for users at once; its replicas' objects are deleted by the data keeper."""
        with self.session.begin() as s:
            s.execute(update(DatasetRow).where(DatasetRow.id == dataset_id).values(state=REMOVED, updated_at=now))
            s.execute(update(TransferRow).where(TransferRow.dataset_id == dataset_id,
                                                TransferRow.state.in_(ACTIVE_TRANSFERS))
                      .values(state=CANCELLED, ended_at=now, error="the dataset was removed"))

    def removed_with_replicas(self) -> list[tuple[DatasetRecord, ReplicaRecord]]:
        """Replicas whose objects are to be deleted: of removed datasets, or evicted."""
        with self.session() as s:
            rows = s.execute(select(DatasetRow, ReplicaRow).join(ReplicaRow, ReplicaRow.dataset_id == DatasetRow.id)
                             .where((DatasetRow.state == REMOVED) | (ReplicaRow.state == EVICTING),
                                    ReplicaRow.removed_at.is_(None))).all()
            return [(_dataset(d), _replica(r)) for d, r in rows]

    # ---- replicas -----------------------------------------------------------------------------------

    def replicas(self, dataset_id: str | None = None, center: str | None = None) -> list[ReplicaRecord]:
        """Live replicas (not removed), of one dataset and/or at one center."""
        q = select(ReplicaRow).where(ReplicaRow.removed_at.is_(None))
        if dataset_id is not None:
            q = q.where(ReplicaRow.dataset_id == dataset_id)
        if center is not None:
            q = q.where(ReplicaRow.center == center)
        with self.session() as s:
            return [_replica(r) for r in s.scalars(q.order_by(ReplicaRow.id)).all()]

    def add_replica(self, dataset_id: str, center: str, state: str, size: int, now: float,
                    pinned: bool = False) -> ReplicaRecord:
        with self.session.begin() as s:
            row = ReplicaRow(dataset_id=dataset_id, center=center, state=state, size_bytes=size, pinned=pinned,
                             created_at=now, last_used=now)
            s.add(row)
        return _replica(row)

    def set_replica(self, replica_id: int, now: float, **values: object) -> None:
        with self.session.begin() as s:
            s.execute(update(ReplicaRow).where(ReplicaRow.id == replica_id).values(**values))

    def touch(self, dataset_id: str, center: str, now: float) -> None:
        """Used now (least-recently-used eviction spares it)."""
        with self.session.begin() as s:
            s.execute(update(ReplicaRow).where(ReplicaRow.dataset_id == dataset_id, ReplicaRow.center == center,
                                               ReplicaRow.removed_at.is_(None)).values(last_used=now))

    def drop_replica(self, replica_id: int, now: float) -> None:
        self.set_replica(replica_id, now, removed_at=now)

    def replica_history(self, owner: str | None, start: float, end: float) -> list[tuple[DatasetRecord, ReplicaRecord]]:
        """Replicas that existed during [start, end) (for storage on the bill), with their datasets."""
        q = (select(DatasetRow, ReplicaRow).join(ReplicaRow, ReplicaRow.dataset_id == DatasetRow.id)
             .where(ReplicaRow.created_at < end, (ReplicaRow.removed_at.is_(None)) | (ReplicaRow.removed_at > start),
                    ReplicaRow.state == READY))
        if owner is not None:
            q = q.where(DatasetRow.owner == owner)
        with self.session() as s:
            return [(_dataset(d), _replica(r)) for d, r in s.execute(q).all()]

    # ---- transfers ----------------------------------------------------------------------------------

    def queue_transfer(self, dataset_id: str, owner: str, source: str, target: str, job_id: str | None,
                       size: int, cny_per_gb: float, now: float) -> TransferRecord:
        with self.session.begin() as s:
            row = TransferRow(dataset_id=dataset_id, owner=owner, source=source, target=target, job_id=job_id,
                              state=QUEUED, bytes_total=size, bytes_done=0, rate=0.0, attempts=0,
                              cny_per_gb=cny_per_gb, created_at=now)
            s.add(row)
        return _transfer(row)

    def update_transfer(self, transfer_id: int, **values: object) -> None:
        with self.session.begin() as s:
            s.execute(update(TransferRow).where(TransferRow.id == transfer_id).values(**values))

    def transfer(self, transfer_id: int) -> TransferRecord | None:
        with self.session() as s:
            row = s.get(TransferRow, transfer_id)
            return _transfer(row) if row is not None else None

    def done_count(self) -> int:
        """Transfers done so far (a cheap "did a replica land?" for the loop's step)."""
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(TransferRow).where(TransferRow.state == DONE)) or 0)

    def transfers(self, *, job_id: str | None = None, states: tuple[str, ...] | None = None,
                  dataset_id: str | None = None,
                  owner: str | None = None, start: float | None = None, end: float | None = None,
                  ) -> list[TransferRecord]:
        q = select(TransferRow)
        if job_id is not None:
            q = q.where(TransferRow.job_id == job_id)
        if dataset_id is not None:
            q = q.where(TransferRow.dataset_id == dataset_id)
        if states is not None:
            q = q.where(TransferRow.state.in_(states))
        if owner is not None:
            q = q.where(TransferRow.owner == owner)
        if start is not None:
            q = q.where(TransferRow.ended_at >= start)
        if end is not None:
            q = q.where(TransferRow.ended_at < end)
        with self.session() as s:
            return [_transfer(r) for r in s.scalars(q.order_by(TransferRow.id)).all()]
