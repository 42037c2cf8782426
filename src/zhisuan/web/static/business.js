// The business pages: a project's funds (members, billing people, admins), an organisation's page (its admins:
// projects, members, budgets, burn rate and the day funds run out) and a center operator's page (pools, drained
// nodes, zhisuan's jobs by reference; drain and undrain). Everything comes from the REST API (app.js's api()).

const yuan = (fen) => (fen === null || fen === undefined ? "" : `¥${num(fen / 100, 2)}`);
const day = (epoch) => (epoch ? when(epoch).split(" ")[0] : t("funds.never"));

function fundsRows(rows) {
  return `<table class="funds">${th(["col.project", "col.balance", "col.held", "col.budget", "col.spent", "col.left",
    "col.used", "col.burn", "col.runsout", "col.state"], ["col.balance", "col.held", "col.budget", "col.spent",
    "col.left", "col.used", "col.burn"])}` + rows.map((f) => `<tr data-project="${esc(f.tenant)}">` +
    `<td>${esc(f.tenant)}</td><td class="num">${f.prepaid ? yuan(f.available_fen) : ""}</td>` +
    `<td class="num">${yuan(f.held_fen)}</td><td class="num">${yuan(f.budget_fen)}</td>` +
    `<td class="num">${yuan(f.spent_fen)}</td><td class="num">${yuan(f.remaining_fen)}</td>` +
    `<td class="num">${f.used_pct === null ? "" : num(f.used_pct, 0) + "%"}</td>` +
    `<td class="num">${yuan(f.burn_fen_per_day)}</td><td>${esc(day(f.runs_out_at))}</td>` +
    `<td>${esc(t(f.out_of_funds ? "funds.out" : "funds.ok"))}</td></tr>`).join("") + "</table>";
}

async function renderFunds() {
  const rows = await api("/v1/funds");
  let html = `<h2>${esc(t("funds.title"))}</h2>` + (rows.length ? fundsRows(rows) : `<p>${esc(t("funds.none"))}</p>`);
  const mine = rows.find((f) => ROLE !== "admin" && f.tenant);
  if (mine) {
    const legs = await api(`/v1/funds/${encodeURIComponent(mine.tenant)}/ledger?limit=50`);
    html += `<h3>${esc(t("funds.ledger"))}</h3><table id="ledger">` +
      th(["col.when", "col.kind", "col.account", "col.amount", "col.job", "col.memo"], ["col.amount"]) +
      legs.slice().reverse().map((x) => `<tr><td>${esc(when(x.at))}</td><td>${esc(t("kind." + x.kind))}</td>` +
        `<td>${esc(t("account." + x.account))}</td><td class="num">${yuan(x.fen)}</td><td>${esc(x.job_id || "")}</td>` +
        `<td>${esc(x.memo)}</td></tr>`).join("") + "</table>";
  }
  $("#view-funds").innerHTML = html;
}

async function renderOrg() {
  const orgs = await api("/v1/orgs");
  const view = $("#view-org");
  view.innerHTML = `<h2>${esc(t("org.title"))}</h2>` + orgs.map((o) => {
    const funds = o.projects.map((p) => p.funds).filter((f) => f);
    const members = o.projects.flatMap((p) => p.members);
    const options = o.projects.map((p) => `<option>${esc(p.name)}</option>`).join("");
    return `<section class="org" data-org="${esc(o.name)}"><h3>${esc(LANG === "zh-CN" && o.name_zh ? o.name_zh : o.name)}</h3>` +
      `<table class="projects">${th(["col.project", "col.quota", "col.members"], ["col.quota", "col.members"])}` +
      o.projects.map((p) => `<tr><td>${esc(p.name)}</td><td class="num">${p.quota_devices ?? "—"}</td>` +
        `<td class="num">${p.members.length}</td></tr>`).join("") + "</table>" +
      (funds.length ? fundsRows(funds) : `<p>${esc(t("funds.none"))}</p>`) +
      `<h4>${esc(t("org.members"))}</h4><table class="members">${th(["col.person", "col.project", "col.role", "col.since", ""])}` +
      members.map((m) => `<tr data-member="${esc(m.id)}"><td>${esc(m.person)}</td><td>${esc(m.project)}</td>` +
        `<td>${esc(t("roles." + m.role))}</td><td>${esc(when(m.created_at))}</td>` +
        `<td><button class="remove">${esc(t("org.remove"))}</button></td></tr>`).join("") + "</table>" +
      `<p><select class="m-project">${options}</select> <select class="m-role">` +
      ["member", "viewer", "billing"].map((r) => `<option value="${r}">${esc(t("roles." + r))}</option>`).join("") +
      `</select> <input class="m-person" size="24" placeholder="${esc(t("org.person"))}"> ` +
      `<button class="add">${esc(t("org.add"))}</button></p>` +
      `<p><select class="b-project">${options}</select> <input class="b-yuan" type="number" min="1" size="10" ` +
      `placeholder="${esc(t("org.budget"))}"> <button class="budget">${esc(t("org.setbudget"))}</button></p>` +
      `<p class="result"></p></section>`;
  }).join("");
  view.querySelectorAll("section.org").forEach((sec) => {
    const org = encodeURIComponent(sec.dataset.org);
    const said = (text, bad = false) => { const p = sec.querySelector(".result"); p.textContent = text; p.classList.toggle("error", bad); };
    const act = async (work) => { try { await work(); } catch (e) { said(e.message, true); } };
    sec.querySelector(".add").onclick = () => act(async () => {
      const made = await api(`/v1/orgs/${org}/members`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ project: sec.querySelector(".m-project").value, role: sec.querySelector(".m-role").value,
          person: sec.querySelector(".m-person").value.trim() }) });
      await renderOrg();
      $(`section.org[data-org="${CSS.escape(sec.dataset.org)}"] .result`).textContent = t("org.token", { token: made.token });
    });
    sec.querySelector(".budget").onclick = () => act(async () => {
      await api(`/v1/orgs/${org}/projects/${encodeURIComponent(sec.querySelector(".b-project").value)}/budget`, {
        method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ budget_yuan: parseFloat(sec.querySelector(".b-yuan").value) }) });
      await renderOrg();
    });
    sec.querySelectorAll("tr[data-member] button.remove").forEach((b) => {
      b.onclick = () => act(async () => {
        await api(`/v1/orgs/${org}/members/${b.closest("tr").dataset.member}`, { method: "DELETE" });
        await renderOrg();
      });
    });
  });
}

async function renderCenter() {
  const centers = await api("/v1/operator/centers");
  const view = $("#view-center");
  view.innerHTML = `<h2>${esc(t("center.title"))}</h2>` + centers.map((c) => `<section class="op" data-center="${esc(c.name)}">` +
    `<h3>${esc(c.name)} — ${esc(t(c.healthy ? "center.healthy" : "center.down"))}</h3>` +
    `<p>${esc(t("center.queue", { n: c.queue_depth }))} <button class="drain-all">${esc(t("center.out"))}</button> ` +
    `<button class="undrain-all">${esc(t("center.in"))}</button></p>` +
    `<table class="pools">${th(["col.pool", "col.chip", "col.nodes", "col.devices", "col.ours", "col.own", "col.drained", ""],
      ["col.nodes", "col.devices", "col.ours", "col.own"])}` + c.pools.map((p) => `<tr data-pool="${esc(p.name)}">` +
      `<td>${esc(p.name)}</td><td>${esc(p.accelerator)}</td><td class="num">${p.nodes}</td><td class="num">${p.devices}</td>` +
      `<td class="num">${p.zhisuan_devices}</td><td class="num">${p.own_load_devices}</td>` +
      `<td>${p.drained.map((d) => esc(`${d.node} (${d.reason})`)).join(", ")}</td>` +
      `<td><button class="drain">${esc(t("center.drain"))}</button> <button class="undrain">${esc(t("center.undrain"))}</button></td></tr>`).join("") +
    `</table><table class="refs">${th(["col.ref", "col.pool", "col.state", "col.devices", "col.since"], ["col.devices"])}` +
    c.jobs.map((j) => `<tr><td>${esc(j.ref)}</td><td>${esc(j.pool || "")}</td><td>${stateLabel(j.state)}</td>` +
      `<td class="num">${j.devices ?? ""}</td><td>${esc(when(j.since))}</td></tr>`).join("") + "</table></section>").join("");
  view.querySelectorAll("section.op").forEach((sec) => {
    const center = encodeURIComponent(sec.dataset.center);
    const send = (what, pool) => api(`/v1/operator/centers/${center}/${what}`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ pool, reason: t("center.reason") }) })
      .then(renderCenter);
    sec.querySelector(".drain-all").onclick = () => send("drain", null);
    sec.querySelector(".undrain-all").onclick = () => send("undrain", null);
    sec.querySelectorAll("tr[data-pool]").forEach((row) => {
      row.querySelector(".drain").onclick = () => send("drain", row.dataset.pool);
      row.querySelector(".undrain").onclick = () => send("undrain", row.dataset.pool);
    });
  });
}
