// Chinese for the sentences the server writes (wait reasons, history lines, failure reasons, where a start
// waits, the margin, alerts, error titles): each pattern's groups are kept (names, numbers, ids) and put into
// the Chinese sentence. A text the table does not know stays as the server wrote it.
const PHRASES_ZH = [
  [/^submitted$/, "已提交"],
  [/^placed on (\S+) \(score ([\d.]+)\)$/, "已放置到 $1（得分 $2）"],
  [/^started on (\S+)$/, "在 $1 开始运行"],
  [/^submitted to (\S+)$/, "已提交至 $1"],
  [/^exit 0$/, "正常结束（退出码 0）"],
  [/^exit (\d+)(?:: (.*))?$/, "退出码 $1"],
  [/^non-zero exit$/, "非零退出码"],
  [/^killed by (\w+)$/, "被信号 $1 终止"],
  [/^timeout after ([\d.]+) s$/, "超时（$1 秒）"],
  [/^process of node (\d+) ended without an exit code \(killed\)$/, "节点 $1 的进程被终止，无退出码"],
  [/^cancelled by (admin )?(\S+)$/, "由 $1$2 取消"],
  [/^no accepted pool has room for the gang now$/, "目前没有可用资源池能容纳整组作业"],
  [/^tenant quota of devices reached$/, "租户加速卡配额已满"],
  [/^beyond the backfill depth \((\d+) jobs after the first blocked\)$/, "超出回填深度（第一个受阻作业之后 $1 个）"],
  [/^reserved on (\S+) \(backfill goes around it\)$/, "已在 $1 预留（回填作业绕开它）"],
  [/^deferred to a cheaper tariff hour, within its deadline$/, "推迟到更便宜的电价时段（不误截止时间）"],
  [/^its deadline can no longer be met on any pool$/, "任何资源池都已无法在截止时间前完成"],
  [/^queued at (\S+): (.*)$/, "在 $1 排队：$2"],
  [/^preempted by (\S+) on (\S+)$/, "在 $2 被 $1 抢占"],
  [/^preempted by (\S+) before it started$/, "开始前被 $1 抢占"],
  [/^requeued after preemption \(attempt (\d+); checkpoints kept\)$/, "抢占后重新排队（第 $1 次尝试，检查点保留）"],
  [/^requeued: not submitted before a restart$/, "重新排队：重启前未提交"],
  [/^requeued after a restart \(it had been preempted\)$/, "重启后重新排队（此前已被抢占）"],
  [/^requeued elsewhere from scratch \(recovery: requeue\)$/, "在别处从头重新排队（恢复策略：requeue）"],
  [/^center (\S+) down: (.*)$/, "中心 $1 故障：$2"],
  [/^center (\S+) down before start$/, "中心 $1 在开始前故障"],
  [/^waiting for preempted (.*) to stop$/, "等待被抢占的 $1 停止"],
  [/^the engine could not start it: (.*)$/, "引擎无法启动：$1"],
  [/^withdrawn from (\S+)'s queue after (\d+) s \((.*)\)$/, "在 $1 的队列中等待 $2 秒后撤回（$3）"],
  [/^(\S+)'s own load: (.*)$/, "$1 自身负载：$2"],
  [/^zhisuan job (\S+)$/, "智算作业 $1"],
  [/^zhisuan jobs of other tenants$/, "其他租户的智算作业"],
  [/^reserved for this job \(it starts (now|in \S+)\): later jobs only backfill around it$/,
    (m, when) => `已为本作业预留（${zhWhen(when)}开始）：后续作业只能绕开它回填`],
  [/^reserved for zhisuan job (\S+) \(it starts (now|in \S+)\)$/, (m, job, when) => `已为智算作业 ${job} 预留（${zhWhen(when)}开始）`],
  [/^reserved for a job of another tenant \(it starts (now|in \S+)\)$/, (m, when) => `已为其他租户的作业预留（${zhWhen(when)}开始）`],
  [/^(\S+) is down: (.*)$/, "$1 故障：$2"],
  [/^(\S+): (\d+)% of measured allocated time idle today$/, "$1：今日实测分配时间中 $2% 空闲"],
  [/^tenant (\S+) holds (\d+) of its (\d+)-device quota$/, "租户 $1 占用 $2 张卡，配额 $3 张"],
  [/^(\S+) is the only pool that can run it$/, "只有 $1 能运行此作业"],
  [/^no pool can run it$/, "没有资源池能运行此作业"],
  [/^Invalid job spec$/, "作业描述无效"],
  [/^Invalid request$/, "请求无效"],
];

// The margin: "A over B by N points: w1 and w2; lost1; lost2"
const MARGIN_ZH = [
  [/^starts (\S+) sooner$/, (m, d) => `早 ${zhDuration(d)} 开始`],
  [/^cheaper by ¥([\d,.]+)$/, "便宜 ¥$1"],
  [/^cheaper per device-hour$/, "每卡时更便宜"],
  [/^greener by ([\d,.]+) kgCO2$/, "少排放 $1 kgCO2"],
  [/^greener per device-hour$/, "每卡时更低碳"],
  [/^holds the job's data$/, "数据就在本地"],
  [/^runs it faster \((\S+) vs (\S+)\)$/, (m, a, b) => `运行更快（${zhDuration(a)} 对 ${zhDuration(b)}）`],
  [/^fits its nodes better$/, "节点更匹配"],
  [/^(start time|price|carbon|data locality|node fit|speed) favoured (\S+) by (\d+) points but weighs less$/,
    (m, name, pool, pts) => `${t("score." + ({ "start time": "start", "data locality": "locality", "node fit": "fragmentation", speed: "throughput" }[name] || name))}更有利于 ${pool}（高 ${pts} 分），但权重较低`],
  [/^equal on every score; the first pool in the network's order wins the tie$/, "各项得分相同，按网络顺序取第一个"],
];

// The server's durations (`1h05m`, `0m59s`, `2d03h`, `now`) in Chinese units.
function zhDuration(text) {
  if (text === "now") return "立即";
  return text.replace(/(\d+)d/, "$1天").replace(/(\d+)h/, "$1小时").replace(/(\d+)m/, "$1分").replace(/(\d+)s/, "$1秒");
}

function zhWhen(text) {
  return text === "now" ? "立即" : `${zhDuration(text.replace(/^in /, ""))}后`;
}

function byTable(table, text) {
  for (const [re, zh] of table) {
    if (re.test(text)) return text.replace(re, zh);
  }
  return text;
}

// A server sentence in the chosen language (English: as written).
function tr(text) {
  if (LANG !== "zh-CN" || !text) return text;
  const margin = /^(\S+) over (\S+) by ([\d.]+) points: (.*)$/.exec(text);
  if (margin) {
    const [won, ...lost] = margin[4].split("; ");
    return `${margin[1]} 优于 ${margin[2]}（高 ${margin[3]} 分）：` +
      [won.split(" and ").map((w) => byTable(MARGIN_ZH, w)).join("，"), ...lost.map((l) => byTable(MARGIN_ZH, l))].join("；");
  }
  return text.split("; ").map((part) => byTable(PHRASES_ZH, part)).join("；");
}
