"""The agent tests' network across an emulated WAN (zhisuan.bench.wanet), and their need for namespaces."""

from __future__ import annotations

import os

import pytest

from zhisuan.bench.wanet import Wan, can_make_namespaces

__all__ = ["Wan", "need_namespaces"]


def need_namespaces() -> None:
    if not can_make_namespaces():
        if os.environ.get("CI"):
            pytest.fail("network namespaces are needed (run as root with iproute2)")
        pytest.skip("network namespaces need root and iproute2")
