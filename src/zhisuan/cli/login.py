"""`zhisuan login`: a token checked against the server and kept for the next commands; or (`--sso`) the device
authorization flow (RFC 8628) with the network's OpenID provider — the person opens a URL in any browser and
confirms a code; the ID token the provider then gives is exchanged at the server for a session token."""

from __future__ import annotations

import getpass
import os
import sys
import time
from typing import Annotated

import typer

from zhisuan.cli.client import LOCAL, call, config_dir, connect
from zhisuan.cli.common import L, console, fail

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def device_login(url: str, limit: float = 600.0) -> str:
    """A session token for whoever confirms the code at the provider within `limit` seconds."""
    import httpx  # not at the command's start: `zhisuan --help` imports no HTTP client

    with httpx.Client(timeout=15.0) as client:
        try:
            cfg = client.get(url.rstrip("/") + "/v1/sso").json()
        except (httpx.HTTPError, ValueError) as e:
            fail(f"--url: {url} does not answer: {e}")
        if not cfg.get("enabled") or not cfg.get("cli_client_id") or not cfg.get("device_authorization_endpoint"):
            fail("--sso: this network signs in no CLI through a provider (sso.cli_client_id, and a provider with "
                 "the device flow)")
        asked = client.post(cfg["device_authorization_endpoint"],
                            data={"client_id": cfg["cli_client_id"], "scope": cfg["scope"]})
        if asked.status_code != 200:
            fail(f"--sso: the provider refused the device flow ({asked.status_code}: {asked.text[:200]})")
        device = asked.json()
        where = device.get("verification_uri_complete") or device["verification_uri"]
        console.print(f"Open {where} and confirm the code {device['user_code']}", soft_wrap=True)
        print(f"sso-verification: {where}", flush=True)
        interval, end = float(device.get("interval", 5)), time.time() + min(limit, float(device["expires_in"]))
        while time.time() < end:
            time.sleep(interval)
            got = client.post(cfg["token_endpoint"], data={"grant_type": GRANT, "device_code": device["device_code"],
                                                          "client_id": cfg["cli_client_id"]})
            if got.status_code == 200:
                break
            error = got.json().get("error", "") if got.headers.get("content-type", "").startswith(
                "application/json") else ""
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                fail(f"--sso: the provider says {error or got.status_code}: "
                     f"{got.json().get('error_description', '') if error else got.text[:200]}")
        else:
            fail("--sso: the code was not confirmed in time")
        exchanged = client.post(url.rstrip("/") + "/v1/sso/exchange", json={"id_token": got.json()["id_token"]})
        if exchanged.status_code != 201:
            fail(f"--sso: the server refused the sign-in ({exchanged.status_code}): "
                 f"{exchanged.json().get('detail', exchanged.text[:300])}")
        token: str = exchanged.json()["token"]
        return token


def login_command(url: Annotated[str, typer.Option("--url", help="server URL")] = LOCAL,
                  token: Annotated[str | None, typer.Option(
                      "--token", help="bearer token (default: $ZHISUAN_TOKEN, else read from standard input)")] = None,
                  sso: Annotated[bool, typer.Option("--sso", help="sign in through the network's OpenID provider "
                                                    "(device flow: open the URL shown, confirm the code)")] = False,
                  ) -> None:
    """Check a token against the server and keep it (with the URL) for the next commands, mode 0600."""
    if sso:
        token = device_login(url)
    token = token or os.environ.get("ZHISUAN_TOKEN")
    if not token:
        token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        fail("--token: no token given")
    with connect(url, token) as client:
        who = call(client, "GET", "/v1/whoami")
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, value in (("token", token), ("url", url)):
        path = folder / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(value + "\n", encoding="utf-8")
    tenant = who["tenant"] + (" (admin)" if who["admin"] else "")
    console.print(L("logged in to {url} as {tenant}; saved in {folder}", url=url, tenant=tenant, folder=folder))
