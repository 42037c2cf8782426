"""The CLI's labels in Chinese, keyed by their English (gettext's convention: the source text is the key)."""

LABELS_ZH: dict[str, str] = {
    # job states
    "pending": "等待中", "scheduled": "已调度", "running": "运行中", "succeeded": "成功", "failed": "失败",
    "cancelled": "已取消", "preempted": "被抢占",
    # jobs
    "jobs": "作业", "jobs waiting or running (--all for every job)": "等待或运行中的作业（--all 显示全部）",
    "id": "编号", "name": "名称", "tenant": "租户", "state": "状态", "where": "位置", "devices": "加速卡",
    "age": "已过时间", "exit": "退出码", "why waiting / expected start": "等待原因 / 预计开始",
    "showing the newest {n}; --limit shows more": "显示最新的 {n} 个；用 --limit 查看更多",
    "{reason} (start in {when})": "{reason}（{when}后开始）",
    # show
    "job {id}": "作业 {id}", "field": "字段", "value": "值", "job": "作业", "waiting": "等待",
    "not yet considered by a cycle": "尚未经过调度周期", "expected start": "预计开始", "attempts": "尝试次数",
    "ended": "结束", "history": "历史", "at": "时间", "why": "原因",
    "{id} ({name}) of {tenant}, priority {priority}": "{id}（{name}），租户 {tenant}，优先级 {priority}",
    "{where} nodes {nodes} devices {devices}": "{where}，节点 {nodes}，加速卡 {devices}",
    # quote and centers
    "quote for {job}": "{job} 的报价", "center": "中心", "pool": "资源池", "start": "开始",
    "¥/job": "元/作业", "score": "得分", "rejected by": "排除原因", "start waits for": "需等待",
    "never": "不可行", "now": "立即",
    "what each score contributed (normalised 0–100 × weight → points)": "各项得分（归一化 0–100 × 权重 → 分）",
    "why: {margin}": "原因：{margin}",
    "centers": "算力中心", "region": "区域", "engine": "引擎", "health": "状态", "chip": "芯片", "nodes": "节点",
    "free": "空闲", "ok": "正常", "DOWN": "故障", "{name} is down:": "{name} 故障：",
    # submit, cancel, login
    "submitted {id} ({name}): {state}": "已提交 {id}（{name}）：{state}",
    "{id}: {state}": "{id}：{state}", "{id}: {state} on {where}": "{id}：{state}，位于 {where}",
    "logged in to {url} as {tenant}; saved in {folder}": "已登录 {url}，身份 {tenant}；保存在 {folder}",
    "error:": "错误：",
}
