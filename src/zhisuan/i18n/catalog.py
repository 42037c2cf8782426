# ruff: noqa: E501 - a translation table: one entry a line reads best
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
    # explain
    "#": "#", "chips": "芯片", "runtime": "运行时长", "note": "说明", "← chosen": "← 选中", "total": "合计",
    "{job}: {gang} devices, {time} on the reference chip — network {network}":
        "{job}：{gang} 张卡，参考芯片上 {time} — 网络 {network}",
    "{job}: {gang}, no device, {time} — network {network}": "{job}：{gang}，不用加速卡，{time} — 网络 {network}",
    "{n} of {m} pools can run it.": "{m} 个资源池中 {n} 个可以运行。",
    "Score = weighted, normalised start time, price, carbon, data locality and fragmentation (100 = best).":
        "得分 = 开始时间、价格、碳排放、数据本地性与碎片化的归一化加权和（100 为最佳）。",
    "Runtime = time_limit ÷ speed factor (FP16 TFLOPS ratio to the requested chip: an approximation). ¥ and kgCO2 "
    "are those of the expected run window from now, hour by hour, as an invoice meters them: price × the center's "
    "time-of-use multiplier; TDP × PUE × the hour's grid intensity (a power model, upper bound).":
        "运行时长 = time_limit ÷ 速度系数（相对所请求芯片的 FP16 TFLOPS 比值，近似）。¥ 与 kgCO2 按从现在起的预计运行"
        "时段逐小时计算，与账单计量一致：价格 × 中心分时电价系数；TDP × PUE × 该小时电网碳强度（功率模型，上限）。",
    "ASSUMPTION in price or carbon inputs (see the network file's `assumptions`):":
        "ASSUMPTION（假设）：价格或碳排放输入含假设值（见网络文件的 `assumptions`）：",
    "what each score contributed (normalised 0–100 × weight ÷ Σweights = points)":
        "各项得分（归一化 0–100 × 权重 ÷ 权重和 = 分）",
    "start time": "开始时间", "price": "价格", "carbon": "碳排放", "data locality": "数据本地性",
    "node fit": "节点匹配", "speed": "速度",
    "stack": "芯片或软件栈", "fits-node": "单节点卡数", "fits-gang": "节点数（整组）", "cpus": "CPU", "memory": "内存",
    "price-cap": "价格上限", "healthy": "中心健康",
    "accelerator or software stack not accepted by the job": "作业不接受该加速卡或软件栈",
    "center not in the job's regions": "中心不在作业允许的区域内",
    "more devices per node than the pool's nodes have": "单节点所需卡数超过该资源池节点",
    "gang of more nodes than the pool has": "整组所需节点数超过该资源池",
    "more CPUs per node than the pool's nodes have": "单节点所需 CPU 超过该资源池节点",
    "more memory per node than the pool's nodes have": "单节点所需内存超过该资源池节点",
    "price per device-hour above the job's max_price": "每卡时价格高于作业的 max_price",
    "center unhealthy": "中心不健康",
    # network
    "network {name}: {centers} centers, {devices} devices, {pflops} P (FP16)":
        "网络 {name}：{centers} 个中心，{devices} 张卡，{pflops} P（FP16）",
    "PUE": "PUE", "kgCO2/kWh": "kgCO2/kWh", "nodes×dev": "节点×卡", "P": "P", "¥/dev-h": "元/卡时",
    "ASSUMPTION (the network file's `assumptions` say why)": "ASSUMPTION（假设；原因见网络文件的 `assumptions`）",
    # bill and report
    "invoice {tenant} {month} — price book {book}": "{tenant} {month} 账单 — 价目表 {book}", "(no usage)": "（无用量）",
    "alloc dev-h": "分配卡时", "CPU-h": "CPU 核时", "GiB-h": "内存 GiB 时", "busy dev-h": "忙碌卡时", "measured %": "实测占比 %", "kWh": "千瓦时",
    "kgCO2": "千克 CO2", "¥": "元",
    "ASSUMPTION in the inputs of some lines: {what} (see the network file)":
        "ASSUMPTION（假设）：部分条目的输入含假设值：{what}（见网络文件）",
    "busy = measured only (NVML, the job's own reports); 'unmeasured' is never a guess. Energy without a "
    "measurement is the TDP upper bound.": "忙碌只计实测（NVML、作业自报）；“未实测”从不估计。无实测的能耗按 TDP 上限计。",
    "wrote {a} and {b}": "已写入 {a} 与 {b}", "utilization": "利用率", "capacity dev-h": "容量卡时",
    "allocated %": "分配率 %", "busy %": "忙碌率 %", "idle while allocated %": "分配但空闲 %",
    "per tenant": "各租户", "allocated dev-h": "分配卡时", "measured dev-h": "实测卡时",
    "wrote {path} (with the chart library beside it)": "已写入 {path}（图表库在同一目录）",
    "zhisuan utilization": "智算利用率", "Utilization: allocated vs busy": "利用率：分配与忙碌",
    "busy counts measured time only (NVML, the jobs' own reports); price book {book}; times in Asia/Shanghai":
        "忙碌只计实测时间（NVML、作业自报）；价目表 {book}；时间为 Asia/Shanghai",
    "time (Asia/Shanghai)": "时间（Asia/Shanghai）", "% of capacity": "占容量 %", "busy % (measured)": "忙碌率 %（实测）",
    "unmeasured": "未实测",
    # sim
    "trace {name}: {n} jobs, cycle every {s} s": "轨迹 {name}：{n} 个作业，每 {s} 秒一个调度周期",
    "report: {path} (per-job CSVs and summary.csv beside it)": "报告：{path}（每个作业的 CSV 与 summary.csv 在同一目录）",
    "scenario": "场景", "policy": "策略", "finished": "完成数", "avg JCT h": "平均完成时间 h", "p50 JCT h": "p50 完成时间 h",
    "p99 JCT h": "p99 完成时间 h", "avg queue h": "平均排队 h", "p99 queue h": "p99 排队 h", "avg slowdown": "平均减速比",
    "p99 slowdown": "p99 减速比", "makespan d": "总时长 d", "preemptions": "抢占次数", "wall s": "耗时 s",
    "zhisuan simulation report": "智算仿真报告", "Policies": "策略", "Assumptions and notes": "假设与说明",
    "Job completion time": "作业完成时间", "Allocated utilisation over time": "分配利用率随时间变化", "By center": "按中心",
    "JCT CDF": "完成时间累积分布", "utilisation": "利用率", "job completion time (hours, log)": "作业完成时间（小时，对数）",
    "fraction of jobs": "作业占比", "days since the first submit": "自首次提交起的天数", "devices allocated (%)": "已分配卡 (%)",
    "run": "运行", "device-h": "卡时",
    "Slowdown = JCT / run time (1.0 = no wait). Busy % applies the trace's measured GPU-utilisation distribution to "
    "allocated time, where the trace has one. Energy: TDP x utilisation model x PUE (a power model); carbon: x the "
    "grid factor. Per-job results:": "减速比 = 完成时间 / 运行时间（1.0 表示无等待）。忙碌率将轨迹实测的 GPU 利用率分布应用于"
        "分配时间（如轨迹提供）。能耗：TDP × 利用率模型 × PUE（功率模型）；碳排放：再 × 电网因子。每个作业的结果：",
    # plan
    "option": "方案", "p95 wait h": "p95 等待 h", "mean wait h": "平均等待 h", "mean JCT h": "平均完成时间 h", "p95 JCT h": "p95 完成时间 h",
    "revenue M¥/y": "收入 百万¥/年", "electricity M¥/y": "电费 百万¥/年", "tCO2/y": "吨CO2/年", "capex M¥": "投资 百万¥",
    "payback y": "回收期 年", "NPV M¥": "净现值 百万¥", "IRR %": "内部收益率 %", "mark": "标记",
    "network p95 wait h": "全网 p95 等待 h", "simulating options × scenarios": "仿真 方案 × 场景",
    "plan {name}: {n} options × {s} scenarios": "规划 {name}：{n} 个方案 × {s} 个场景",
    "★ cost-vs-wait front; ✓/✗ target met; money = the option's difference from today's network":
        "★ 成本-等待前沿；✓/✗ 是否达到目标；金额 = 该方案相对现网的差额",
    "cheapest option meeting the target: {name}": "达到目标的最便宜方案：{name}",
    "no option meets the target": "没有方案达到目标", "no target given": "未设目标",
    "cheapest option meeting the target": "达到目标的最便宜方案",
    "{center} ({option}, {scenario}): joined {a:.1f}% allocated, alone {b:.1f}%":
        "{center}（{option}，{scenario}）：加入网络 分配率 {a:.1f}%，单独建设 {b:.1f}%",
    "report: {path} (plan.csv and join-vs-alone.csv beside it)": "报告：{path}（plan.csv 与 join-vs-alone.csv 在同一目录）",
    "zhisuan capacity plan": "智算容量规划", "Options": "方案", "options": "方案",
    "Join the network or build alone": "加入网络还是单独建设",
    "Where the money comes from, assumptions and notes": "金额来源、假设与说明",
    "cost vs p95 wait": "成本与 p95 等待", "p95 wait (h)": "p95 等待（小时）",
    "annual cost (M¥: capex/depreciation + opex + electricity, vs today)": "年成本（百万¥：投资/折旧年限 + 运维 + 电费，相对现网）",
    "p95 wait by option": "各方案 p95 等待", "option (numbered as in the table)": "方案（编号同表）",
    "allocated utilisation by option": "各方案分配利用率",
    "Waits and utilisation over the demand's arrival window; revenue (the price book, time-of-use applied) and "
    "electricity (allocated devices at their draw, idle ones at 30% of TDP, × PUE, each hour at the zone's "
    "time-of-use multiplier) annualised from it. Capex, payback, "
    "NPV and IRR are the option's difference from today's network at the same demand. ★: on the front (no other "
    "option at that scenario costs less and waits less); ✓/✗: meets the target.":
        "等待与利用率按需求的到达时段计；收入（价目表，含分时电价系数）与电费（已分配卡按其功耗、空闲卡按 TDP 的 30%，× PUE，"
        "每小时按所在电价区的分时系数）由此折算为每年。投资、回收期、净现值与内部收益率为该方案相对现网在同一需求下的差额。★：在前沿上（该场景下没有"
        "其他方案更便宜且等待更短）；✓/✗：是否达到目标。",
    # regions
    "east": "华东", "west": "西部", "north": "华北", "south": "华南", "central": "华中", "northeast": "东北",
    "northwest": "西北", "southwest": "西南",
}
