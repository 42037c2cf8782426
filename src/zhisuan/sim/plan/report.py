"""A plan's results as people read them: one table row per option × scenario (also the console's), a CSV of
raw figures, and an HTML report with the cost-vs-wait front, waits and utilisation plotted by uPlot."""

from __future__ import annotations

import csv
import math
from html import escape
from pathlib import Path

from zhisuan.charts import Chart, write_assets
from zhisuan.i18n import label
from zhisuan.sim.plan.runner import JoinRow, OptionRow, PlanResult

HEADERS = ["option", "scenario", "p95 wait h", "mean wait h", "mean JCT h", "p95 JCT h", "allocated %", "busy %",
           "revenue M¥/y", "electricity M¥/y", "tCO2/y", "capex M¥", "payback y", "NPV M¥", "IRR %", "mark"]
CSV_HEADERS = ["option", "scenario", "arrivals_factor", "jobs", "finished", "unplaceable", "devices",
               "mean_wait_s", "p95_wait_s", "mean_jct_s", "p95_jct_s", "allocated_util", "busy_util",
               "revenue_cny_per_year", "electricity_cny_per_year", "kwh_per_year", "kg_co2_per_year", "capex_cny",
               "opex_cny_per_year", "delta_revenue_cny_per_year", "delta_electricity_cny_per_year",
               "annual_cost_cny", "npv_cny", "irr", "payback_years", "pareto", "meets_target", "wall_seconds"]
JOIN_HEADERS = ["option", "center", "scenario", "run", "allocated %", "revenue M¥/y", "payback y", "NPV M¥",
                "network p95 wait h"]


def _num(v: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v / scale:,.{digits}f}"


def mark(row: OptionRow) -> str:
    """★ on the cost-vs-wait front; ✓/✗ meets the target or not (at the target's scenario)."""
    return ("★" if row.pareto else "") + ("✓" if row.meets else "✗" if row.meets is False else "")


def table_rows(result: PlanResult) -> list[list[str]]:
    out = []
    for r in result.rows:
        c, m = r.cell, r.money
        busy = None if c.busy_util is None else 100 * c.busy_util
        out.append([r.option, r.scenario, _num(c.p95_wait, 3600, 2), _num(c.mean_wait, 3600, 2),
                    _num(c.mean_jct, 3600, 1), _num(c.p95_jct, 3600, 1), _num(100 * c.allocated_util), _num(busy),
                    _num(c.revenue, 1e6),
                    _num(r.electricity, 1e6), _num(c.kg_co2, 1e3, 0), _num(m.capex, 1e6),
                    _num(m.payback), _num(m.npv, 1e6), _num(None if m.irr is None else 100 * m.irr),
                    mark(r)])
    return out


def join_rows(joins: list[JoinRow]) -> list[list[str]]:
    out = []
    for j in joins:
        for run, center, money, wait in (("joined", j.joined, j.joined_money, None),
                                         ("alone", j.alone, j.alone_money, j.alone_p95_wait)):
            out.append([j.option, j.center, j.scenario, run, _num(100 * center.allocated_util),
                        _num(center.revenue, 1e6), _num(money.payback), _num(money.npv, 1e6),
                        _num(wait, 3600, 2) if wait is not None else "(see table)"])
    return out


def write_csv(result: PlanResult, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADERS)
        for r in result.rows:
            c, m = r.cell, r.money
            w.writerow([r.option, r.scenario, f"{c.factor:g}", c.jobs, c.finished, c.unplaceable, c.devices,
                        f"{c.mean_wait:.1f}", f"{c.p95_wait:.1f}", f"{c.mean_jct:.1f}", f"{c.p95_jct:.1f}",
                        f"{c.allocated_util:.5f}", "" if c.busy_util is None else f"{c.busy_util:.5f}",
                        f"{c.revenue:.0f}", f"{r.electricity:.0f}", f"{c.kwh:.0f}", f"{c.kg_co2:.0f}",
                        f"{m.capex:.0f}", f"{m.opex:.0f}", f"{m.revenue:.0f}", f"{m.electricity:.0f}",
                        f"{m.annual_cost:.0f}", f"{m.npv:.0f}", "" if m.irr is None else f"{m.irr:.5f}",
                        "" if m.payback is None else f"{m.payback:.3f}", int(r.pareto),
                        "" if r.meets is None else int(r.meets), f"{c.wall_seconds:.1f}"])


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def charts(result: PlanResult, lang: str) -> list[Chart]:
    def L(text: str) -> str:
        return label(text, lang)

    scenarios = list(dict.fromkeys(r.scenario for r in result.rows))
    options = list(dict.fromkeys(r.option for r in result.rows))
    by = {(r.option, r.scenario): r for r in result.rows}
    costs = sorted({r.money.annual_cost / 1e6 for r in result.rows})
    front = [(s, [next((by[(o, s)].cell.p95_wait / 3600 for o in options
                         if by[(o, s)].money.annual_cost / 1e6 == x), None) for x in costs]) for s in scenarios]
    index = [float(i) for i in range(len(options))]

    def per_option(value: str) -> list[tuple[str, list[float | None]]]:
        return [(s, [_value(by[(o, s)], value) for o in options]) for s in scenarios]

    return [
        Chart("front", L("cost vs p95 wait"), L("annual cost (M¥: capex/depreciation + opex + electricity, vs today)"),
              L("p95 wait (h)"), costs, front, points=True),
        Chart("wait", L("p95 wait by option"), L("option (numbered as in the table)"), L("p95 wait (h)"), index,
              per_option("wait"), points=True),
        Chart("util", L("allocated utilisation by option"), L("option (numbered as in the table)"),
              L("devices allocated (%)"), index, per_option("util"), points=True, y_max=100.0),
    ]


def _value(row: OptionRow, what: str) -> float | None:
    v = row.cell.p95_wait / 3600 if what == "wait" else 100 * row.cell.allocated_util
    return v if math.isfinite(v) else None


TITLE = "zhisuan capacity plan"
STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;font-size:12px}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}.chart{margin:1em 0}")


def write_report(result: PlanResult, out: Path, lang: str = "en") -> Path:
    """out/index.html, out/plan.csv and out/join-vs-alone.csv."""

    def L(text: str) -> str:
        return label(text, lang)

    out.mkdir(parents=True, exist_ok=True)
    write_csv(result, out / "plan.csv")
    with (out / "join-vs-alone.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([JOIN_HEADERS, *join_rows(result.joins)])
    drawn = charts(result, lang)
    head = write_assets(out, drawn)
    options = list(dict.fromkeys(r.option for r in result.rows))
    numbered = "".join(f"<li>{escape(o)}</li>" for o in options)
    cheapest = (L("cheapest option meeting the target") + f": <b>{escape(result.cheapest)}</b>" if result.cheapest
                else L("no option meets the target") if result.plan.target else L("no target given"))
    target = result.plan.target
    target_text = (f" (p95 wait ≤ {target.p95_wait_hours:g} h {L('at')} {escape(target.scenario)})" if target else "")
    joins = (f"<h2>{L('Join the network or build alone')}</h2>" + _table([L(h) for h in JOIN_HEADERS],
                                                                           join_rows(result.joins))
             if result.joins else "")
    items = "".join(f"<li>{escape(n)}</li>" for n in [*result.basis, *result.notes])
    name = escape(result.plan.name)
    html = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L(TITLE)}: {name}</title>{head}
<style>{STYLE}</style></head><body>
<h1>{L(TITLE)}: {name}</h1>
<p id="verdict">{cheapest}{target_text}</p>
<h2>{L('Options')}</h2>{_table([L(h) for h in HEADERS], table_rows(result))}
<p>{escape(L(EXPLAINED))}</p>
{"".join(c.div() for c in drawn)}
<p>{L('options')}: </p><ol start="0">{numbered}</ol>
{joins}
<h2>{L('Where the money comes from, assumptions and notes')}</h2><ul>{items}</ul>
</body></html>"""
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


EXPLAINED = ("Waits and utilisation over the demand's arrival window; revenue (the price book, time-of-use applied) "
             "and electricity (allocated devices at their draw, idle ones at 30% of TDP, × PUE, each hour at the "
             "zone's time-of-use multiplier) annualised from it. "
             "Capex, payback, NPV and IRR are the option's difference from today's network at the same demand. "
             "★: on the front (no other option at that scenario costs less and waits less); ✓/✗: meets the target.")
