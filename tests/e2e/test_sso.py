"""Single sign-on against a real OpenID provider (panva/oidc-provider under Node, scripts/oidc) and a real
`zhisuan server`: the dashboard through the authorization code flow with PKCE in headless Chromium, the CLI
through the device flow, groups mapped to projects and roles; ID tokens for another client, expired, or
signed by another key are refused naming why; a callback with a state not ours is refused."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.web.test_dashboard import CHROMIUM, browser  # noqa: F401 (fixture)
from zhisuan.engines.rendezvous import free_port
from zhisuan.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SHORT = 4  # seconds an ID token for the other application lasts


def provider_script() -> str:
    given = os.environ.get("ZHISUAN_TEST_OIDC")
    if given:
        return given
    script = ROOT / "scripts" / "oidc" / "provider.mjs"
    if not (ROOT / "scripts" / "oidc" / "node_modules" / "oidc-provider").exists():
        if os.environ.get("CI"):
            pytest.fail("the OpenID provider is not installed: `make test` installs it (scripts/oidc-ensure.sh)")
        pytest.skip("no OpenID provider (run scripts/oidc-ensure.sh)")
    return str(script)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sso")
    tmp.chmod(0o711)
    port, idp = free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp}"
    device = {"token_endpoint_auth_method": "none", "response_types": [], "redirect_uris": [],
              "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}
    (tmp / "idp.json").write_text(json.dumps({
        "port": idp, "issuer": issuer, "short_lived_client": "other-app", "short_ttl": SHORT,
        "clients": [{"client_id": "zhisuan-dashboard", "token_endpoint_auth_method": "none",
                     "redirect_uris": [f"http://127.0.0.1:{port}/v1/sso/callback"],
                     "grant_types": ["authorization_code"], "response_types": ["code"]},
                    {"client_id": "zhisuan-cli", **device}, {"client_id": "other-app", **device}],
        "users": {"zhang": {"email": "zhang@acme.cn", "email_verified": True, "groups": ["staff", "acme-trainers"]},
                  "nobody": {"email": "nobody@elsewhere.org", "groups": ["visitors"]}}}))
    idp_proc = subprocess.Popen(["node", provider_script(), str(tmp / "idp.json")], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    try:
        line = idp_proc.stdout.readline()
        assert line.startswith("ready"), line
        network = (ROOT / "examples" / "networks" / "toy3.yaml").read_text()
        network += (f"\nsso:\n  issuer: {issuer}\n  client_id: zhisuan-dashboard\n  cli_client_id: zhisuan-cli\n"
                    "  session: 2h\n  groups:\n    acme-trainers: {project: acme, role: member}\n"
                    "    ops: {admin: true}\n")
        (tmp / "net.yaml").write_text(network)
        server = ServerProcess(tmp / "net.yaml", f"sqlite:///{tmp / 'z.db'}", tmp / "runs", port=port,
                               interval=0.3).start()
        try:
            yield server, issuer, tmp
        finally:
            server.close()
    finally:
        idp_proc.terminate()
        idp_proc.wait(10)


def approve(browser, url, login="zhang"):  # noqa: F811
    """A person at the provider: (the device code confirmed,) signed in, consent given."""
    page = browser.new_context().new_page()  # the person's own browser: no one else's session at the provider
    page.goto(url)
    for _ in range(6):
        page.wait_for_load_state()
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", "any")
        if "Sign-in Success" in page.content() or page.url.split("#")[0].endswith("/"):
            break
        button = page.locator("button[type=submit]").first
        if not button.count():
            break
        button.click()
    return page


def test_the_dashboard_signs_in_through_the_provider_with_pkce(browser, world):  # noqa: F811
    server, _, _ = world
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server.url + "/")
    page.evaluate("localStorage.setItem('zhisuan.lang', 'en')")
    page.reload()
    page.wait_for_selector("#sso-button:visible")
    page.click("#sso-button")
    page.wait_for_selector("input[name=login]")
    assert page.url.startswith(world[1])  # at the provider
    page.fill("input[name=login]", "zhang")
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.locator("button[type=submit]").count() and not page.url.startswith(server.url):
        page.click("button[type=submit]")  # consent
    page.wait_for_selector("#centers", timeout=20_000)
    assert "#sso" not in page.url  # the token left the address bar at once
    assert "acme" in page.locator("#who").inner_text()
    token = page.evaluate("localStorage.getItem('zhisuan.token')")
    who = httpx.get(server.url + "/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert (who["tenant"], who["role"], who["admin"]) == ("acme", "member", False)
    trail = httpx.get(server.url + "/v1/audit", params={"action": "sign-in"},
                      headers={"Authorization": f"Bearer {server.token('admin')}"}).json()
    assert any(e["actor"] == "sso zhang@acme.cn" and "group acme-trainers" in e["detail"] for e in trail)
    # someone whose groups grant nothing here is told so, and gets no token (a browser of their own)
    page = browser.new_context().new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#sso-button:visible")
    page.click("#sso-button")
    page.wait_for_load_state()
    if page.locator("input[name=login]").count():
        page.fill("input[name=login]", "nobody")
        page.fill("input[name=password]", "any")
        page.click("button[type=submit]")
    page.wait_for_load_state()
    if not page.url.startswith(server.url) and page.locator("button[type=submit]").count():
        page.click("button[type=submit]")
    page.wait_for_selector("#login-error:has-text('grant nothing')", timeout=20_000)
    assert page.evaluate("localStorage.getItem('zhisuan.token')") is None
    # a callback whose state this server never issued, or one it issued to another browser
    r = httpx.get(server.url + "/v1/sso/callback", params={"code": "x", "state": "forged"}, follow_redirects=False)
    assert r.status_code == 302 and "sso-error=state" in r.headers["location"] and "#sso=" not in r.headers["location"]
    started = httpx.get(server.url + "/v1/sso/login", params={"bind": "b" * 16}, follow_redirects=False)
    state = re.search(r"[?&]state=([^&]+)", started.headers["location"])[1]
    r = httpx.get(server.url + "/v1/sso/callback", params={"code": "x", "state": state}, follow_redirects=False)
    assert "not%20started%20in%20this%20browser" in r.headers["location"], r.headers["location"]
    # a session token handed to a page that did not start a sign-in (a link someone sent) is not taken
    page = browser.new_context().new_page()
    page.goto(server.url + f"/?sso-bind=guess#sso={server.token('lab')}")
    page.wait_for_selector("#login-error:has-text('did not start')")
    assert page.evaluate("localStorage.getItem('zhisuan.token')") is None


def test_the_cli_signs_in_by_the_device_flow(browser, world, tmp_path):  # noqa: F811
    server, _, _ = world
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path), "COLUMNS": "200"}
    env.pop("ZHISUAN_TOKEN", None)
    cli = subprocess.Popen([sys.executable, "-m", "zhisuan.cli.main", "login", "--sso", "--url", server.url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        where = ""
        while not where.startswith("sso-verification:"):
            where = cli.stdout.readline()
            assert where or cli.poll() is None, cli.stderr.read()
        approve(browser, where.split(": ", 1)[1].strip())
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert cli.returncode == 0, (out, err)
    saved = next(tmp_path.rglob("token")).read_text().strip()
    who = httpx.get(server.url + "/v1/whoami", headers={"Authorization": f"Bearer {saved}"}).json()
    assert (who["tenant"], who["role"]) == ("acme", "member")


def device_token(browser, issuer, client_id):  # noqa: F811
    """A real ID token for `client_id`, by the device flow driven here."""
    with httpx.Client(timeout=10) as c:
        meta = c.get(issuer + "/.well-known/openid-configuration").json()
        d = c.post(meta["device_authorization_endpoint"],
                   data={"client_id": client_id, "scope": "openid email groups"}).json()
        approve(browser, d["verification_uri_complete"])
        for _ in range(60):
            r = c.post(meta["token_endpoint"], data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                                     "device_code": d["device_code"], "client_id": client_id})
            if r.status_code == 200:
                return r.json()["id_token"]
            time.sleep(1)
    raise AssertionError(r.text)


def test_id_tokens_for_another_client_expired_or_signed_by_another_key_are_refused(browser, world):  # noqa: F811
    server, issuer, _ = world
    other = device_token(browser, issuer, "other-app")
    r = httpx.post(server.url + "/v1/sso/exchange", json={"id_token": other})
    assert r.status_code == 401 and "audience" in r.json()["detail"], r.text
    time.sleep(SHORT + 1)
    r = httpx.post(server.url + "/v1/sso/exchange", json={"id_token": other})
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    claims = jwt.decode(other, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "aud": "zhisuan-cli", "exp": time.time() + 600, "iat": time.time()}, key,
                        algorithm="RS256", headers={"kid": jwt.get_unverified_header(other)["kid"]})
    r = httpx.post(server.url + "/v1/sso/exchange", json={"id_token": forged})
    assert r.status_code == 401 and "not signed by a key" in r.json()["detail"], r.text
    for junk in ("x.y.z", "a" * 20_000):
        r = httpx.post(server.url + "/v1/sso/exchange", json={"id_token": junk})
        assert r.status_code in (401, 422), r.text
    mine = device_token(browser, issuer, "zhisuan-cli")  # a good one, once: a replay mints no second session
    assert httpx.post(server.url + "/v1/sso/exchange", json={"id_token": mine}).status_code == 201
    r = httpx.post(server.url + "/v1/sso/exchange", json={"id_token": mine})
    assert r.status_code == 401 and "already exchanged" in r.json()["detail"], r.text
    listed = httpx.get(server.url + "/v1/tokens", headers={"Authorization": f"Bearer {server.token('admin')}"}).json()
    assert not any("other-app" in t["label"] for t in listed)
    assert CHROMIUM
