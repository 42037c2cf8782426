"""The role × route matrix: every route of the API, called with a token of every role, is refused (403,
naming the role) exactly where control/roles.py says the role may not, and answered otherwise."""

import re

import pytest
from fastapi.routing import APIRoute

from tests.api.test_api import JOB, api, auth  # noqa: F401  (the fixture)
from zhisuan.control.roles import MAY, NEEDS
from zhisuan.store import TokenStore

PARAMS = {"tenant": "acme", "month": "2026-01", "path": "f.txt", "job_id": "j-x", "service_id": "s-x",
          "token_id": "ffffffffffff", "name": "d", "ref": "d", "center": "here", "org": "acme", "project": "acme",
          "member_id": "ffffffffffff"}


def url(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: PARAMS[m.group(1)], path)


@pytest.fixture
def roles(api):  # noqa: F811
    client, keys, store, _ = api
    made = {"admin": keys["admin"], "member": keys["acme"]}
    for role in ("viewer", "billing"):
        made[role] = client.post("/v1/tokens", json={"tenant": "acme", "role": role},
                                 headers=auth(keys["admin"])).json()["token"]
    made["operator"] = client.post("/v1/tokens", json={"role": "operator", "centers": ["here"]},
                                   headers=auth(keys["admin"])).json()["token"]
    made["org-admin"] = TokenStore(store.engine).issue("", 0.0, role="org-admin", org="acme")  # no orgs declared here
    return client, made


def test_every_route_refuses_exactly_the_roles_that_may_not_call_it(roles):
    client, made = roles
    routes = [(m, r.path) for r in client.app.routes if isinstance(r, APIRoute) for m in sorted(r.methods)
              if (m, r.path) in NEEDS]
    assert len(routes) == len(NEEDS) - 4  # the whole API, not a sample (less the model gateway's four)
    cells = 0
    for method, path in routes:
        for role, token in made.items():
            r = client.request(method, url(path), headers=auth(token), content=b"" if method != "GET" else None)
            may = NEEDS[(method, path)] in MAY[role]
            if may:
                assert r.status_code != 403 or "may not" not in r.text, (role, method, path, r.text)
            else:
                assert r.status_code == 403, (role, method, path, r.status_code, r.text)
                assert f"{'an' if role[0] in 'ao' else 'a'} {role} token may not" in r.json()["detail"]
            cells += 1
    assert cells == 6 * len(routes) and len(MAY) == 6


def test_a_viewer_sees_the_tenants_jobs_and_a_billing_token_only_its_bills(roles):
    client, made = roles
    member, viewer, billing = auth(made["member"]), auth(made["viewer"]), auth(made["billing"])
    job = client.post("/v1/jobs", content=JOB, headers=member).json()["id"]
    assert client.get(f"/v1/jobs/{job}", headers=viewer).json()["id"] == job
    assert client.post(f"/v1/jobs/{job}/cancel", headers=viewer).status_code == 403
    assert client.post("/v1/jobs", content=JOB, headers=viewer).status_code == 403
    assert client.get(f"/v1/jobs/{job}", headers=billing).status_code == 403
    assert client.get("/v1/invoices/acme/2026-01", headers=billing).status_code == 200
    assert client.get("/v1/whoami", headers=billing).json()["tenant"] == "acme"
    listed = {t["role"] for t in client.get("/v1/tokens", headers=auth(made["admin"])).json()}
    assert listed == {"admin", "member", "viewer", "billing", "operator", "org-admin"}


def test_an_operator_sees_its_center_and_anonymised_jobs_but_no_tenant_spec_log_or_bill(roles):
    client, made = roles
    op, member, admin = auth(made["operator"]), auth(made["member"]), auth(made["admin"])
    job = client.post("/v1/jobs", content=JOB, headers=member).json()["id"]
    client.app.state.service.loop.step(__import__("time").time())  # placed at the center
    [here] = client.get("/v1/operator/centers", headers=op).json()
    assert here["name"] == "here" and here["pools"][0]["devices"] > 0
    text = str(here)
    assert job not in text and "acme" not in text and "sleep" not in text  # no id, tenant or command
    assert [j["ref"] for j in here["jobs"]] and all(j["ref"].startswith("r-") for j in here["jobs"])
    for path in (f"/v1/jobs/{job}", f"/v1/jobs/{job}/logs", "/v1/jobs", "/v1/invoices/acme/2026-01", "/v1/funds",
                 "/v1/centers", "/v1/overview"):
        r = client.get(path, headers=op)
        assert r.status_code == 403 and "an operator token may not" in r.json()["detail"], (path, r.text)
    assert client.get("/v1/operator/centers/elsewhere", headers=op).status_code in (403, 404)
    assert client.get("/v1/operator/centers/here", headers=member).status_code == 403
    r = client.post("/v1/operator/centers/here/drain", json={"pool": "gpu", "nodes": [99]}, headers=op)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "nodes"
    r = client.post("/v1/operator/centers/here/drain", json={"pool": "nope"}, headers=op)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pool"
    r = client.post("/v1/operator/centers/here/drain", json={"reason": "cooling maintenance"}, headers=op)
    assert r.status_code == 200 and r.json()["new"] == r.json()["drained"] > 0
    trail = client.get("/v1/audit", params={"action": "center.drain"}, headers=admin).json()
    assert trail[-1]["actor"] == "operator of here" and "cooling maintenance" in trail[-1]["detail"]
    for body in ({"role": "operator"}, {"role": "operator", "centers": ["mars"]},
                 {"tenant": "acme", "centers": ["here"]}):
        r = client.post("/v1/tokens", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "centers", (body, r.text)


def test_a_role_that_does_not_exist_or_an_admin_with_a_role_is_refused_naming_the_field(roles):
    client, made = roles
    admin = auth(made["admin"])
    for body in [{"tenant": "acme", "role": "owner"}, {"tenant": "acme", "role": ""},
                 {"tenant": "acme", "admin": True, "role": "viewer"}]:
        r = client.post("/v1/tokens", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role", (body, r.text)


def test_simulation_reports_behind_the_cookie_need_the_role_that_reads_them(api):  # noqa: F811
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from zhisuan.api.app import SESSION, TokenCookie
    from zhisuan.store import TokenStore

    client, keys, store, _ = api
    tokens = TokenStore(store.engine)
    reports = TestClient(Starlette(routes=[Mount("/sim-reports", TokenCookie(PlainTextResponse("a report"), tokens))]))
    billing = client.post("/v1/tokens", json={"tenant": "acme", "role": "billing"},
                          headers=auth(keys["admin"])).json()["token"]
    reports.cookies.set(SESSION, keys["acme"])
    assert reports.get("/sim-reports/r/index.html").text == "a report"
    reports.cookies.set(SESSION, billing)
    r = reports.get("/sim-reports/r/index.html")
    assert r.status_code == 403 and "a billing token may not" in r.json()["detail"]
    reports.cookies.set(SESSION, "zs_forged")
    assert reports.get("/sim-reports/r/index.html").status_code == 401
