"""Fixtures shared by all tests."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.builders import ROOT
from zhisuan.engines.sandbox import LEASES, UID_BASE, UID_SPAN, process_uids


@pytest.fixture
def root() -> Path:
    return ROOT


def _passable(folder: Path) -> None:
    folder.chmod(folder.stat().st_mode | 0o011)


@pytest.fixture(scope="session", autouse=True)
def _job_uids_reach_the_temp_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Jobs of the local engine run under uids of their own and must pass through the folders above their
    runs folder; pytest makes its temporary folders private (0700). Let others pass through (not read)."""
    for folder in (tmp_path_factory.getbasetemp(), tmp_path_factory.getbasetemp().parent):
        _passable(folder)


@pytest.fixture(autouse=True)
def _job_uids_reach_tmp_path(request: pytest.FixtureRequest) -> None:
    if "tmp_path" in request.fixturenames:
        _passable(request.getfixturevalue("tmp_path"))


def _job_processes(base: Path) -> dict[int, str]:
    """pid -> command line of every process running under a job uid leased to a run below `base` (this
    session's temporary folders: another test run on the machine is not ours to judge)."""
    found = {}
    for pid, uid in process_uids():
        if not UID_BASE <= uid < UID_BASE + UID_SPAN:
            continue
        with contextlib.suppress(OSError):
            if not (LEASES / str(uid)).read_text(encoding="utf-8").startswith(f"{base}{os.sep}"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    return found


@pytest.fixture(scope="module", autouse=True)
def _leave_no_job_running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Every test module ends every job process it started (the demo, tests and benchmarks leave nothing
    running): what is still there 15 s after the module's last test fails it, and is killed."""
    yield
    base = tmp_path_factory.getbasetemp()
    end = time.monotonic() + 15
    while (left := _job_processes(base)) and time.monotonic() < end:
        time.sleep(0.25)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"{request.module.__name__} left job processes running: {left}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'z.db'}"
        return
    server = os.environ.get("ZHISUAN_TEST_PG_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("ZHISUAN_TEST_PG_URL is not set: run the suite with `make test`, which starts PostgreSQL")
        pytest.skip("no PostgreSQL (run `make test` to start one)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()
