"""The storage adapter against real S3 servers (rclone serve s3), real copies between them, and stores that fail.

Timings are lower bounds only (a bandwidth limit makes a copy take at least so long), except that a failing store
must fail the run within a bound: that is the point of the timeouts.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.storage.conftest import Center, rclone_children
from zhisuan.storage import (
    ObjectInfo,
    Progress,
    S3Store,
    Timeouts,
    TransferCancelled,
    TransferFailed,
    copy,
    listing,
    put,
    remove,
    verify,
)

MiB = 1024 * 1024
TIGHT = Timeouts(connect_s=2, idle_s=2, retries=1, low_level_retries=0, stall_s=4)  # failing stores fail in seconds


def make_files(folder: Path, sizes: dict[str, int]) -> dict[str, str]:
    """Random files under `folder`; returns path -> MD5."""
    md5s = {}
    for name, size in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()
    return md5s


def md5s_of(objects: list[ObjectInfo]) -> dict[str, str | None]:
    return {o.path: o.md5 for o in objects}


def test_put_list_verify_roundtrip(centers: tuple[Center, Center], tmp_path: Path) -> None:
    a, _ = centers
    expected = make_files(tmp_path / "ckpt", {"model.bin": 300_000, "meta/config.json": 1_000, "meta/empty": 0})
    put_back = put(tmp_path / "ckpt", a.store, "jobs/42/ckpt")
    assert md5s_of(put_back) == expected
    assert md5s_of(listing(a.store, "jobs/42/ckpt")) == expected
    assert {o.path: o.size for o in put_back}["model.bin"] == 300_000
    assert verify(a.store, "jobs/42/ckpt", expected) == []
    config = "meta/config.json"
    assert (a.folder / "jobs/42/ckpt" / config).read_bytes() == (tmp_path / "ckpt" / config).read_bytes()

    one = put(tmp_path / "ckpt" / "model.bin", a.store, "jobs/42/single")
    assert md5s_of(one) == {"model.bin": expected["model.bin"]}
    assert listing(a.store, "jobs/nothing-here") == []

    remove(a.store, "jobs/42")
    assert listing(a.store, "jobs/42") == []
    remove(a.store, "jobs/42")  # already gone: fine
    with pytest.raises(ValueError):
        remove(a.store, "/")


def test_copy_between_centers_is_limited_and_reports_progress(centers: tuple[Center, Center],
                                                                tmp_path: Path) -> None:
    a, b = centers
    expected = make_files(tmp_path / "in", {"part-0": 4 * MiB, "part-1": 4 * MiB})
    put(tmp_path / "in", a.store, "ds")
    seen: list[Progress] = []
    start = time.monotonic()
    done = copy(a.store, "ds", b.store, "replica/ds", bwlimit_bytes_per_s=4 * MiB, on_progress=seen.append)
    elapsed = time.monotonic() - start
    assert elapsed >= 1.5, f"8 MiB at 4 MiB/s took only {elapsed:.2f} s"
    assert done.bytes_done == done.bytes_total == 8 * MiB
    assert done.files_done == done.files_total == 2
    moved = [p.bytes_done for p in seen]
    assert len(moved) >= 3 and moved == sorted(moved) and moved[0] < moved[-1], moved
    assert any(0 < p.bytes_done < 8 * MiB for p in seen), "no progress while the copy ran"
    assert verify(b.store, "replica/ds", expected) == []
    assert (b.folder / "replica/ds/part-1").read_bytes() == (tmp_path / "in/part-1").read_bytes()


def test_copy_within_one_store(centers: tuple[Center, Center], tmp_path: Path) -> None:
    a, _ = centers
    expected = make_files(tmp_path / "in", {"x": 100_000})
    put(tmp_path / "in", a.store, "src")
    copy(a.store, "src", a.store, "dst")
    assert verify(a.store, "dst", expected) == []


def test_cancel_stops_rclone_and_a_second_copy_moves_only_the_rest(centers: tuple[Center, Center],
                                                                  tmp_path: Path) -> None:
    a, b = centers
    names = {f"shard-{i:02d}": MiB for i in range(12)}
    expected = make_files(tmp_path / "in", names)
    put(tmp_path / "in", a.store, "ds")
    servers = {a.server.pid, b.server.pid}
    cancel = threading.Event()

    def stop_after_four(p: Progress) -> None:
        if p.files_done >= 4:
            cancel.set()

    start = time.monotonic()
    with pytest.raises(TransferCancelled):
        copy(a.store, "ds", b.store, "ds", bwlimit_bytes_per_s=4 * MiB, on_progress=stop_after_four, cancel=cancel)
    assert time.monotonic() - start < 12 * MiB / (4 * MiB), "the copy ran to its end instead of stopping"
    assert set(rclone_children()) == servers, "the cancelled rclone is still running"

    present = md5s_of(listing(b.store, "ds"))
    assert 4 <= len(present) < 12
    assert all(present[p] == expected[p] for p in present), "a partly copied object is visible"

    rest = copy(a.store, "ds", b.store, "ds")
    assert rest.files_done == rest.files_total == 12 - len(present)
    assert rest.bytes_done == (12 - len(present)) * MiB
    assert verify(b.store, "ds", expected) == []
    again = copy(a.store, "ds", b.store, "ds")
    assert (again.files_done, again.bytes_done) == (0, 0)


def test_cancel_before_start_starts_nothing(centers: tuple[Center, Center]) -> None:
    a, b = centers
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TransferCancelled):
        copy(a.store, "ds", b.store, "ds", cancel=cancel)


def test_verify_reports_a_corrupted_replica(centers: tuple[Center, Center], tmp_path: Path) -> None:
    a, b = centers
    expected = make_files(tmp_path / "in", {"good": 50_000, "bad": 50_000, "sub/also-good": 10})
    put(tmp_path / "in", a.store, "ds")
    copy(a.store, "ds", b.store, "ds")
    assert verify(b.store, "ds", expected) == []
    (b.folder / "ds" / "bad").write_bytes(os.urandom(50_000))  # same size, other bytes: only the MD5 tells
    assert verify(b.store, "ds", expected) == ["bad"]
    assert verify(b.store, "ds", expected | {"never-copied": expected["good"]}) == ["bad", "never-copied"]


@pytest.mark.parametrize("failing", ["store_500", "store_hanging"])
def test_a_failing_store_is_named_within_bounded_time(failing: str, centers: tuple[Center, Center],
                                                      tmp_path: Path, request: pytest.FixtureRequest) -> None:
    a, _ = centers
    bad: S3Store = request.getfixturevalue(failing)
    make_files(tmp_path / "in", {f"x{i}": 10_000 for i in range(12)})  # rclone alone would try each in turn
    put(tmp_path / "in", a.store, "ds")
    runs = [lambda: copy(a.store, "ds", bad, "ds", timeouts=TIGHT),
            lambda: listing(bad, "ds", timeouts=TIGHT)]
    if failing == "store_500":
        runs.append(lambda: copy(bad, "ds", a.store, "back", timeouts=TIGHT))
    for attempt in runs:
        start = time.monotonic()
        with pytest.raises(TransferFailed) as failed:
            attempt()
        assert time.monotonic() - start < 30
        assert failed.value.stores == (bad.name,)
        assert bad.name in str(failed.value)
        assert failed.value.lines, "no rclone error kept"
