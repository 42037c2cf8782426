"""The business pages in a real Chromium against a real server: a billing token sees its project's funds and
ledger (and nothing of the console), an organisation's admin adds and removes a member and sets a budget, a
center operator drains and brings back a pool; in Chinese, none of them has English left but names."""

import re

import httpx

from tests.web.test_dashboard import browser, server, shot  # noqa: F401 (fixtures)


def token(server, body):  # noqa: F811
    r = httpx.post(server.url + "/v1/tokens", json=body, headers={"Authorization": f"Bearer {server.token('admin')}"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def open_with(browser, server, key, tab, lang="en"):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server.url + "/")
    page.evaluate(f"localStorage.setItem('zhisuan.lang', '{lang}')")
    page.reload()
    page.fill("#token-input", key)
    page.click("#login-button")
    page.wait_for_selector(f"button[data-tab='{tab}'].active")
    return page


def visible_tabs(page):
    return [b.get_attribute("data-tab") for b in page.locator("#tabs button:visible").all()]


def english_left(texts, names):
    words = {w.rstrip(".-") for text in texts for w in re.findall(r"(?<![\w.@-])[A-Za-z][\w.@-]*", text)}
    ids = r"r-[0-9a-f]+|j-[0-9a-f]+|zs_\S+|[A-Z]?\d.*"
    return sorted(w for w in words if w not in names and not re.fullmatch(ids, w))


def test_billing_org_admin_and_operator_each_see_their_page(browser, server):  # noqa: F811
    admin = {"Authorization": f"Bearer {server.token('admin')}"}
    assert httpx.post(server.url + "/v1/funds/acme/topups", json={"amount_yuan": 1000, "memo": "wire 7"},
                      headers=admin).status_code == 201
    billing = open_with(browser, server, token(server, {"tenant": "acme", "role": "billing"}), "funds")
    assert visible_tabs(billing) == ["funds"]
    billing.wait_for_selector("#view-funds tr[data-project='acme']")
    assert "¥1,000.00" in billing.locator("#view-funds").inner_text()
    assert "top-up" in billing.locator("#ledger").inner_text() and "wire 7" in billing.locator("#ledger").inner_text()
    shot(billing, "20-billing-funds")

    org = open_with(browser, server, token(server, {"role": "org-admin", "org": "acme"}), "org")
    assert visible_tabs(org) == ["org"]
    sec = org.locator("section.org[data-org='acme']")
    sec.wait_for()
    sec.locator(".m-role").select_option("viewer")
    sec.locator(".m-person").fill("wang@acme.cn")
    sec.locator(".add").click()
    org.wait_for_selector("section.org[data-org='acme'] .result:has-text('zs_')")
    org.wait_for_selector("section.org[data-org='acme'] tr[data-member]:has-text('wang@acme.cn')")
    sec = org.locator("section.org[data-org='acme']")
    sec.locator(".b-yuan").fill("500")
    sec.locator(".budget").click()
    org.wait_for_selector("section.org[data-org='acme'] table.funds:has-text('¥500.00')")
    shot(org, "21-org-admin")
    org.locator("section.org[data-org='acme'] tr[data-member]:has-text('wang@acme.cn') button.remove").click()
    org.wait_for_selector("section.org[data-org='acme'] tr[data-member]:has-text('wang@acme.cn')", state="detached")

    operator = open_with(browser, server, token(server, {"role": "operator", "centers": ["shanghai"]}), "center")
    assert visible_tabs(operator) == ["center"]
    first = operator.locator("section.op[data-center='shanghai'] tr[data-pool]").first
    pool = first.get_attribute("data-pool")
    first.locator("button.drain").click()
    operator.wait_for_selector(f"tr[data-pool='{pool}'] td:has-text('drained from the dashboard')")
    shot(operator, "22-operator")
    operator.locator("section.op[data-center='shanghai'] button.undrain-all").click()
    operator.wait_for_selector(f"tr[data-pool='{pool}'] td:has-text('drained from the dashboard')", state="detached")
    assert "acme" not in operator.locator("#view-center").inner_text()  # jobs by reference, never by tenant

    texts = []
    zh = {"funds": ("资金", "资金"), "org": ("组织", "组织"), "center": ("中心", "您运维的中心")}
    for page, tab in ((billing, "funds"), (org, "org"), (operator, "center")):
        page.select_option("#lang-select", "zh-CN")
        page.wait_for_selector(f"button[data-tab='{tab}']:has-text('{zh[tab][0]}')")
        page.click(f"button[data-tab='{tab}']")
        page.wait_for_selector(f"#view-{tab} h2:has-text('{zh[tab][1]}')")
        texts.append(page.locator(f"#view-{tab}").inner_text())
    centers = httpx.get(server.url + "/v1/centers", headers=admin).json()
    names = {"acme", "lab", "wang@acme.cn", "wire", "CO2", "GMT"} | {c["name"] for c in centers} | {
        w for c in centers for p in c["pools"] for w in [p["name"], *p["accelerator"].replace("(", " ").split()]}
    assert not english_left(texts, names), english_left(texts, names)
