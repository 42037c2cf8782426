"""Fixtures shared by all tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import ROOT


@pytest.fixture
def root() -> Path:
    return ROOT
