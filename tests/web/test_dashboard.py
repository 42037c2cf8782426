"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright-python) against a real
`zhisuan server`: log in, see the centers, submit a job and watch it succeed, switch language, and a tenant
that cannot see another tenant's job. Screenshots go to artifacts/screenshots/ (not committed)."""

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.control.test_services import script  # noqa: F401 (fixture)
from zhisuan.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: `make test` installs it (scripts/chromium-install.sh)")
        pytest.skip("no chromium (run `make test`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    tmp.chmod(0o711)  # jobs run under uids of their own: they pass through to their folders
    reports = tmp / "reports" / "philly-demo"
    reports.mkdir(parents=True)
    (reports / "index.html").write_text("<h1>a sim report</h1>")
    s = ServerProcess(ROOT / "examples" / "networks" / "toy3.yaml", f"sqlite:///{tmp / 'z.db'}", tmp / "runs",
                      interval=0.3, reports=tmp / "reports").start()
    yield s
    s.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_as(browser, server, tenant, lang="en"):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale=lang)
    page.goto(server.url + "/")
    page.evaluate(f"localStorage.setItem('zhisuan.lang', '{lang}')")
    page.reload()
    page.fill("#token-input", server.token(tenant))
    page.click("#login-button")
    page.wait_for_selector("#centers")
    return page


def test_login_centers_submit_and_watch_it_succeed(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server.url + "/")
    page.evaluate("localStorage.setItem('zhisuan.lang', 'en')")
    page.reload()
    page.fill("#token-input", "zs_wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-error:has-text('not valid')")
    shot(page, "01-login-refused")
    page.fill("#token-input", server.token("acme"))
    page.click("#login-button")
    page.wait_for_selector("#centers")
    for center in ("shanghai", "qingyang", "shaoguan"):
        assert page.locator(f"#centers tr[data-center='{center}']").count() >= 1
    assert page.locator("#map circle").count() == 3
    assert page.locator("#map path.province").count() >= 30  # a real map: the provinces' outlines
    assert page.locator("#kpis .kpi").count() == 7 and "P online" in page.locator("#kpis").inner_text()
    assert "No alerts" in page.locator("#alerts").inner_text()
    shot(page, "02-network")
    page.click("button[data-tab='jobs']")
    page.wait_for_selector("#spec-input")
    page.fill("#spec-input", "name: from-browser\ntenant: acme\nresources: {accelerators: a100:2}\n"
                             "run: echo browser job on $CUDA_VISIBLE_DEVICES\n")
    page.click("#submit-button")
    page.wait_for_selector("#submit-result:has-text('Submitted')")
    row = page.locator("#jobs-table tr", has_text="from-browser")
    row.wait_for()
    page.wait_for_selector("#jobs-table tr[data-state='succeeded']:has-text('from-browser')", timeout=30_000)
    row.locator("button.logs").click()
    page.wait_for_selector("pre.logs:has-text('browser job on')")
    shot(page, "03-job-succeeded")
    page.fill("#spec-input", "name: bad\ntenant: acme\nresources: {accelerators: A1000:1}\nrun: x\n")
    page.click("#submit-button")
    page.wait_for_selector("#submit-result.error:has-text('resources.accelerators.name')")
    page.click("button[data-tab='utilization']")
    page.wait_for_selector("#tenants")
    page.wait_for_selector("#util-charts .uplot canvas")  # drawn by the vendored chart library
    view = page.locator("#view-utilization").inner_text()
    assert "allocated %" in view and "times in Asia/Shanghai" in view and "¥ (total)" in view
    assert "GMT+8" in page.evaluate("when(0)")  # times carry their zone: the network's, not the browser's
    shot(page, "04-utilization")
    page.click("button[data-tab='reports']")
    page.wait_for_selector("#reports a:has-text('philly-demo')")
    shot(page, "05-reports")
    with page.context.expect_page() as opened:
        page.click("#reports a:has-text('philly-demo')")
    report = opened.value
    report.wait_for_load_state()
    assert "a sim report" in report.content()  # the session cookie the login set carries the token
    report.close()
    assert httpx.get(server.url + "/sim-reports/philly-demo/").status_code == 401  # not without it
    headers = httpx.get(server.url + "/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")


def test_switching_to_chinese_translates_labels_and_formats(browser, server):
    with server.client("acme") as c:  # a finished job of its own: the test does not lean on the ones before it
        job = c.post("/v1/jobs", content="name: zh-done\ntenant: acme\nresources: {accelerators: a100:1}\n"
                                         "run: 'true'\n").json()["id"]
        for _ in range(100):
            if c.get(f"/v1/jobs/{job}").json()["state"] == "succeeded":
                break
            time.sleep(0.2)
    page = open_as(browser, server, "acme")
    assert page.locator("button[data-tab='jobs']").inner_text() == "Jobs"
    page.select_option("#lang-select", "zh-CN")
    page.wait_for_selector("button[data-tab='jobs']:has-text('作业')")
    page.wait_for_selector("#centers th:has-text('芯片')")
    assert page.locator("h1").inner_text().strip() == "智算算力网络"  # the brand is not said twice
    assert "上海" in page.locator("#centers").inner_text()  # Chinese center names in zh-CN
    assert "华东" in page.locator("#centers").inner_text() and "在线算力" in page.locator("#kpis").inner_text()
    shot(page, "06-zh-CN-network")
    page.click("button[data-tab='jobs']")
    page.wait_for_selector("#jobs-table")
    assert "成功" in page.locator("#jobs-table").inner_text()
    assert "年" in page.locator("#jobs-table").inner_text()  # dates formatted for zh-CN
    shot(page, "07-zh-CN-jobs")


def test_a_tenant_does_not_see_another_tenants_job(browser, server):
    with server.client("acme") as c:
        c.post("/v1/jobs", content="name: acme-secret\ntenant: acme\nresources: {accelerators: a100:1}\nrun: 'true'\n")
    page = open_as(browser, server, "lab")
    page.click("button[data-tab='jobs']")
    page.wait_for_selector("#jobs-list")
    page.wait_for_timeout(500)
    assert "acme-secret" not in page.locator("#view-jobs").inner_text()
    assert "from-browser" not in page.locator("#view-jobs").inner_text()
    shot(page, "08-other-tenant")
    admin = open_as(browser, server, "admin")
    admin.click("button[data-tab='jobs']")
    admin.wait_for_selector("#jobs-table tr:has-text('acme-secret')")


def test_a_pending_job_shows_where_it_could_run_and_when(browser, server):
    big = "name: {}\ntenant: acme\nresources: {{accelerators: a100:8, nodes: 4}}\nrun: sleep 60\n"
    with server.client("acme") as c:
        first = c.post("/v1/jobs", content=big.format("big-1")).json()["id"]
        second = c.post("/v1/jobs", content=big.format("big-2")).json()["id"]
    try:
        page = open_as(browser, server, "acme")
        page.click("button[data-tab='jobs']")
        page.wait_for_selector(f"#jobs-table tr[data-job-id='{first}'][data-state='running']")
        page.click(f"#jobs-table tr[data-job-id='{second}'] button.why")
        page.wait_for_selector("#candidates")
        text = page.locator("#candidates").inner_text()
        assert "shanghai/a100" in text and "min" in text  # expected start: when big-1 ends
        assert "qingyang/a100" in text and "gang" in text.lower()  # too few nodes: rejected, with the reason
        assert "price" in text and "×3=" in text  # each score's part: normalised × weight = points
        assert "shanghai/a100 is the only pool" in page.locator("#margin").inner_text()
        shot(page, "09-pending-why")
    finally:  # a fresh connection: the one above sat idle while the browser worked
        with server.client("acme") as c:
            for job_id in (first, second):
                c.post(f"/v1/jobs/{job_id}/cancel")


def open_report(browser, path):
    """A report opened from disk, its charts drawn; the page and the script errors it raised."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector(".uplot canvas")
    return page, errors


def test_the_simulation_report_draws_its_charts_in_chromium(browser, tmp_path):
    """The sim report ships its chart library beside it: it opens from disk and draws every chart."""
    from typer.testing import CliRunner

    from zhisuan.cli.main import app

    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,devices,chip,tenant,home\n0,600,8,V100,a,x\n60,60,1,V100,b,y\n"
                     "120,30,2,V100,a,x\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["sim", "--trace", str(trace), "--policies", "fifo,sjf,las", "--mode", "network",
                                   "--out", str(tmp_path / "rep"), "--interval", "0"])
    assert res.exit_code == 0, res.output
    page, errors = open_report(browser, tmp_path / "rep" / "index.html")
    assert page.locator(".uplot").count() == 2 and not errors  # the JCT CDF and utilisation
    assert "network-sjf" in page.locator(".u-legend").first.inner_text()
    shot(page, "10-sim-report")



def test_the_chinese_console_has_no_untranslated_english(browser, server):
    """Every label and every sentence the server writes (reasons, history, where a start waits, the margin,
    alerts) reads in Chinese; only names (centers, pools, chips, engines, tenants, jobs) and units stay."""
    big = "name: {}\ntenant: acme\nresources: {{accelerators: a100:8, nodes: 4}}\nrun: sleep 60\n"
    with server.client("acme") as c:
        first = c.post("/v1/jobs", content=big.format("zh-big-1")).json()["id"]
        second = c.post("/v1/jobs", content=big.format("zh-big-2")).json()["id"]
        done = c.post("/v1/jobs", content="name: zh-done\ntenant: acme\nresources: {accelerators: a100:1}\n"
                                          "run: 'exit 3'\n").json()["id"]
        centers = c.get("/v1/centers").json()
        jobs = c.get("/v1/jobs?limit=1000").json()
    names = {"P", "FP16", "kgCO2", "CO2", "kg", "GMT", "Asia", "Shanghai", "acme", "lab", "NVML"}
    for ctr in centers:
        names |= {ctr["engine"]}  # a center is named in Chinese (上海), never shanghai, in the zh console
        for p in ctr["pools"]:
            names |= {p["name"], *p["accelerator"].replace("(", " ").replace(")", " ").split()}
    names |= {j["name"] for j in jobs} | {"zh-big-1", "zh-big-2", "zh-done"}
    try:
        page = open_as(browser, server, "acme", lang="zh-CN")
        texts = [page.locator("#view-network").inner_text()]
        page.click("button[data-tab='jobs']")
        page.wait_for_selector(f"#jobs-table tr[data-job-id='{done}'][data-state='failed']", timeout=30_000)
        page.wait_for_selector(f"#jobs-table tr[data-job-id='{first}'][data-state='running']", timeout=30_000)
        texts.append(page.locator("#jobs-table").inner_text())
        page.click(f"#jobs-table tr[data-job-id='{done}'] button.logs")
        page.wait_for_selector("#job-detail pre.note")
        texts.append(page.locator("#job-detail pre.note").inner_text())  # the history (the logs are the job's)
        page.click(f"#jobs-table tr[data-job-id='{second}'] button.why")
        page.wait_for_selector("#candidates")
        texts += [page.locator("#margin").inner_text(), page.locator("#candidates").inner_text()]
        page.click("button[data-tab='utilization']")
        page.wait_for_selector("#tenants")
        texts.append(page.locator("#view-utilization").inner_text())
        shot(page, "11-zh-CN-console")
    finally:
        with server.client("acme") as c:
            for job_id in (first, second):
                c.post(f"/v1/jobs/{job_id}/cancel")
    words = {w.rstrip(".-") for text in texts for w in re.findall(r"(?<![\w.-])[A-Za-z][\w.-]*", text)}
    leftovers = sorted(w for w in words if w not in names and not re.fullmatch(r"j-[0-9a-f]+|[A-Z]?\d.*", w))
    assert not leftovers, " ".join(leftovers)


def test_the_plan_report_draws_its_charts_in_chromium(browser, tmp_path):
    """`zhisuan plan`'s report opens from disk, names the verdict and draws the front, waits and utilisation."""
    from typer.testing import CliRunner

    from tests.builders import ROOT
    from zhisuan.cli.main import app

    res = CliRunner().invoke(app, ["plan", str(ROOT / "examples" / "plans" / "cn10-growth.yaml"), "--limit", "1000",
                                   "--workers", "1", "--out", str(tmp_path / "plan")])
    assert res.exit_code == 0, res.output
    page, errors = open_report(browser, tmp_path / "plan" / "index.html")
    assert page.locator(".uplot").count() == 3 and not errors
    assert "target" in page.locator("#verdict").inner_text()
    assert "x6" in page.locator(".u-legend").first.inner_text()
    shot(page, "11-plan-report")


def test_services_are_listed_with_replicas_per_center_load_and_cost(browser, server, script):  # noqa: F811
    spec = ("name: web-chat\ntenant: acme\nkind: service\nresources: {accelerators: 910B:1}\n"
            "service: {model: web-echo, replicas: {min: 1, max: 1}}\n"
            f"run: exec python3 {script} --port $PORT --model web-echo\n")
    with server.client("acme") as c:
        r = c.post("/v1/services", content=spec)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        try:
            end = time.time() + 60
            while time.time() < end and c.post("/v1/chat/completions", json={
                    "model": "web-echo", "messages": [{"role": "user", "content": "from the dashboard test"}]}
                    ).status_code != 200:
                time.sleep(0.3)
            broken = c.post("/v1/services", content=spec.replace("web-chat", "web-broken").replace(
                "web-echo", "web-broken").replace(f"exec python3 {script} --port $PORT --model web-broken", "exit 3"))
            bid = broken.json()["id"]
            while time.time() < end and not any(s["id"] == bid and s["failures"] >= 2
                                                for s in c.get("/v1/services").json()):
                time.sleep(0.3)
            page = open_as(browser, server, "acme")
            page.click("button[data-tab='services']")
            row = page.wait_for_selector(f"#services-table tr[data-service-id='{sid}']")
            text = row.inner_text()
            assert "web-echo" in text and "1 / 1" in text and "qingyang × 1" in text, text
            page.wait_for_selector(f"tr[data-service-id='{sid}'] td:last-child:has-text('¥')")  # this month's cost
            note = page.wait_for_selector(f"tr[data-service-id='{bid}'] .backoff").inner_text()
            assert "failed in a row" in note  # a command that cannot start: the back-off is shown
            c.delete(f"/v1/services/{bid}")
            shot(page, "12-services")
            lab = open_as(browser, server, "lab")
            lab.click("button[data-tab='services']")
            lab.wait_for_selector("#view-services p")
            assert "web-echo" not in lab.locator("#view-services").inner_text()  # another tenant's service
        finally:
            c.delete(f"/v1/services/{sid}")


def test_an_admin_searches_and_exports_the_audit_trail_and_a_viewer_only_looks(browser, server, tmp_path):
    import json

    with server.client("admin") as c:
        made = c.post("/v1/tokens", json={"tenant": "acme", "role": "viewer", "label": "auditor"}).json()
    page = open_as(browser, server, "admin")
    page.click("button[data-tab='audit']")
    row = page.wait_for_selector(f"#audit-table tr[data-action='token.create']:has-text('{made['id']}')")
    assert "127.0.0.1" in row.inner_text() and "admin admin" in row.inner_text()
    page.select_option("#audit-action", "sign-in")
    page.click("#audit-search")

    def actions():
        return set(re.findall(r'data-action="([^"]+)"', page.locator("#audit-list").inner_html()))

    end = time.time() + 10  # polled from here: the dashboard's CSP forbids the eval a page-side predicate needs
    while time.time() < end and actions() != {"sign-in"}:
        page.wait_for_timeout(100)
    assert actions() == {"sign-in"}
    with page.expect_download() as got:
        page.click("#audit-export")
    lines = Path(got.value.path()).read_text().splitlines()
    assert lines and all(json.loads(x)["action"] == "sign-in" for x in lines)
    shot(page, "13-audit")
    viewer = browser.new_page(viewport={"width": 1400, "height": 900})
    viewer.goto(server.url + "/")
    viewer.fill("#token-input", made["token"])
    viewer.click("#login-button")
    viewer.wait_for_selector("#centers")
    assert viewer.locator("button[data-tab='audit']").is_hidden()
    viewer.click("button[data-tab='jobs']")
    viewer.wait_for_selector("#read-only")
    assert viewer.locator("#submit-button").count() == 0 and viewer.locator("button.cancel").count() == 0
    tenant = open_as(browser, server, "acme", lang="zh-CN")
    assert tenant.locator("button[data-tab='audit']").is_hidden()
    admin_zh = open_as(browser, server, "admin", lang="zh-CN")
    assert admin_zh.locator("button[data-tab='audit']").inner_text() == "审计"
