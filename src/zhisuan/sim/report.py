"""Write a replay's results: a CSV of per-job results per run and one HTML report with plots."""

from __future__ import annotations

import csv
from html import escape
from pathlib import Path

import numpy as np

from zhisuan.charts import Chart, write_assets
from zhisuan.i18n import label
from zhisuan.sim.engine import SimResult
from zhisuan.sim.metrics import Summary, jct_cdf, per_center, summarize, utilization_series

COLUMNS = ["job", "tenant", "home", "devices", "submit_s", "first_start_s", "end_s", "jct_s", "queue_s",
           "run_s", "center", "pool", "chip", "preemptions", "restarts", "speed_basis"]


def run_name(r: SimResult) -> str:
    return f"{r.scenario.name}-{r.policy}" + ("-pred" if r.estimates == "predicted" else "")


def write_jobs_csv(r: SimResult, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for j in r.jobs:
            pool = r.scenario.pools[j.pool] if j.pool >= 0 else None
            w.writerow([j.trace.id, j.trace.tenant, j.trace.home or "", j.trace.devices, f"{j.trace.submit:.0f}",
                        f"{j.first_start:.0f}", f"{j.end:.0f}", f"{j.end - j.trace.submit:.0f}",
                        f"{j.first_start - j.trace.submit:.0f}", f"{j.run_seconds:.0f}",
                        pool.center if pool else "", pool.name if pool else "", pool.chip.name if pool else "",
                        j.preemptions, j.restarts, "measured" if j.measured_speed else "FP16 TFLOPS ratio (approx.)"])


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def summary_rows(s: Summary) -> list[str]:
    busy = "—" if s.busy_util is None else f"{100 * s.busy_util:.1f}"
    return [s.scenario, s.policy, f"{s.finished:,}/{s.jobs:,}", _h(s.avg_jct), _h(s.p50_jct), _h(s.p99_jct),
            _h(s.avg_queue), _h(s.p99_queue), f"{s.avg_slowdown:.2f}", f"{s.p99_slowdown:.1f}",
            f"{s.makespan / 86400:.1f}", f"{100 * s.allocated_util:.1f}", busy, f"{s.cny:,.0f}",
            f"{s.kwh:,.0f}", f"{s.kg_co2:,.0f}", str(s.preemptions), f"{s.wall_seconds:.1f}"]


HEADERS = ["scenario", "policy", "finished", "avg JCT h", "p50 JCT h", "p99 JCT h", "avg queue h", "p99 queue h",
           "avg slowdown", "p99 slowdown", "makespan d", "allocated %", "busy %", "¥", "kWh", "kgCO2",
           "preemptions", "wall s"]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


TITLE = "zhisuan simulation report"
EXPLAINED = ("Slowdown = JCT / run time (1.0 = no wait). Busy % applies the trace's measured GPU-utilisation "
             "distribution to allocated time, where the trace has one. Energy: TDP x utilisation model x PUE (a power "
             "model); carbon: x the grid factor. Per-job results:")


def write_report(results: list[SimResult], out: Path, notes: list[str], lang: str = "en") -> Path:
    """out/index.html (in `lang`), out/summary.csv and out/jobs-<scenario>-<policy>.csv (machine-read: English)."""

    def L(text: str) -> str:
        return label(text, lang)

    out.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(r) for r in results]
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows(summary_rows(s) for s in summaries)
    for r in results:
        write_jobs_csv(r, out / f"jobs-{run_name(r)}.csv")
    sections, charts = [], []
    for k, scenario in enumerate(dict.fromkeys(r.scenario.name for r in results)):
        runs = [r for r in results if r.scenario.name == scenario]
        x, series = aligned([(run_name(r), *jct_cdf(r)) for r in runs], log=True)
        charts.append(Chart(f"cdf-{k}", f"{L('JCT CDF')}, {scenario}", L("job completion time (hours, log)"),
                            L("fraction of jobs"), x, series, log_x=True, y_max=1.0))
        x, series = aligned([(run_name(r), u[0], 100 * u[1]) for r in runs for u in [utilization_series(r)]])
        charts.append(Chart(f"util-{k}", f"{L('utilisation')}, {scenario}", L("days since the first submit"),
                            L("devices allocated (%)"), x, series, y_max=100.0))
        cdf, util = charts[-2].div(), charts[-1].div()
        by = [(r, c) for r in runs for c in per_center(r)]
        held = any(c.cpu_hours or c.memory_gib_hours for _, c in by)  # CPU-h, GiB-h billed: columns if any
        centers = _table([L(h) for h in ["run", "center", "devices", "allocated %", "device-h",
                                         *(["CPU-h", "GiB-h"] if held else []), "¥", "kWh", "kgCO2"]],
                         [[run_name(r), c.center, str(c.devices), f"{100 * c.allocated_util:.1f}",
                           f"{c.device_hours:,.0f}", *([f"{c.cpu_hours:,.0f}", f"{c.memory_gib_hours:,.0f}"] if held
                                                       else []),
                           f"{c.cny:,.0f}", f"{c.kwh:,.0f}", f"{c.kg_co2:,.0f}"] for r, c in by])
        sections.append(f"<h2>{escape(scenario)}</h2><h3>{L('Job completion time')}</h3>{cdf}"
                        f"<h3>{L('Allocated utilisation over time')}</h3>{util}<h3>{L('By center')}</h3>{centers}")
    note_items = "".join(f"<li>{escape(n)}</li>" for n in dict.fromkeys(notes))
    head = write_assets(out, charts)
    html = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L(TITLE)}</title>{head}
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}</style></head><body>
<h1>{L(TITLE)}</h1>
<h2>{L('Policies')}</h2>{_table([L(h) for h in HEADERS], [summary_rows(s) for s in summaries])}
<p>{escape(L(EXPLAINED))} <code>jobs-*.csv</code>.</p>
<h2>{L('Assumptions and notes')}</h2><ul>{note_items}</ul>
{"".join(sections)}
</body></html>"""
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def aligned(curves: list[tuple[str, np.ndarray, np.ndarray]], log: bool = False,
            points: int = 240) -> tuple[list[float], list[tuple[str, list[float | None]]]]:
    """Curves with their own x resampled onto one shared x (what a chart library plots): `points` steps
    over the union of their ranges, log-spaced for a log axis."""
    xs = np.concatenate([np.asarray(c[1], dtype=float) for c in curves]) if curves else np.zeros(0)
    xs = xs[np.isfinite(xs) & ((xs > 0) if log else True)]
    if xs.size == 0:
        return [], [(name, []) for name, _, _ in curves]
    lo, hi = float(xs.min()), float(xs.max())
    spaced = np.geomspace if log else np.linspace
    grid = spaced(lo, hi, points) if hi > lo else np.array([lo])
    out: list[tuple[str, list[float | None]]] = []
    for name, x, y in curves:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        values = np.interp(grid, x, y, left=np.nan, right=y[-1] if y.size else np.nan) if x.size else grid * np.nan
        out.append((name, [None if not np.isfinite(v) else float(v) for v in values]))
    return grid.tolist(), out
