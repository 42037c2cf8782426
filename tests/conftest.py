"""Fixtures shared by all tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import ROOT


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
