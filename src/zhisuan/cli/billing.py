"""`zhisuan bill` and `zhisuan report utilization`: invoices and honest utilisation from the server."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import L, console, fail, seconds

report_app = typer.Typer(help="Reports from the live system.", no_args_is_help=True, rich_markup_mode=None)


def _num(v: float | None, fmt: str = ",.2f") -> str:
    return "unmeasured" if v is None else format(v, fmt)


def bill_command(tenant: Annotated[str, typer.Option("--tenant", help="who is billed")],
                 month: Annotated[str, typer.Option("--month", help="local month, YYYY-MM")],
                 out: Annotated[Path, typer.Option(help="folder for the CSV and JSON")] = Path("invoices"),
                 url: Url = None, token: Token = None) -> None:
    """A tenant's invoice for a month: allocated vs busy device-hours, energy, carbon, CNY per job."""
    with connect(url, token) as client:
        inv = call(client, "GET", f"/v1/invoices/{tenant}/{month}")
        csv_text = call(client, "GET", f"/v1/invoices/{tenant}/{month}.csv")
    t = Table(title=L("invoice {tenant} {month} — price book {book}", tenant=tenant, month=month,
                      book=", ".join(inv["price_versions"]) or L("(no usage)")))
    tot = inv["totals"]
    cpus = bool(tot.get("cpu_hours"))  # CPU-hours billed (CPU-only jobs, or beyond a share): a column if any
    gib = bool(tot.get("memory_gib_hours"))  # memory billed beyond a share of a node: a column if any
    for col in ["job", "name", "where", "chip", "alloc dev-h", "busy dev-h", "measured %", *(["CPU-h"] if cpus else []),
                *(["GiB-h"] if gib else []), "kWh", "kgCO2", "¥"]:
        t.add_column(L(col), justify="left" if col in {"job", "name", "where", "chip"} else "right")
    for x in inv["lines"]:
        measured = 100 * x["measured_device_hours"] / x["allocated_device_hours"] if x["allocated_device_hours"] else 0
        t.add_row(x["job_id"], x["job_name"], x["centers"], x["chips"], f"{x['allocated_device_hours']:,.3f}",
                  _num(x["busy_device_hours"], ",.3f"), f"{measured:.0f}",
                  *([f"{x.get('cpu_hours', 0):,.3f}"] if cpus else []),
                  *([f"{x.get('memory_gib_hours', 0):,.3f}"] if gib else []), f"{x['kwh']:,.3f}", f"{x['kg_co2']:,.3f}",
                  f"{x['cny']:,.2f}")
    t.add_row(L("total"), "", "", "", f"{tot['allocated_device_hours']:,.3f}", _num(tot["busy_device_hours"], ",.3f"),
              "", *([f"{tot['cpu_hours']:,.3f}"] if cpus else []),
              *([f"{tot['memory_gib_hours']:,.3f}"] if gib else []), f"{tot['kwh']:,.3f}", f"{tot['kg_co2']:,.3f}",
              f"{tot['cny']:,.2f}", style="bold")
    console.print(t)
    _data_lines(inv)
    if inv["assumptions"]:
        console.print(L("ASSUMPTION in the inputs of some lines: {what} (see the network file)",
                        what=", ".join(inv["assumptions"])))
    console.print(L("busy = measured only (NVML, the job's own reports); 'unmeasured' is never a guess. "
                    "Energy without a measurement is the TDP upper bound."))
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"invoice-{tenant}-{month}"
    stem.with_suffix(".csv").write_text(csv_text, encoding="utf-8")
    stem.with_suffix(".json").write_text(json.dumps(inv, indent=2, ensure_ascii=False), encoding="utf-8")
    console.print(L("wrote {a} and {b}", a=f"{stem}.csv", b=f"{stem}.json"))


def _data_lines(inv: dict[str, Any]) -> None:
    """Storage (GB-months per dataset and replica) and transfers (GB per link), then the month's total."""
    tot = inv["totals"]
    if inv.get("storage"):
        t = Table(title=L("storage"))
        for col in ["dataset", "center", "GB", "GB-months", "¥/GB-month", "¥"]:
            t.add_column(L(col), justify="left" if col in {"dataset", "center"} else "right")
        for x in inv["storage"]:
            t.add_row(x["dataset"], x["center"], f"{x['gb']:,.3f}", f"{x['gb_months']:,.6f}",
                      f"{x['cny_per_gb_month']:,.3f}", f"{x['cny']:,.4f}")
        console.print(t)
    if inv.get("transfers"):
        t = Table(title=L("transfers"))
        for col in ["from", "to", "transfers", "GB", "¥"]:
            t.add_column(L(col), justify="left" if col in {"from", "to"} else "right")
        for x in inv["transfers"]:
            t.add_row(x["source"], x["target"], str(x["transfers"]), f"{x['gb']:,.3f}", f"{x['cny']:,.4f}")
        console.print(t)
    if "total_cny" in tot:
        console.print(f"compute ¥{tot['cny']:,.2f} + storage ¥{tot['storage_cny']:,.4f} + transfers "
                      f"¥{tot['transfer_cny']:,.4f} = ¥{tot['total_cny']:,.2f}")


def _when(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        fail(f"--since/--until: {value!r} is neither epoch seconds nor an ISO date with an offset")


@report_app.command("utilization")
def utilization_command(
        center: Annotated[str | None, typer.Option(help="one center (default all)")] = None,
        since: Annotated[str | None, typer.Option(help="ISO date with offset or epoch s (default 24 h ago)")] = None,
        until: Annotated[str | None, typer.Option(help="ISO date with offset or epoch s (default now)")] = None,
        bucket: Annotated[str, typer.Option(help="time bucket, e.g. 1h, 15m")] = "1h",
        html: Annotated[Path | None, typer.Option(help="also write an HTML report with the plot")] = None,
        url: Url = None, token: Token = None) -> None:
    """Allocated %, busy % and idle-while-allocated % per center and chip, and per tenant."""
    params: dict[str, Any] = {"bucket": seconds(bucket, "--bucket")}
    if center:
        params["center"] = center
    if since:
        params["since"] = _when(since, 0)
    if until:
        params["until"] = _when(until, 0)
    with connect(url, token) as client:
        rep = call(client, "GET", "/v1/reports/utilization", params=params)
    totals: dict[tuple[str, str], list[float]] = {}
    for r in rep["rows"]:
        t = totals.setdefault((r["center"], r["chip"]), [0.0, 0.0, 0.0, 0.0])
        for i, k in enumerate(["capacity_device_hours", "allocated_device_hours", "measured_device_hours",
                               "busy_device_hours"]):
            t[i] += r[k]
    table = Table(title=L("utilization") + " " + " → ".join(datetime.fromtimestamp(x).isoformat(timespec="minutes")
                                                    for x in (rep["since"], rep["until"])))
    for col in ["center", "chip", "capacity dev-h", "allocated %", "busy %", "idle while allocated %", "measured %"]:
        table.add_column(L(col), justify="left" if col in {"center", "chip"} else "right")
    for (c, chip), (cap, alloc, measured, busy) in sorted(totals.items()):
        table.add_row(c, chip, f"{cap:,.1f}", f"{100 * alloc / cap if cap else 0:.1f}",
                      f"{100 * busy / cap:.1f}" if measured else "unmeasured",
                      f"{100 * (measured - busy) / measured:.1f}" if measured else "unmeasured",
                      f"{100 * measured / alloc if alloc else 0:.0f}")
    console.print(table)
    tenants = Table(title=L("per tenant"))
    for col in ["tenant", "allocated dev-h", "busy dev-h", "measured dev-h", "kWh", "kgCO2", "¥"]:
        tenants.add_column(L(col), justify="left" if col == "tenant" else "right")
    for name, v in sorted(rep["tenants"].items()):
        tenants.add_row(name, *(f"{v[k]:,.2f}" for k in ["allocated_device_hours", "busy_device_hours",
                                                        "measured_device_hours", "kwh", "kg_co2", "cny"]))
    console.print(tenants)
    if html:
        html.write_text(_html(rep, html), encoding="utf-8")
        console.print(L("wrote {path} (with the chart library beside it)", path=html))


def _html(rep: dict[str, Any], path: Path) -> str:
    """Allocated and busy % over time, one chart per center × chip, dated in Asia/Shanghai (as bills)."""
    from zhisuan.charts import Chart, write_assets

    charts = []
    keys = sorted({(r["center"], r["chip"]) for r in rep["rows"]})
    for k, (c, chip) in enumerate(keys):
        rows = [r for r in rep["rows"] if (r["center"], r["chip"]) == (c, chip)]
        series: list[tuple[str, list[float | None]]] = [(L("allocated %"), [r["allocated_pct"] for r in rows])]
        if any(r["busy_pct"] is not None for r in rows):
            series.append((L("busy % (measured)"), [r["busy_pct"] for r in rows]))
        charts.append(Chart(f"util-{k}", f"{c} — {chip}", L("time (Asia/Shanghai)"), L("% of capacity"),
                            [r["bucket_start"] for r in rows], series, time=True, tz="Asia/Shanghai", y_max=100.0))
    head = write_assets(path.parent, charts, f"{path.stem}-data.js")
    return (f"<!doctype html><meta charset='utf-8'><title>{L('zhisuan utilization')}</title>{head}"
            f"<h1>{L('Utilization: allocated vs busy')}</h1><p>"
            + escape(L("busy counts measured time only (NVML, the jobs' own reports); price book {book}; times in "
                       "Asia/Shanghai", book=rep["price_version"])) + "</p>"
            + "".join(f"<h2>{escape(c.title)}</h2>{c.div()}" for c in charts))
