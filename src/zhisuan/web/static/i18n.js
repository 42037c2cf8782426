// Every label of the dashboard in English and Simplified Chinese; numbers and dates use Intl for the locale.
const MESSAGES = {
  "en": {
    "title": "zhisuan compute network", "language": "Language", "logout": "Log out",
    "tab.network": "Network", "tab.jobs": "Jobs", "tab.utilization": "Utilization", "tab.reports": "Simulation reports",
    "login.title": "Log in with your token", "login.button": "Log in", "login.sso": "Sign in with single sign-on",
    "login.help": "Tokens are in runs/tokens.json on the server (one per tenant, and an admin token).",
    "login.bad": "This token is not valid.", "who": "Tenant: {tenant}",
    "network.title": "Centers of the network", "network.map": "Where the centers are",
    "col.center": "Center", "col.region": "Region", "col.engine": "Engine", "col.health": "Health", "col.pool": "Pool",
    "col.chip": "Chip", "col.devices": "Devices", "col.free": "Free now", "col.pflops": "Capacity (P)",
    "col.price": "¥ / device-hour", "col.queue": "Queue", "health.ok": "up", "health.down": "down",
    "col.next_free": "Next free device", "unmeasured": "unmeasured", "unit.min": "{n} min", "unit.in_min": "+{n} min", "col.time": "Time",
    "filter.stack": "chip or stack", "filter.region": "region", "filter.fits-node": "fits-node", "filter.fits-gang": "fits-gang",
    "filter.cpus": "CPUs", "filter.memory": "memory", "filter.price-cap": "price cap", "filter.healthy": "healthy",
    "kpi.pflops": "P online", "kpi.allocated": "Allocated", "kpi.busy": "Busy (measured)", "kpi.queue": "Queue",
    "kpi.jobs_per_hour": "Jobs ended / h", "kpi.cny_today": "Billed today", "kpi.kg_today": "CO2 today",
    "alert.center-down": "Center down", "alert.idle-while-allocated": "Idle while allocated",
    "alert.over-quota": "Quota reached", "alert.none": "No alerts",
    "map.flow": "{jobs} running job(s) with data in {from} run in {to}",
    "map.center": "{name}: {pflops} P, {occ}% occupied, {queue} queued",
    "map.legend": "Circle size: capacity in P; colour: occupancy (green < 50%, amber < 85%, red); red ring: down; arcs: jobs running away from their data.",
    "region.east": "east", "region.west": "west", "region.north": "north", "region.south": "south",
    "region.central": "central", "region.northeast": "northeast", "region.northwest": "northwest", "region.southwest": "southwest",
    "network.total": "{centers} centers, {devices} devices, {pflops} P (FP16)",
    "jobs.title": "Jobs", "jobs.submit": "Submit a job", "jobs.submit.button": "Submit", "jobs.submitted": "Submitted {id}",
    "col.id": "ID", "col.name": "Name", "col.tenant": "Tenant", "col.state": "State", "col.where": "Where",
    "col.submitted": "Submitted", "col.exit": "Exit", "col.actions": "Actions", "col.why": "Reason",
    "jobs.logs": "Logs", "jobs.cancel": "Cancel", "jobs.why": "Why here?", "jobs.none": "No jobs yet.",
    "tab.services": "Services", "services.title": "Model services", "services.none": "No services yet.",
    "services.state.active": "active", "services.state.stopped": "stopped", "col.model": "Model",
    "services.backoff": "{n} replicas failed in a row; next try in {s} s",
    "col.replicas": "Replicas ready", "col.inflight": "In flight", "col.tokens": "Tokens", "col.cost_month": "¥ this month",
    "jobs.candidates": "Where {id} could run (best first)", "col.start": "Expected start", "col.cny": "¥ / job",
    "col.kg": "kgCO2", "col.score": "Score", "col.rejected": "Rejected by", "col.waits": "Start waits for", "col.parts": "Score parts (0–100 × weight = points)",
    "score.start": "start", "score.price": "price", "score.carbon": "carbon", "score.locality": "locality",
    "score.fragmentation": "node fit", "score.throughput": "speed", "now": "now", "never": "not possible",
    "state.pending": "pending", "state.scheduled": "scheduled", "state.running": "running", "state.staging": "staging",
    "jobs.staging": "{from} → {to}: {done} of {total} MB at {rate} MB/s",
    "state.succeeded": "succeeded", "state.failed": "failed", "state.cancelled": "cancelled", "state.preempted": "preempted",
    "util.title": "Allocated vs busy", "util.bucket": "Hourly over the last 24 h, times in {tz}",
    "util.time": "time ({tz})", "col.cny_total": "¥ (total)",
    "util.note": "Busy counts measured time only (NVML, jobs' own reports); unmeasured time is not guessed.",
    "util.allocated": "allocated %", "util.busy": "busy % (measured)", "util.tenants": "Energy, carbon and cost per tenant",
    "col.alloc_h": "Allocated device-h", "col.busy_h": "Busy device-h", "col.kwh": "kWh", "col.idle": "Idle while allocated %",
    "col.measured": "Measured %", "unmeasured": "unmeasured",
    "reports.title": "Simulation reports", "reports.none": "No reports yet: run `zhisuan sim --out report/NAME`.",
    "col.report": "Report", "col.modified": "Written",
    "tab.audit": "Audit", "audit.title": "Audit trail", "audit.actor": "who", "audit.action": "action",
    "audit.any": "any", "audit.since": "last hours", "audit.search": "Search", "audit.export": "Export (JSON lines)",
    "audit.none": "Nothing recorded for this search.", "col.when": "When", "col.actor": "Who", "col.origin": "From",
    "col.action": "Action", "col.subject": "On", "col.detail": "Detail",
    "action.sign-in": "sign-in", "action.token.create": "token created", "action.token.revoke": "token revoked",
    "action.center-token.create": "center token created", "action.center-token.revoke": "center token revoked",
    "action.job.pending": "job submitted", "action.job.cancelled": "job cancelled",
    "login.billing": "This token reads invoices only (zhisuan bill); the console shows jobs and centers.",
    "role.viewer": "viewer: sees, changes nothing",
  },
  "zh-CN": {
    "title": "智算算力网络", "language": "语言", "logout": "退出",
    "tab.network": "网络", "tab.jobs": "作业", "tab.utilization": "利用率", "tab.reports": "仿真报告",
    "login.title": "使用令牌登录", "login.button": "登录", "login.sso": "单点登录",
    "login.help": "令牌保存在服务器的 runs/tokens.json 中（每个租户一个，另有管理员令牌）。",
    "login.bad": "令牌无效。", "who": "租户：{tenant}",
    "network.title": "网络中的算力中心", "network.map": "算力中心分布",
    "col.center": "中心", "col.region": "区域", "col.engine": "引擎", "col.health": "状态", "col.pool": "资源池",
    "col.chip": "芯片", "col.devices": "设备数", "col.free": "当前空闲", "col.pflops": "算力 (P)",
    "col.price": "元 / 卡时", "col.queue": "排队", "health.ok": "正常", "health.down": "故障",
    "col.next_free": "最早空闲卡", "unmeasured": "未实测", "unit.min": "{n} 分钟", "unit.in_min": "{n} 分钟后", "col.time": "时间",
    "filter.stack": "芯片或软件栈不符", "filter.region": "区域不符", "filter.fits-node": "单节点卡数不足", "filter.fits-gang": "节点数不足（整组）",
    "filter.cpus": "CPU 不足", "filter.memory": "内存不足", "filter.price-cap": "超出价格上限", "filter.healthy": "中心故障",
    "kpi.pflops": "在线算力", "kpi.allocated": "分配率", "kpi.busy": "忙碌率（实测）", "kpi.queue": "排队作业",
    "kpi.jobs_per_hour": "每小时完成作业", "kpi.cny_today": "今日计费", "kpi.kg_today": "今日碳排放",
    "alert.center-down": "中心故障", "alert.idle-while-allocated": "分配但空闲",
    "alert.over-quota": "配额已满", "alert.none": "无告警",
    "map.flow": "{jobs} 个运行中作业的数据在{from}，在{to}运行",
    "map.center": "{name}：{pflops} P，占用 {occ}%，排队 {queue}",
    "map.legend": "圆圈大小：算力（P）；颜色：占用率（绿 < 50%，黄 < 85%，红）；红圈：故障；弧线：作业在数据所在地之外运行。",
    "region.east": "华东", "region.west": "西部", "region.north": "华北", "region.south": "华南",
    "region.central": "华中", "region.northeast": "东北", "region.northwest": "西北", "region.southwest": "西南",
    "network.total": "{centers} 个中心，{devices} 张加速卡，{pflops} P（FP16）",
    "jobs.title": "作业", "jobs.submit": "提交作业", "jobs.submit.button": "提交", "jobs.submitted": "已提交 {id}",
    "col.id": "编号", "col.name": "名称", "col.tenant": "租户", "col.state": "状态", "col.where": "运行位置",
    "col.submitted": "提交时间", "col.exit": "退出码", "col.actions": "操作", "col.why": "原因",
    "jobs.logs": "日志", "jobs.cancel": "取消", "jobs.why": "为何在此？", "jobs.none": "暂无作业。",
    "tab.services": "模型服务", "services.title": "模型服务", "services.none": "暂无服务。",
    "services.state.active": "运行中", "services.state.stopped": "已停止", "col.model": "模型",
    "services.backoff": "连续 {n} 个副本失败；{s} 秒后重试",
    "col.replicas": "就绪副本", "col.inflight": "处理中请求", "col.tokens": "令牌数", "col.cost_month": "本月费用（¥）",
    "jobs.candidates": "{id} 可运行的位置（由优到劣）", "col.start": "预计开始", "col.cny": "元 / 作业",
    "col.kg": "千克 CO2", "col.score": "得分", "col.rejected": "排除原因", "col.waits": "需等待", "col.parts": "各项得分（0–100 × 权重 = 分）",
    "score.start": "开始时间", "score.price": "价格", "score.carbon": "碳排放", "score.locality": "数据本地性",
    "score.fragmentation": "节点匹配", "score.throughput": "速度", "now": "立即", "never": "不可行",
    "state.pending": "排队中", "state.scheduled": "已调度", "state.running": "运行中", "state.staging": "数据准备中",
    "jobs.staging": "{from} → {to}：{done} / {total} MB，{rate} MB/s",
    "state.succeeded": "成功", "state.failed": "失败", "state.cancelled": "已取消", "state.preempted": "被抢占",
    "util.title": "分配与实际使用", "util.bucket": "最近 24 小时，按小时，时间为 {tz}",
    "util.time": "时间（{tz}）", "col.cny_total": "元（合计）",
    "util.note": "“忙碌”只计实测时间（NVML、作业自报）；未实测的时间不做估计。",
    "util.allocated": "分配率 %", "util.busy": "忙碌率 %（实测）", "util.tenants": "各租户的能耗、碳排放与费用",
    "col.alloc_h": "分配卡时", "col.busy_h": "忙碌卡时", "col.kwh": "千瓦时", "col.idle": "分配但空闲 %",
    "col.measured": "实测比例 %", "unmeasured": "未实测",
    "reports.title": "仿真报告", "reports.none": "暂无报告：运行 `zhisuan sim --out report/名称`。",
    "col.report": "报告", "col.modified": "生成时间",
    "tab.audit": "审计", "audit.title": "审计记录", "audit.actor": "操作者", "audit.action": "操作",
    "audit.any": "全部", "audit.since": "最近小时数", "audit.search": "查询", "audit.export": "导出（JSON 行）",
    "audit.none": "此查询没有记录。", "col.when": "时间", "col.actor": "操作者", "col.origin": "来源地址",
    "col.action": "操作", "col.subject": "对象", "col.detail": "详情",
    "action.sign-in": "登录", "action.token.create": "创建令牌", "action.token.revoke": "吊销令牌",
    "action.center-token.create": "创建中心令牌", "action.center-token.revoke": "吊销中心令牌",
    "action.job.pending": "提交作业", "action.job.cancelled": "取消作业",
    "login.billing": "此令牌只能查看账单（zhisuan bill）；控制台显示作业和中心。",
    "role.viewer": "只读：可查看，不可更改",
  },
};

let LANG = localStorage.getItem("zhisuan.lang") || (navigator.language.startsWith("zh") ? "zh-CN" : "en");

function t(key, vars = {}) {
  const text = (MESSAGES[LANG] && MESSAGES[LANG][key]) || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));
}

function num(value, digits = 0) {
  return new Intl.NumberFormat(LANG, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
}

let TZ = "Asia/Shanghai";  // the network's `control.timezone`, from /v1/whoami at login

function when(epochSeconds) {
  // dateStyle cannot be combined with timeZoneName: the fields are spelled out
  return new Intl.DateTimeFormat(LANG, { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", second: "2-digit", timeZone: TZ, timeZoneName: "short" }).format(new Date(epochSeconds * 1000));
}

function setLang(lang) {
  LANG = lang;
  localStorage.setItem("zhisuan.lang", lang);
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  const brand = document.querySelector("h1 small");  // 智算 beside an English title only: the Chinese one says it
  if (brand) brand.hidden = lang === "zh-CN";
}
