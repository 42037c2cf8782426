"""Chinese for what zhisuan says: the server's sentences (wait reasons, history lines, failure reasons, where a
start waits, the margin, alerts, error titles) and the CLI's labels. English is the source; `lang` is
"en" or "zh-CN" (from `--lang`, `LANG`, or a request's Accept-Language). A sentence the tables do not know
stays as written: names, numbers and ids inside known sentences are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from zhisuan.i18n.catalog import LABELS_ZH

Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]

SCORES_ZH = {"start time": "开始时间", "price": "价格", "carbon": "碳排放", "data locality": "数据本地性",
             "node fit": "节点匹配", "speed": "速度"}


def zh_duration(text: str) -> str:
    """`1h05m`, `0m59s`, `2d03h`, `now` (the server's durations) in Chinese units."""
    if text == "now":
        return "立即"
    for unit, zh in (("d", "天"), ("h", "小时"), ("m", "分"), ("s", "秒")):
        text = re.sub(rf"(\d+){unit}", rf"\g<1>{zh}", text)
    return text


def _when(text: str) -> str:
    return "立即" if text == "now" else f"{zh_duration(text.removeprefix('in '))}后"


def _rules(pairs: list[tuple[str, str | Callable[[re.Match[str]], str]]]) -> list[Rule]:
    return [(re.compile(f"^{p}$"), r) for p, r in pairs]


FIGURES_ZH = [("prepaid balance ", "预付余额 "), (", of which ", "，其中 "),
              (" held by its queued and running jobs: ", " 被排队和运行中的作业预占，"), (" free", " 可用"),
              ("monthly budget ", "月度预算 "), (": spent ", "：已用 "), (", held ", "，预占 "), (" left", " 剩余"),
              (" and ", "；"), (", running jobs ", "，运行中作业超出预占 "), (" beyond their holds", ""),
              (", ¥", "，¥")]


def _figures(text: str) -> str:
    """A project's funds as store/ledger.py words them (Account.figures), in Chinese."""
    for en, zh in FIGURES_ZH:
        text = text.replace(en, zh)
    return text


SENTENCES = _rules([
    (r"submitted", "已提交"),
    (r"placed on (\S+) \(score ([\d.]+)\)", r"已放置到 \1（得分 \2）"),
    (r"started on (\S+)", r"在 \1 开始运行"),
    (r"submitted to (\S+)", r"已提交至 \1"),
    (r"exit 0", "正常结束（退出码 0）"),
    (r"exit (\d+)(?:: .*)?", r"退出码 \1"),
    (r"non-zero exit", "非零退出码"),
    (r"killed by (\w+)", r"被信号 \1 终止"),
    (r"timeout after ([\d.]+) s", r"超时（\1 秒）"),
    (r"process of node (\d+) ended without an exit code \(killed\)", r"节点 \1 的进程被终止，无退出码"),
    (r"cancelled by (admin )?(\S+)", r"由 \1\2 取消"),
    (r"no accepted pool has room for the gang now", "目前没有可用资源池能容纳整组作业"),
    (r"tenant quota of devices reached", "租户加速卡配额已满"),
    (r"beyond the backfill depth \((\d+) jobs after the first blocked\)", r"超出回填深度（第一个受阻作业之后 \1 个）"),
    (r"reserved on (\S+) \(backfill goes around it\)", r"已在 \1 预留（回填作业绕开它）"),
    (r"deferred to a cheaper tariff hour, within its deadline", "推迟到更便宜的电价时段（不误截止时间）"),
    (r"its deadline can no longer be met on any pool", "任何资源池都已无法在截止时间前完成"),
    (r"queued at (\S+): (.*)", r"在 \1 排队：\2"),
    (r"preempted by (\S+) on (\S+)", r"在 \2 被 \1 抢占"),
    (r"preempted by (\S+) before it started", r"开始前被 \1 抢占"),
    (r"requeued after preemption \(attempt (\d+); checkpoints kept\)", r"抢占后重新排队（第 \1 次尝试，检查点保留）"),
    (r"requeued: not submitted before a restart", "重新排队：重启前未提交"),
    (r"requeued after a restart \(it had been preempted\)", "重启后重新排队（此前已被抢占）"),
    (r"requeued elsewhere from scratch \(on_center_loss: requeue\)", "在别处从头重新排队（中心失联策略：requeue）"),
    (r"center (\S+) down before it started: placed again", r"中心 \1 在开始前故障：重新调度"),
    (r"requeued: (\S+) did not take it \((.*)\)", r"重新排队：\1 未接收（\2）"),
    (r"requeued: (.*)", r"重新排队：\1"),
    (r"lost at (\S+): (.*)", r"在 \1 丢失：\2"),
    (r"center (\S+) down: (.*)", r"中心 \1 故障：\2"),
    (r"center (\S+) down before start", r"中心 \1 在开始前故障"),
    (r"waiting for preempted (.*) to stop", r"等待被抢占的 \1 停止"),
    (r"the engine could not start it: (.*)", r"引擎无法启动：\1"),
    (r"withdrawn from (\S+)'s queue after (\d+) s \((.*)\)", r"在 \1 的队列中等待 \2 秒后撤回（\3）"),
    (r"(\S+)'s own load: node (\d+) of (\S+) drained by its operator: (.*)",
     r"\1 自身负载：节点 \2（\3）已被中心运维排空：\4"),
    (r"(\S+)'s own load: (.*)", r"\1 自身负载：\2"),
    (r"held: project (\S+) is out of funds \((.*)\), a top-up or a larger budget releases its jobs",
     lambda m: f"暂停：项目 {m[1]} 资金不足（{_figures(m[2])}），充值或提高预算后恢复"),
    (r"funds: the job is expected to cost up to (\S+), and project (\S+) has (.*)",
     lambda m: f"资金不足：此作业预计最多花费 {m[1]}；项目 {m[2]} 的{_figures(m[3])}"),
    (r"zhisuan job (\S+)", r"智算作业 \1"),
    (r"zhisuan jobs of other tenants", "其他租户的智算作业"),
    (r"reserved for this job \(it starts (now|in \S+)\): later jobs only backfill around it",
     lambda m: f"已为本作业预留（{_when(m[1])}开始）：后续作业只能绕开它回填"),
    (r"reserved for zhisuan job (\S+) \(it starts (now|in \S+)\)",
     lambda m: f"已为智算作业 {m[1]} 预留（{_when(m[2])}开始）"),
    (r"reserved for a job of another tenant \(it starts (now|in \S+)\)",
     lambda m: f"已为其他租户的作业预留（{_when(m[1])}开始）"),
    (r"(\S+) is down: (.*)", r"\1 故障：\2"),
    (r"(\S+): (\d+)% of measured allocated time idle today", r"\1：今日实测分配时间中 \2% 空闲"),
    (r"tenant (\S+) holds ([\d.]+) of its (\d+)-device quota", r"租户 \1 占用 \2 张卡，配额 \3 张"),
    (r"project (\S+) is out of funds: its jobs are held", r"项目 \1 资金不足：其作业已暂停"),
    (r"project (\S+) has used (\d+)% of its funds", r"项目 \1 已用去资金的 \2%"),
    (r"(\S+) is the only pool that can run it", r"只有 \1 能运行此作业"),
    (r"no pool can run it", "没有资源池能运行此作业"),
    (r"Invalid job spec", "作业描述无效"),
    (r"Invalid request", "请求无效"),
    (r"Unauthorized", "未授权"),
    (r"Forbidden", "无权访问"),
    (r"Not found", "未找到"),
    (r"Conflict", "冲突"),
])

MARGIN = _rules([
    (r"starts (\S+) sooner", lambda m: f"早 {zh_duration(m[1])} 开始"),
    (r"cheaper by ¥([\d,.]+)", r"便宜 ¥\1"),
    (r"cheaper per device-hour", "每卡时更便宜"),
    (r"greener by ([\d,.]+) kgCO2", r"少排放 \1 kgCO2"),
    (r"greener per device-hour", "每卡时更低碳"),
    (r"holds the job's data", "数据就在本地"),
    (r"runs it faster \((\S+) vs (\S+)\)", lambda m: f"运行更快（{zh_duration(m[1])} 对 {zh_duration(m[2])}）"),
    (r"fits its nodes better", "节点更匹配"),
    (r"(start time|price|carbon|data locality|node fit|speed) favoured (\S+) by (\d+) points but weighs less",
     lambda m: f"{SCORES_ZH[m[1]]}更有利于 {m[2]}（高 {m[3]} 分），但权重较低"),
    (r"equal on every score; the first pool in the network's order wins the tie", "各项得分相同，按网络顺序取第一个"),
])
_MARGIN = re.compile(r"^(\S+) over (\S+) by ([\d.]+) points: (.*)$")


def _apply(rules: list[Rule], text: str) -> str:
    for pattern, out in rules:
        m = pattern.match(text)
        if m:
            return out(m) if callable(out) else m.expand(out)
    return text


def translate(text: str | None, lang: str, names: dict[str, str] | None = None) -> str | None:
    """A server sentence in `lang` (English: as written). Sentences joined by "; " are translated one by one;
    `names` (center -> its Chinese name) gives every center one name per language."""
    if not text or not lang.startswith("zh"):
        return text
    margin = _MARGIN.match(text)
    if margin:
        won, *lost = margin[4].split("; ")
        parts = ["，".join(_apply(MARGIN, w) for w in won.split(" and ")), *(_apply(MARGIN, x) for x in lost)]
        out = f"{margin[1]} 优于 {margin[2]}（高 {margin[3]} 分）：" + "；".join(parts)
    else:
        out = "；".join(_apply(SENTENCES, part) for part in text.split("; "))
    for name, zh in (names or {}).items():
        out = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", zh, out)
    return out


def lang_of(header: str | None) -> str:
    """`zh-CN` when an Accept-Language (or LANG) asks for Chinese first, else `en`."""
    first = (header or "").split(",")[0].strip().lower().replace("_", "-")
    return "zh-CN" if first.startswith("zh") else "en"


def environment_lang() -> str:
    return lang_of(os.environ.get("ZHISUAN_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG"))


def label(text: str, lang: str) -> str:
    """A CLI label or message template (English source) in `lang`; `{name}` fields are kept for format()."""
    return LABELS_ZH.get(text, text) if lang.startswith("zh") else text
