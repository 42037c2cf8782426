"""Datasets as tenants use them: upload to a center's store, list, show, share, replicate, remove, and
resolve a job's `inputs` to what the scheduler weighs (size, centers holding a checked replica).

A tenant sees and reads only its own datasets and those shared with it; another tenant's dataset is
indistinguishable from none (404). An upload declares its files (path, size, MD5) first; each file is
checked as it arrives and the dataset is usable only once every object in the store matches
(`commit`). An upload that fails is removed whole: nothing half-written is ever read.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zhisuan.control.errors import Conflict, Forbidden, NotFound, TooMany, Unavailable
from zhisuan.metering.datalines import StorageLine, TransferLine, storage_lines, transfer_lines
from zhisuan.metering.invoice import month_window
from zhisuan.model import JobSpec, Network, SpecError
from zhisuan.model.datasets import InputData, check_dataset_name, split_ref
from zhisuan.model.links import link_between
from zhisuan.storage import S3Store, TransferFailed, listing, put, remove
from zhisuan.store.datasets import (
    ACTIVE_TRANSFERS,
    READY,
    UPLOADING,
    DatasetRecord,
    DatasetStore,
    Exists,
    ReplicaRecord,
)

MAX_FILES = 10_000  # per dataset
MAX_DATASETS = 1_000  # per tenant, not removed
MAX_REPLICATING = 8  # copies a tenant may have queued or running at once by `replicate` (staging is not capped)
MAX_PATH = 1024  # bytes of a file's path inside its dataset
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def check_file(path: str, size: int, md5: str, where: str) -> None:
    """One declared file: a relative path that never climbs out, a size, an MD5 in hex."""
    parts = path.split("/")
    if (not path or len(path.encode()) > MAX_PATH or path.startswith("/") or "\x00" in path
            or any(p in ("", ".", "..") for p in parts)):
        raise SpecError([(f"{where}.path", f"{path[:64]!r} is not a relative path inside the dataset")])
    if not isinstance(size, int) or size < 0:
        raise SpecError([(f"{where}.size", "a size in bytes, 0 or more")])
    if not _MD5.match(md5):
        raise SpecError([(f"{where}.md5", "32 lowercase hex digits")])


def _split(ref: str, tenant: str, field: str = "dataset") -> tuple[str, str]:
    """`NAME` or `OWNER:NAME` -> (owner, name), or SpecError naming `field`."""
    try:
        return split_ref(ref, tenant)
    except ValueError as e:
        raise SpecError([(field, str(e))]) from e


@dataclass
class DataService:
    network: Network
    datasets: DatasetStore
    stores: dict[str, S3Store] = field(default_factory=dict)  # the stores this server reaches (direct centers)

    @property
    def relayed(self) -> frozenset[str]:
        """Centers with a store only their agents reach: data moves there through the agent."""
        return frozenset(c.name for c in self.network.centers if c.store is not None and c.join == "agent")

    def _center(self, name: str, field: str) -> None:
        center = next((c for c in self.network.centers if c.name == name), None)
        if center is None:
            raise SpecError([(field, f"no center {name!r} in network {self.network.name}")])
        if center.store is None:
            raise SpecError([(field, f"center {name} declares no store (centers.{name}.store)")])

    def capacity_gb(self, center: str) -> float:
        store = self.network.center(center).store
        return store.capacity_gb if store is not None else 0.0

    def begin(self, tenant: str, name: str, center: str, files: Sequence[tuple[str, int, str]],
              now: float) -> DatasetRecord:
        """A new dataset `name` of `tenant` to be uploaded to `center`'s store."""
        try:
            check_dataset_name(name)
        except ValueError as e:
            raise SpecError([("name", str(e))]) from e
        self._center(center, "center")
        if not files or len(files) > MAX_FILES:
            raise SpecError([("files", f"1 to {MAX_FILES:,} files")])
        seen: set[str] = set()
        for i, (path, size, md5) in enumerate(files):
            check_file(path, size, md5, f"files.{i}")
            if path in seen:
                raise SpecError([(f"files.{i}.path", f"{path[:64]!r} is listed twice")])
            seen.add(path)
        total = sum(f[1] for f in files)
        largest = max(self.capacity_gb(c.name) for c in self.network.centers if c.store is not None)
        if total > largest * 1e9:
            raise SpecError([("files", f"{total / 1e9:,.1f} GB is more than any center's store holds "
                                       f"(largest: {largest:,.0f} GB)")])
        if total > self.capacity_gb(center) * 1e9:
            raise SpecError([("center", f"{total / 1e9:,.1f} GB is more than {center}'s store holds "
                                        f"({self.capacity_gb(center):,.0f} GB)")])
        if len(self.datasets.visible(tenant)) >= MAX_DATASETS:
            raise TooMany(f"tenant {tenant} has {MAX_DATASETS} datasets; remove one first")
        try:
            return self.datasets.begin(tenant, name, center, list(files), now)
        except Exists as e:
            raise Conflict(str(e)) from e

    def _store(self, d: DatasetRecord) -> S3Store:
        store = self.stores.get(d.home)
        if store is None:
            raise Conflict(f"{d.home}'s store is reached through its agent: upload there with its operator's tools")
        return store

    def receive(self, tenant: str, name: str, path: str, body: Path) -> None:
        """One declared file of an upload, already on local disk at `body`: checked against its size and MD5,
        then put into the home center's store. Blocking: the API calls it off its event loop."""
        d = self.own(tenant, name)
        if d.state != UPLOADING:
            raise Conflict(f"dataset {d.ref} is {d.state}: its files are fixed")
        declared = self.datasets.files(d.id).get(path)
        if declared is None:
            raise SpecError([("path", f"{path[:64]!r} is not one of the dataset's declared files")])
        size, md5 = declared
        digest = hashlib.md5(usedforsecurity=False)
        with body.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if body.stat().st_size != size or digest.hexdigest() != md5:
            raise SpecError([("body", f"{path[:64]!r}: {body.stat().st_size} bytes, md5 {digest.hexdigest()}; "
                                      f"declared {size} bytes, md5 {md5}")])
        folder, _, base = f"{d.prefix}/{path}".rpartition("/")
        with tempfile.TemporaryDirectory(prefix="zhisuan-put-") as tmp:
            named = Path(tmp) / base  # put() keys a file by its name under the prefix
            body.rename(named)
            try:
                put(named, self._store(d), folder)
            except TransferFailed as e:
                raise Unavailable(str(e)) from e

    def commit(self, tenant: str, name: str, now: float) -> DatasetRecord:
        """The upload is whole: every declared object is in the home store with its checksum, nothing else."""
        d = self.own(tenant, name)
        if d.state != UPLOADING:
            raise Conflict(f"dataset {d.ref} is {d.state}")
        try:
            found = {o.path: (o.size, o.md5) for o in listing(self._store(d), d.prefix)}
        except TransferFailed as e:
            raise Unavailable(str(e)) from e
        declared = self.datasets.files(d.id)
        missing = sorted(p for p in declared if p not in found)
        wrong = sorted(p for p, v in declared.items() if p in found and found[p] != v)
        if missing or wrong:
            raise Conflict(f"dataset {d.ref} is not whole: missing {missing[:5]}, differing {wrong[:5]}")
        self.datasets.commit(d.id, now)
        return self.own(tenant, name)

    def remove(self, tenant: str, name: str, now: float, admin: bool = False) -> None:
        """Gone for its readers at once; an upload's objects deleted now, replicas' by the mover."""
        d = self.own(tenant, name, admin)
        if d.state == UPLOADING and d.home in self.stores:
            try:
                remove(self.stores[d.home], d.prefix)
            except TransferFailed as e:
                raise Unavailable(str(e)) from e
        self.datasets.remove(d.id, now)

    def own(self, tenant: str, name: str, admin: bool = False) -> DatasetRecord:
        """The tenant's own dataset `name` (an admin may name `OWNER:NAME`)."""
        owner, bare = _split(name, tenant) if admin else (tenant, name)
        d = self.datasets.get(owner, bare)
        if d is None:
            raise NotFound(name, "dataset")
        return d

    def readable(self, tenant: str, ref: str) -> DatasetRecord:
        """`NAME` (own) or `OWNER:NAME` (shared with the tenant), ready to read."""
        owner, name = _split(ref, tenant)
        d = self.datasets.get(owner, name)
        if d is None or (owner != tenant and tenant not in d.shared_with):
            raise NotFound(ref, "dataset")
        if d.state != READY:
            raise Conflict(f"dataset {d.ref} is {d.state}, not ready")
        return d

    def visible(self, tenant: str) -> list[DatasetRecord]:
        return self.datasets.visible(tenant)

    def show(self, tenant: str, ref: str) -> tuple[DatasetRecord, dict[str, tuple[int, str]], list[ReplicaRecord]]:
        owner, name = _split(ref, tenant)
        d = self.datasets.get(owner, name)
        if d is None or (owner != tenant and tenant not in d.shared_with):
            raise NotFound(ref, "dataset")
        return d, self.datasets.files(d.id), self.datasets.replicas(d.id)

    def share(self, tenant: str, name: str, tenants: list[str], now: float) -> DatasetRecord:
        d = self.own(tenant, name)
        for i, t in enumerate(tenants):
            try:
                split_ref(f"{t}:x", tenant)
            except ValueError as e:
                raise SpecError([(f"tenants.{i}", str(e))]) from e
        self.datasets.set_sharing(d.id, tenants, now)
        return self.own(tenant, name)

    def rule(self, tenant: str, name: str, copies: int | None, regions: list[str], now: float) -> None:
        """Replication rule (Rucio's sense): keep `copies` replicas, first one in each of `regions`."""
        d = self.own(tenant, name)
        known = {c.region for c in self.network.centers if c.store is not None}
        for i, r in enumerate(regions):
            if r not in known:
                raise SpecError([(f"regions.{i}", f"no center with a store in region {r!r}")])
        stores = sum(1 for c in self.network.centers if c.store is not None)
        if copies is not None and not 1 <= copies <= stores:
            raise SpecError([("copies", f"1 to {stores} (the centers with a store)")])
        if copies is not None and len(regions) > copies:
            raise SpecError([("regions", "more regions than copies")])
        self.datasets.set_rule(d.id, copies, regions, now)

    def replicate(self, tenant: str, name: str, target: str, now: float, pinned: bool = False) -> int:
        """Queue a copy of the dataset to `target`'s store (the owner pays the transfer); its id."""
        d = self.own(tenant, name)
        if d.state != READY:
            raise Conflict(f"dataset {d.ref} is {d.state}, not ready")
        self._center(target, "to")
        live = self.datasets.replicas(d.id)
        if any(r.center == target for r in live):
            raise Conflict(f"{target} already holds a replica of {d.ref}")
        if d.size_bytes > self.capacity_gb(target) * 1e9:
            raise SpecError([("to", f"{d.size_bytes / 1e9:,.1f} GB is more than {target}'s store holds")])
        busy = [t for t in self.datasets.transfers(owner=tenant, states=ACTIVE_TRANSFERS) if t.job_id is None]
        if len(busy) >= MAX_REPLICATING:
            raise TooMany(f"tenant {tenant} has {MAX_REPLICATING} copies under way; wait for one to finish")
        source = self.nearest(d, target, live)
        link = link_between(self.network.center(source), self.network.center(target), self.network.links)
        self.datasets.add_replica(d.id, target, "staging", d.size_bytes, now, pinned=pinned)
        t = self.datasets.queue_transfer(d.id, tenant, source, target, None, d.size_bytes, link.cny_per_gb, now)
        return t.id

    def nearest(self, d: DatasetRecord, target: str, live: list[ReplicaRecord] | None = None) -> str:
        """The ready replica that reaches `target` soonest (the scheduler's choice of source, too)."""
        ready = [r.center for r in (live if live is not None else self.datasets.replicas(d.id)) if r.state == READY]
        if not ready:
            raise Conflict(f"no checked replica of {d.ref} to copy from")
        dst = self.network.center(target)

        def seconds(center: str) -> float:
            link = link_between(self.network.center(center), dst, self.network.links)
            return link.rtt_s + d.size_bytes / link.bytes_per_s
        return min(sorted(ready), key=seconds)

    def inputs_of(self, spec: JobSpec) -> tuple[InputData, ...]:
        """A job's inputs as the scheduler weighs them, or SpecError naming `inputs.<mount>`."""
        out = []
        for mount, ref in spec.inputs.items():
            try:
                d = self.readable(spec.tenant, ref)
            except (NotFound, Forbidden) as e:
                raise SpecError([(f"inputs.{mount}", f"no dataset {ref!r} you may read")]) from e
            except Conflict as e:
                raise SpecError([(f"inputs.{mount}", str(e))]) from e
            at = frozenset(r.center for r in self.datasets.replicas(d.id) if r.state == READY)
            out.append(InputData(d.ref, d.size_bytes / 1e9, at, frozenset(self.stores) | self.relayed))
        return tuple(out)

    def month_cost(self, tenant: str, month: str, now: float) -> tuple[float, float]:
        """The tenant's storage and transfers in local month `month` up to `now`, in ¥ as its invoice says."""
        storage, transfers = self.bill(tenant, *month_window(month), now)
        return sum(x.cny for x in storage), sum(x.cny for x in transfers)

    def bill(self, tenant: str, start: float, end: float, now: float | None = None,
             ) -> tuple[list[StorageLine], list[TransferLine]]:
        """The tenant's storage (its datasets' replicas) and transfers (those it asked for) in [start, end); a
        replica still held is billed up to `now` (the month's final figure comes when it ends)."""
        end = min(end, now) if now is not None else end
        prices = {c.name: c.store.cny_per_gb_month for c in self.network.centers if c.store is not None}
        held = [(d.ref, r.center, r.size_bytes, r.created_at, r.removed_at)
                for d, r in self.datasets.replica_history(tenant, start, end)]
        moved = [(t.source, t.target, t.bytes_done, t.cny_per_gb)
                 for t in self.datasets.transfers(owner=tenant, start=start, end=end) if t.bytes_done]
        return storage_lines(held, prices, start, end), transfer_lines(moved)
