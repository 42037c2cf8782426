"""The relay routes centers' agents move dataset files through: only the center a transfer was granted to, in
the direction granted, only the transfer's declared files, each cut at its declared size and written whole or
not at all. Tenants' tokens, other centers' credentials, paths outside the grant: refused, nothing written."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines.fleet import build_fleet
from zhisuan.model import parse_network
from zhisuan.store import JobStore, TokenStore, connect, migrate

BODY = b"x" * 300_000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, Service, dict[str, str], Path]]:
    network = parse_network({"name": "relay", "tenants": [{"name": "acme"}], "centers": [
        {"name": name, "region": "west", "join": "agent", "pue": 1.2, "carbon_kg_per_kwh": 0.5,
         "pools": [{"name": "gpu", "accelerator": "a100", "nodes": 1, "devices_per_node": 2,
                    "price_per_device_hour": 5}],
         "store": {"capacity_gb": 10, "cny_per_gb_month": 0.1}} for name in ("far", "other")]})
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    loop = ControlLoop(store, network, build_fleet(network, tmp_path / "runs"))
    service = Service(store, network, loop)
    assert service.mover is not None and set(service.mover.agents) == {"far", "other"}
    keys = {"far": tokens.issue("", 0.0, center="far"), "other": tokens.issue("", 0.0, center="other"),
            "acme": tokens.issue("acme", 0.0)}
    folder = tmp_path / "relay" / "7"
    folder.mkdir(parents=True)
    yield TestClient(create_app(service, tokens)), service, keys, folder


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_grant_gives_its_files_to_its_center_only(world: tuple[TestClient, Service, dict[str, str], Path]) -> None:
    client, service, keys, folder = world
    assert service.mover is not None
    relay = service.mover.relay
    (folder / "a.bin").write_bytes(BODY)
    (folder.parent / "secret").write_text("not a dataset file")
    relay.grant(7, "far", "give", folder, {"a.bin": (len(BODY), hashlib.md5(BODY).hexdigest())})
    r = client.get("/v1/agent/relay/7/a.bin", headers=h(keys["far"]))
    assert r.status_code == 200 and r.content == BODY
    assert relay.grants[7].bytes == len(BODY)  # the transfer's progress, counted as it passes
    assert client.get("/v1/agent/relay/7/a.bin", headers=h(keys["other"])).status_code == 404
    assert client.get("/v1/agent/relay/7/a.bin", headers=h(keys["acme"])).status_code == 403
    assert client.get("/v1/agent/relay/7/a.bin").status_code == 403
    for path in ("../secret", "%2e%2e/secret", "b.bin"):
        assert client.get(f"/v1/agent/relay/7/{path}", headers=h(keys["far"])).status_code == 404, path
    assert client.get("/v1/agent/relay/8/a.bin", headers=h(keys["far"])).status_code == 404
    r = client.put("/v1/agent/relay/7/a.bin", content=BODY, headers=h(keys["far"]))
    assert r.status_code == 403  # a file given to the center is not one it may write
    relay.revoke(7)  # the transfer ended: nothing more passes
    assert client.get("/v1/agent/relay/7/a.bin", headers=h(keys["far"])).status_code == 404


def test_a_file_taken_from_a_center_is_cut_at_its_size_and_written_whole_or_not_at_all(
        world: tuple[TestClient, Service, dict[str, str], Path]) -> None:
    client, service, keys, folder = world
    assert service.mover is not None
    relay = service.mover.relay
    relay.grant(7, "far", "take", folder, {"sub/a.bin": (len(BODY), hashlib.md5(BODY).hexdigest())})
    r = client.put("/v1/agent/relay/7/sub/a.bin", content=BODY + b"more", headers=h(keys["far"]))
    assert r.status_code == 422 and "declared" in r.text
    r = client.put("/v1/agent/relay/7/sub/a.bin", content=BODY[:1000], headers=h(keys["far"]))
    assert r.status_code == 422 and "1000 bytes" in r.text
    assert [p.name for p in folder.rglob("*") if p.is_file()] == []  # nothing half-written
    assert client.put("/v1/agent/relay/7/sub/a.bin", content=BODY, headers=h(keys["other"])).status_code == 404
    assert client.put("/v1/agent/relay/7/sub/b.bin", content=BODY, headers=h(keys["far"])).status_code == 404
    r = client.put("/v1/agent/relay/7/sub/a.bin", content=BODY, headers=h(keys["far"]))
    assert r.status_code == 204
    assert (folder / "sub" / "a.bin").read_bytes() == BODY and relay.grants[7].received == {"sub/a.bin"}
