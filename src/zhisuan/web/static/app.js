// The dashboard: log in with a tenant token, then network, jobs, utilization and simulation reports.
// Everything shown comes from the REST API; the token stays in this browser's localStorage.
const EXAMPLE = "name: hello\ntenant: TENANT\nresources: {accelerators: a100:1}\nconstraints: {time_limit: 10m}\n" +
  "run: echo hello from $CUDA_VISIBLE_DEVICES; sleep 2; echo done\n";
let TOKEN = localStorage.getItem("zhisuan.token");
let TENANT = null;
let ROLE = "member";  // member, viewer, billing, operator, org-admin or admin (control/roles.py)
let TAB = "network";
const CONSOLE = ["network", "jobs", "services", "utilization", "reports"];
const TABS = {  // what each role's token sees (control/roles.py decides; the pages follow)
  admin: [...CONSOLE, "funds", "org", "center", "audit"], member: [...CONSOLE, "funds"], viewer: CONSOLE,
  billing: ["funds"], "org-admin": ["org"], operator: ["center"],
};
let timer = null;

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${TOKEN}`, "Accept-Language": LANG } });
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const fields = (body.errors || []).map((e) => `${e.field}: ${e.message}`).join("\n");
    throw new Error(`${r.status} ${body.title || ""}\n${fields || body.detail || body}`);
  }
  return body;
}

const $ = (sel) => document.querySelector(sel);
let CENTER_ZH = {};  // center -> its Chinese name: one name per center per language
const place = (center, pool) => `${(LANG === "zh-CN" && CENTER_ZH[center]) || center}/${pool}`;
const stateLabel = (s) => `<span class="state-${s}">${esc(t("state." + s))}</span>`;
const th = (keys, num = []) => "<tr>" + keys.map((k) => `<th class="${num.includes(k) ? "num" : ""}">${esc(t(k))}</th>`).join("") + "</tr>";

async function login(token) {
  TOKEN = token;
  try {
    const who = await api("/v1/whoami");
    ROLE = who.role || (who.admin ? "admin" : "member");
    TENANT = who.admin ? `${who.tenant} (admin)` : ROLE === "member" ? who.tenant : `${who.tenant || who.org || (who.centers || []).join(", ")} (${t("roles." + ROLE)})`;
    TZ = who.timezone || TZ;
    if (!TABS[ROLE]) throw new Error(ROLE);
    if (TABS[ROLE].includes("network")) CENTER_ZH = Object.fromEntries((await api("/v1/centers")).map((c) => [c.name, c.name_zh]));
    await api("/v1/session", { method: "POST" });  // a cookie for the simulation reports a new tab opens
  } catch (e) {
    TOKEN = null;
    localStorage.removeItem("zhisuan.token");
    $("#login-error").textContent = t("login.bad");
    return;
  }
  localStorage.setItem("zhisuan.token", token);
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#logout").hidden = false;
  document.querySelectorAll("#tabs button").forEach((b) => { b.hidden = !TABS[ROLE].includes(b.dataset.tab); });
  show(TABS[ROLE].includes(TAB) ? TAB : TABS[ROLE][0]);
}

function logout() {
  localStorage.removeItem("zhisuan.token");
  fetch("/v1/session", { method: "DELETE" }).finally(() => location.reload());
}

function show(tab) {
  TAB = tab;
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${tab}`; });
  $("#who").textContent = TENANT ? t("who", { tenant: TENANT }) : "";
  clearInterval(timer);
  const render = { network: renderNetwork, jobs: renderJobs, services: renderServices, utilization: renderUtilization,
    reports: renderReports, audit: renderAudit, funds: renderFunds, org: renderOrg, center: renderCenter }[tab];
  render();
  if (["jobs", "network", "services"].includes(tab)) timer = setInterval(render, 1500);
}

async function renderNetwork() {
  const [centers, view, shapes] = await Promise.all([api("/v1/centers"), api("/v1/overview"), loadProvinces()]);
  const devices = centers.reduce((n, c) => n + c.pools.reduce((m, p) => m + p.devices, 0), 0);
  const pflops = centers.reduce((n, c) => n + c.pflops, 0);
  const live = Object.fromEntries(view.centers.map((c) => [c.name, c]));
  const wait = (s) => (s === null ? t("never") : s <= 0 ? t("now") : t("unit.min", { n: num(s / 60, 0) }));
  const rows = centers.flatMap((c) => c.pools.map((p, i) => `<tr data-center="${esc(c.name)}">` +
    (i === 0 ? `<td rowspan="${c.pools.length}">${esc(c.name_zh && LANG === "zh-CN" ? c.name_zh : c.name)}</td>` +
      `<td rowspan="${c.pools.length}">${esc(t("region." + c.region))}</td><td rowspan="${c.pools.length}">${esc(c.engine)}</td>` +
      `<td rowspan="${c.pools.length}" class="${c.healthy ? "ok" : "down"}">${esc(t(c.healthy ? "health.ok" : "health.down"))}</td>` +
      `<td rowspan="${c.pools.length}" class="num">${num(live[c.name]?.queue ?? 0)}</td>` +
      `<td rowspan="${c.pools.length}">${esc(wait(live[c.name]?.next_free_s ?? null))}</td>` : "") +
    `<td>${esc(p.name)}</td><td>${esc(p.accelerator)}</td><td class="num">${num(p.devices)}</td>` +
    `<td class="num">${num(p.free)}</td><td class="num">${num(p.pflops, 2)}</td>` +
    `<td class="num">${num(p.price_per_device_hour, 2)}</td></tr>`)).join("");
  const k = view.kpis;
  const tiles = [["kpi.pflops", `${num(k.pflops_online, 1)} / ${num(k.pflops_total, 1)} P`],
    ["kpi.allocated", `${num(k.allocated_pct, 1)} %`], ["kpi.busy", k.busy_pct === null ? t("unmeasured") : `${num(k.busy_pct, 1)} %`],
    ["kpi.queue", num(k.queue)], ["kpi.jobs_per_hour", num(k.jobs_per_hour)], ["kpi.cny_today", `¥${num(k.cny_today, 2)}`],
    ["kpi.kg_today", `${num(k.kg_co2_today, 2)} kg`]];
  const alerts = view.alerts.map((a) => `<li class="alert ${esc(a.kind)}">${esc(t("alert." + a.kind))}: ${esc(a.message)}</li>`).join("");
  $("#view-network").innerHTML = `<h2>${esc(t("network.title"))}</h2>` +
    `<div id="kpis">${tiles.map(([key, value]) => `<div class="kpi" data-kpi="${key}"><span>${esc(t(key))}</span><b>${esc(value)}</b></div>`).join("")}</div>` +
    `<ul id="alerts">${alerts || `<li class="quiet">${esc(t("alert.none"))}</li>`}</ul>` +
    `<p>${esc(t("network.total", { centers: num(centers.length), devices: num(devices), pflops: num(pflops, 1) }))}</p>` +
    `<div class="row"><table id="centers">${th(["col.center", "col.region", "col.engine", "col.health", "col.queue", "col.next_free", "col.pool",
      "col.chip", "col.devices", "col.free", "col.pflops", "col.price"], ["col.queue", "col.devices", "col.free", "col.pflops", "col.price"])}${rows}</table>` +
    `<div><h3>${esc(t("network.map"))}</h3>${mapSvg(shapes, view.centers, view.flows)}<p class="note">${esc(t("map.legend"))}</p></div></div>`;
}

async function renderJobs() {
  const view = $("#view-jobs");
  if (!view.dataset.ready) {
    const submit = ROLE === "viewer" ? `<p class="note" id="read-only">${esc(t("role.viewer"))}</p>` :
      `<h2>${esc(t("jobs.submit"))}</h2><textarea id="spec-input"></textarea><br>` +
      `<button id="submit-button">${esc(t("jobs.submit.button"))}</button><p id="submit-result"></p>`;
    view.innerHTML = submit + `<h2>${esc(t("jobs.title"))}</h2><div id="jobs-list"></div><div id="job-detail"></div>`;
    if (ROLE !== "viewer") {
      $("#spec-input").value = EXAMPLE.replace("TENANT", TENANT.endsWith("(admin)") ? "acme" : TENANT);
      $("#submit-button").onclick = submitJob;
    }
    view.dataset.ready = "1";
  }
  const jobs = await api("/v1/jobs");
  if (!jobs.length) {
    $("#jobs-list").innerHTML = `<p>${esc(t("jobs.none"))}</p>`;
    return;
  }
  // a job staging its inputs: what moves, how far along, how fast (one request per staging job)
  const moves = Object.fromEntries(await Promise.all(jobs.filter((j) => j.state === "staging")
    .map(async (j) => [j.id, await api(`/v1/jobs/${j.id}/transfers`)])));
  const rows = jobs.map((j) => `<tr data-job-id="${esc(j.id)}" data-state="${esc(j.state)}">` +
    `<td>${esc(j.id)}</td><td>${esc(j.name)}</td><td>${esc(j.tenant)}</td><td>${stateLabel(j.state)}</td>` +
    `<td>${j.center ? esc(place(j.center, j.pool)) : ""}</td><td>${esc(when(j.submitted_at))}</td>` +
    `<td class="num">${j.exit_code ?? ""}</td><td>` +
    `<button class="logs" data-id="${esc(j.id)}">${esc(t("jobs.logs"))}</button> ` +
    (j.state === "pending" ? `<button class="why" data-id="${esc(j.id)}">${esc(t("jobs.why"))}</button> ` : "") +
    (ROLE !== "viewer" && ["pending", "scheduled", "staging", "running"].includes(j.state) ? `<button class="cancel" data-id="${esc(j.id)}">${esc(t("jobs.cancel"))}</button>` : "") +
    `</td><td>${esc(waitText(j, moves[j.id]))}</td></tr>`).join("");
  $("#jobs-list").innerHTML = `<table id="jobs-table">${th(["col.id", "col.name", "col.tenant", "col.state", "col.where",
    "col.submitted", "col.exit", "col.actions", "col.why"], ["col.exit"])}${rows}</table>`;
  document.querySelectorAll("button.logs").forEach((b) => { b.onclick = () => showLogs(b.dataset.id); });
  document.querySelectorAll("button.why").forEach((b) => { b.onclick = () => showWhy(b.dataset.id); });
  document.querySelectorAll("button.cancel").forEach((b) => { b.onclick = () => api(`/v1/jobs/${b.dataset.id}/cancel`, { method: "POST" }).then(renderJobs); });
}

// Model services: replicas per center, load (requests in flight, tokens served) and this month's cost.
async function renderServices() {
  const view = $("#view-services");
  const services = await api("/v1/services");
  if (!services.length) {
    view.innerHTML = `<h2>${esc(t("services.title"))}</h2><p>${esc(t("services.none"))}</p>`;
    return;
  }
  const rows = services.map((s) => {
    const centers = {};
    s.ready.forEach((r) => { centers[r.center] = (centers[r.center] || 0) + 1; });
    const where = Object.entries(centers).map(([c, n]) => `${(LANG === "zh-CN" && CENTER_ZH[c]) || c} × ${n}`).join(", ");
    return `<tr data-service-id="${esc(s.id)}"><td>${esc(s.model)}</td><td>${esc(s.name)}</td><td>${esc(s.tenant)}</td>` +
      `<td>${esc(t("services.state." + s.state))}${backoff(s)}</td><td class="num">${s.ready.length} / ${s.desired}</td>` +
      `<td>${esc(where)}</td><td class="num">${s.inflight}</td><td class="num">${num(s.tokens)}</td>` +
      `<td class="num">${s.cny_month === null ? "" : "¥" + num(s.cny_month, 2)}</td></tr>`;
  }).join("");
  view.innerHTML = `<h2>${esc(t("services.title"))}</h2><table id="services-table">${th(["col.model", "col.name",
    "col.tenant", "col.state", "col.replicas", "col.where", "col.inflight", "col.tokens", "col.cost_month"],
  ["col.replicas", "col.inflight", "col.tokens", "col.cost_month"])}${rows}</table>`;
}

function backoff(s) {
  const left = s.retry_at ? Math.round(s.retry_at - Date.now() / 1000) : 0;
  return left > 0 ? `<br><span class="note backoff">${esc(t("services.backoff", { n: s.failures, s: left }))}</span>` : "";
}

function waitText(j, moves) {
  if (moves && moves.length) {
    return moves.map((m) => t("jobs.staging", { from: m.source, to: m.target, done: num(m.bytes_done / 1e6, 1),
      total: num(m.bytes_total / 1e6, 1), rate: num(m.rate / 1e6, 1) })).join("; ");
  }
  if (!["pending", "scheduled"].includes(j.state) || !j.wait_reason) return j.reason || "";
  return j.wait_reason + (j.expected_start ? ` (${t("col.start")}: ${when(j.expected_start)})` : "");
}

async function submitJob() {
  try {
    const job = await api("/v1/jobs", { method: "POST", body: $("#spec-input").value, headers: { "Content-Type": "application/yaml" } });
    $("#submit-result").className = "";
    $("#submit-result").textContent = t("jobs.submitted", { id: job.id });
    renderJobs();
  } catch (e) {
    $("#submit-result").className = "error";
    $("#submit-result").textContent = e.message;
  }
}

async function showLogs(id) {
  const [job, text] = await Promise.all([api(`/v1/jobs/${id}`), api(`/v1/jobs/${id}/logs`)]);
  const history = job.history.map((h) => `${when(h.at)}  ${t("state." + h.state)}  ${h.why}`).join("\n");
  $("#job-detail").innerHTML = `<h3>${esc(t("jobs.logs"))}: ${esc(id)}</h3><pre class="note">${esc(history)}</pre>` +
    `<pre class="logs" id="logs-${esc(id)}">${esc(text)}</pre>`;
}

async function showWhy(id) {
  const res = await api(`/v1/jobs/${id}/candidates`);
  const rows = res.candidates.map((c) => `<tr><td>${esc(place(c.center, c.pool))}</td>` +
    `<td>${c.expected_start_s === null ? esc(t("never")) : c.expected_start_s === 0 ? esc(t("now")) : esc(t("unit.in_min", { n: num(c.expected_start_s / 60, 0) }))}</td>` +
    `<td class="num">${num(c.cny, 2)}</td><td class="num">${num(c.kg_co2, 3)}</td>` +
    `<td class="num">${c.score === null ? "" : num(c.score, 1)}</td><td>${esc(c.rejected_by.map((f) => t("filter." + f)).join(LANG === "zh-CN" ? "、" : ", "))}</td>` +
    `<td class="parts">${esc((c.parts || []).map((p) => `${t("score." + p.score)} ${num(p.normalised, 0)}×${num(p.weight, 0)}=${num(p.contribution, 1)}`).join(", "))}</td>` +
    `<td>${esc((c.waits_for || []).join(LANG === "zh-CN" ? "；" : "; "))}</td></tr>`).join("");
  $("#job-detail").innerHTML = `<h3>${esc(t("jobs.candidates", { id }))}</h3>` +
    `<p class="note" id="margin">${esc(res.margin || "")}</p><table id="candidates">` +
    th(["col.where", "col.start", "col.cny", "col.kg", "col.score", "col.rejected", "col.parts", "col.waits"],
      ["col.cny", "col.kg", "col.score"]) + rows + "</table>";
}

async function renderUtilization() {
  const rep = await api("/v1/reports/utilization?bucket=3600");
  const keys = [...new Set(rep.rows.map((r) => `${r.center}|${r.chip}`))];
  const tenants = Object.entries(rep.tenants).map(([name, v]) => `<tr><td>${esc(name)}</td>` +
    ["allocated_device_hours", "busy_device_hours", "kwh", "kg_co2", "cny"].map((f) => `<td class="num">${num(v[f], 3)}</td>`).join("") + "</tr>").join("");
  $("#view-utilization").innerHTML = `<h2>${esc(t("util.title"))}</h2><p class="note">${esc(t("util.bucket", { tz: TZ }))}. ${esc(t("util.note"))}</p>` +
    `<div class="row" id="util-charts">${keys.map((k, i) => `<div class="chart" id="util-chart-${i}"></div>`).join("")}</div>` +
    `<h2>${esc(t("util.tenants"))}</h2><table id="tenants">` +
    th(["col.tenant", "col.alloc_h", "col.busy_h", "col.kwh", "col.kg", "col.cny_total"], ["col.alloc_h", "col.busy_h", "col.kwh", "col.kg", "col.cny_total"]) +
    tenants + "</table>";
  keys.forEach((k, i) => {
    const rows = rep.rows.filter((r) => `${r.center}|${r.chip}` === k);
    const series = [[t("util.allocated"), rows.map((r) => r.allocated_pct)]];
    if (rows.some((r) => r.busy_pct !== null)) series.push([t("util.busy"), rows.map((r) => r.busy_pct)]);
    const [center, chip] = k.split("|");
    timeChart($(`#util-chart-${i}`), `${(LANG === "zh-CN" && CENTER_ZH[center]) || center} — ${chip}`,
      rows.map((r) => r.bucket_start), series);
  });
}

// The audit trail (admin tokens): who did what, from where; searched by who, action and age, exported as JSON lines.
const ACTIONS = ["sign-in", "token.create", "token.revoke", "center-token.create", "center-token.revoke", "job.pending",
  "job.cancelled"];

function auditQuery(format) {
  const q = new URLSearchParams({ limit: format === "jsonl" ? "10000" : "1000", format });  // an export: all it may
  const actor = $("#audit-actor").value.trim();
  const action = $("#audit-action").value;
  const hours = parseFloat($("#audit-since").value);
  if (actor) q.set("actor", actor);
  if (action) q.set("action", action);
  if (hours > 0) q.set("since", String(Date.now() / 1000 - hours * 3600));
  return `/v1/audit?${q}`;
}

async function renderAudit() {
  const view = $("#view-audit");
  if (!view.dataset.ready || view.dataset.lang !== LANG) {
    view.innerHTML = `<h2>${esc(t("audit.title"))}</h2><p>` +
      `<label>${esc(t("audit.actor"))} <input id="audit-actor" size="16"></label> ` +
      `<label>${esc(t("audit.action"))} <select id="audit-action"><option value="">${esc(t("audit.any"))}</option>` +
      ACTIONS.map((a) => `<option value="${a}">${esc(t("action." + a))}</option>`).join("") + "</select></label> " +
      `<label>${esc(t("audit.since"))} <input id="audit-since" type="number" min="0" size="5" value="24"></label> ` +
      `<button id="audit-search">${esc(t("audit.search"))}</button> <button id="audit-export">${esc(t("audit.export"))}</button>` +
      `</p><div id="audit-list"></div>`;
    $("#audit-search").onclick = renderAudit;
    $("#audit-export").onclick = async () => {
      const r = await fetch(auditQuery("jsonl"), { headers: { Authorization: `Bearer ${TOKEN}` } });
      if (!r.ok) {  // a problem is not an export
        $("#audit-list").textContent = `${r.status} ${(await r.json()).detail || ""}`;
        return;
      }
      const lines = await r.text();  // JSON lines, one event each: not one JSON document
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([lines], { type: "application/x-ndjson" }));
      a.download = "audit.jsonl";
      a.click();
    };
    view.dataset.ready = "1";
    view.dataset.lang = LANG;
  }
  const events = await api(auditQuery("json"));
  $("#audit-list").innerHTML = events.length ? `<table id="audit-table">` +
    th(["col.when", "col.actor", "col.origin", "col.action", "col.subject", "col.detail"]) + events.slice().reverse().map((e) =>
      `<tr data-action="${esc(e.action)}"><td>${esc(when(e.at))}</td><td>${esc(e.actor)}</td><td>${esc(e.origin)}</td>` +
      `<td>${esc(MESSAGES.en["action." + e.action] ? t("action." + e.action) : e.action)}</td>` +
      `<td>${esc(e.subject)}</td><td>${esc(e.detail)}</td></tr>`).join("") + "</table>"
    : `<p>${esc(t("audit.none"))}</p>`;
}

async function renderReports() {
  const reports = await api("/v1/sim-reports");
  $("#view-reports").innerHTML = `<h2>${esc(t("reports.title"))}</h2>` + (reports.length
    ? `<table id="reports">${th(["col.report", "col.modified"])}` + reports.map((r) =>
      `<tr><td><a href="/sim-reports/${esc(r.path)}" target="_blank">${esc(r.name)}</a></td><td>${esc(when(r.modified))}</td></tr>`).join("") + "</table>"
    : `<p>${esc(t("reports.none"))}</p>`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#lang-select").value = LANG;
  setLang(LANG);
  $("#lang-select").onchange = (e) => {
    setLang(e.target.value);
    $("#view-jobs").dataset.ready = "";
    if (TOKEN && TENANT) show(TAB);
  };
  $("#login-button").onclick = () => login($("#token-input").value.trim());
  $("#token-input").onkeydown = (e) => { if (e.key === "Enter") login($("#token-input").value.trim()); };
  $("#logout").onclick = logout;
  document.querySelectorAll("#tabs button").forEach((b) => { b.onclick = () => show(b.dataset.tab); });
  // back from single sign-on: the session token (or why not) comes in the fragment, removed from the URL at once
  // (taken only by the page that started the sign-in: it left a secret here and gets it back in the URL)
  const back = new URLSearchParams(location.hash.slice(1));
  const bind = new URLSearchParams(location.search).get("sso-bind");
  const ours = bind && bind === sessionStorage.getItem("zhisuan.sso-bind");
  if (back.has("sso") || back.has("sso-error") || bind) history.replaceState(null, "", location.pathname);
  sessionStorage.removeItem("zhisuan.sso-bind");
  if (back.get("sso-error")) $("#login-error").textContent = back.get("sso-error");
  if (back.get("sso") && !ours) $("#login-error").textContent = t("login.sso-foreign");
  fetch("/v1/sso").then((r) => r.json()).then((c) => { $("#sso").hidden = !c.enabled; }).catch(() => {});
  $("#sso-button").onclick = () => {
    const secret = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("zhisuan.sso-bind", secret);
    location.href = `/v1/sso/login?bind=${secret}`;
  };
  if (back.get("sso") && ours) login(back.get("sso"));
  else if (TOKEN) login(TOKEN);
});
