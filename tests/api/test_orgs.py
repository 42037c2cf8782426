"""Organisations over the API: an organisation's admin adds people to its projects with roles (a person
twice with one role is refused), sets budgets (not top-ups), sees members and funds with burn rate and
forecast; never another organisation's. A network without `organisations:` keeps working: each tenant is
one of its own."""


import time

import pytest
from fastapi.testclient import TestClient

from tests.api.test_api import auth
from zhisuan.api import create_app
from zhisuan.control import ControlLoop
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.model import SpecError, parse_network
from zhisuan.store import JobStore, TokenStore, connect, migrate

NETWORK = """
name: orgs
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools: [{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 10}]
tenants: [{name: acme-train}, {name: acme-infer}, {name: lab}]
organisations:
  - {name: acme, name_zh: 阿克米, projects: [acme-train, acme-infer]}
"""


@pytest.fixture
def api(tmp_path):
    network = parse_network(NETWORK)
    engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
    migrate(engine)
    store, tokens = JobStore(engine), TokenStore(engine)
    loop = ControlLoop(store, network, LocalEngine(tmp_path / "runs", grace=0.5))
    client = TestClient(create_app(Service(store, network, loop), tokens))
    admin = tokens.issue("ops", 0.0, admin=True)
    org_admin = client.post("/v1/tokens", json={"role": "org-admin", "org": "acme", "label": "Li Wei"},
                            headers=auth(admin)).json()["token"]
    return client, auth(admin), auth(org_admin)


def test_an_org_admin_adds_people_sets_budgets_and_sees_only_its_organisation(api):
    client, admin, org = api
    assert [o["name"] for o in client.get("/v1/orgs", headers=admin).json()] == ["acme", "lab"]  # lab: its own
    [acme] = client.get("/v1/orgs", headers=org).json()
    assert acme["name_zh"] == "阿克米" and [p["name"] for p in acme["projects"]] == ["acme-train", "acme-infer"]
    r = client.post("/v1/orgs/acme/members", json={"project": "acme-train", "role": "member",
                                                    "person": "zhang@acme.cn"}, headers=org)
    assert r.status_code == 201 and r.json()["token"].startswith("zs_")
    person = auth(r.json()["token"])
    assert client.get("/v1/whoami", headers=person).json()["tenant"] == "acme-train"
    again = client.post("/v1/orgs/acme/members", json={"project": "acme-train", "role": "member",
                                                       "person": "zhang@acme.cn"}, headers=org)
    assert again.status_code == 409 and "already a member" in again.json()["detail"]
    for body, field in (({"project": "lab", "person": "x"}, "project"),
                        ({"project": "acme-train", "role": "owner", "person": "x"}, "role"),
                        ({"project": "acme-train", "person": " "}, "person")):
        r = client.post("/v1/orgs/acme/members", json=body, headers=org)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (body, r.text)
    assert client.get("/v1/orgs/lab", headers=org).status_code == 403
    assert client.post("/v1/orgs/lab/members", json={"project": "lab", "person": "x"}, headers=org).status_code == 403
    r = client.put("/v1/orgs/acme/projects/acme-infer/budget", json={"budget_yuan": 2000, "at_zero": "stop"},
                   headers=org)
    assert r.status_code == 200 and r.json()["budget_fen"] == 200_000 and r.json()["at_zero"] == "stop"
    assert client.put("/v1/orgs/acme/projects/lab/budget", json={"budget_yuan": 1}, headers=org).status_code == 422
    assert client.post("/v1/funds/acme-infer/topups", json={"amount_yuan": 5}, headers=org).status_code == 403
    page = client.get("/v1/orgs/acme", headers=org).json()
    infer = next(p for p in page["projects"] if p["name"] == "acme-infer")
    assert infer["funds"]["budget_fen"] == 200_000 and infer["funds"]["burn_fen_per_day"] == 0
    assert infer["funds"]["runs_out_at"] is None  # nothing burnt: no day it runs out
    train = next(p for p in page["projects"] if p["name"] == "acme-train")
    [member] = train["members"]
    assert member["person"] == "zhang@acme.cn" and member["role"] == "member"
    gone = client.delete(f"/v1/orgs/acme/members/{member['id']}", headers=org)
    assert gone.status_code == 200
    time.sleep(1.1)  # a token's answer is cached for at most a second
    assert client.get("/v1/whoami", headers=person).status_code == 401
    assert client.get("/v1/jobs", headers=org).status_code == 403  # an org admin reads no jobs
    trail = client.get("/v1/audit", params={"action": "token.create"}, headers=admin).json()
    assert any(e["actor"] == "org-admin of acme" and "zhang@acme.cn" in e["detail"] for e in trail)
    assert any(e["action"] == "funds.set" for e in client.get("/v1/audit", headers=admin).json())


def test_projects_name_tenants_and_belong_to_one_organisation():
    bad = NETWORK.replace("projects: [acme-train, acme-infer]", "projects: [acme-train, nope]")
    with pytest.raises(SpecError, match="'nope' is not a tenant"):
        parse_network(bad)
    twice = NETWORK + "  - {name: other, projects: [acme-train]}\n"
    with pytest.raises(SpecError, match="already a project of 'acme'"):
        parse_network(twice)
    assert parse_network(NETWORK).orgs() == {"acme": ["acme-train", "acme-infer"], "lab": ["lab"]}
    named_after = NETWORK.replace("{name: acme, name_zh: 阿克米,", "{name: lab, name_zh: 阿克米,")
    with pytest.raises(SpecError, match="'lab' is a tenant the organisation does not list"):
        parse_network(named_after)  # its admin would silently administer tenant lab too


def test_sso_settings_name_what_is_wrong():
    sso = ("sso: {{issuer: '{issuer}', client_id: d, groups: {{g: {grant}}}}}\n")
    ok = NETWORK + sso.format(issuer="https://idp.example.org", grant="{project: lab}")
    assert parse_network(ok).sso.groups["g"].project == "lab"
    for issuer, grant, field in (("http://idp.example.org", "{project: lab}", "sso.issuer"),
                                 ("https://idp.example.org", "{project: lab, centers: [here]}", "sso.groups.g"),
                                 ("https://idp.example.org", "{role: operator, org: acme}", "sso.groups.g"),
                                 ("https://idp.example.org", "{admin: true, project: lab}", "sso.groups.g"),
                                 ("https://idp.example.org", "{project: nope}", "sso.groups.g.project")):
        with pytest.raises(SpecError) as e:
            parse_network(NETWORK + sso.format(issuer=issuer, grant=grant))
        assert field in str(e.value), (issuer, grant, str(e.value))


def test_a_member_sees_the_projects_jobs_but_cancels_only_their_own(api):
    client, admin, org = api
    people = {}
    for person in ("zhang@acme.cn", "li@acme.cn"):
        r = client.post("/v1/orgs/acme/members", json={"project": "acme-train", "person": person}, headers=org)
        people[person] = auth(r.json()["token"])
    job = ("name: mine\ntenant: acme-train\nresources: {accelerators: a100:1}\nconstraints: {time_limit: 60}\n"
           "run: sleep 30\n")
    zhang, li = people["zhang@acme.cn"], people["li@acme.cn"]
    first = client.post("/v1/jobs", content=job, headers=zhang).json()["id"]
    assert client.get(f"/v1/jobs/{first}", headers=li).status_code == 200  # the project's jobs: seen
    r = client.post(f"/v1/jobs/{first}/cancel", headers=li)
    assert r.status_code == 403 and "cancel the jobs you submitted" in r.json()["detail"]
    assert client.get(f"/v1/jobs/{first}", headers=zhang).json()["state"] == "pending"  # nothing changed
    assert client.post(f"/v1/jobs/{first}/cancel", headers=zhang).json()["state"] == "cancelled"
    second = client.post("/v1/jobs", content=job, headers=li).json()["id"]
    assert client.post(f"/v1/jobs/{second}/cancel", headers=admin).json()["state"] == "cancelled"  # an admin may
