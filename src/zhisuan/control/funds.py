"""Projects' money in the live network: what a submit holds, which projects are out of funds, alerts, and the
ledger reconciled with the invoices (store/ledger.py keeps the entries).

A funded project (a prepaid balance, a monthly budget, or both) has each new job hold its expected cost: the
dearest pool the policy accepts for it, for its time limit (or the default run time), priced as the invoice
will be. A submit that would hold more than the project has left is refused with the figures. A run is
charged what it was metered when it ends, and the hold goes when the job ends. A project whose running jobs
cost more than they hold, beyond what it has left, is out of funds: its queued jobs wait outside the
scheduler's queue (and with `at_zero: stop` its running jobs are stopped and requeued, checkpoints kept)
until a top-up or a larger budget. Alerts at 50, 80 and 100% go to the audit trail, the dashboard and a
webhook.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from zhisuan.control.errors import Forbidden, PaymentRequired
from zhisuan.control.metering import Meter
from zhisuan.metering.invoice import Invoice, month_window
from zhisuan.model import JobSpec, JobState, Network
from zhisuan.scheduler.feasibility import Feasibility
from zhisuan.store import JobStore, Principal
from zhisuan.store.audit import AuditLog, By
from zhisuan.store.ledger import MAX_TOPUP_FEN, Account, Ledger, fen_of, month_of, yuan

log = logging.getLogger("zhisuan.funds")
FRESH = 2.0  # seconds the set of funded projects is reused by the submit path
LEVELS = (50, 80, 100)
BURN_DAYS = 7  # the window of the burn rate a forecast extrapolates
DATA_EVERY = 60.0  # seconds between charges of funded projects' storage and transfers
ALERTS_EVERY = 5.0
SYSTEM = By("zhisuan")


@dataclass(frozen=True)
class Standing:
    """A project's funds now: its account, what its running jobs cost beyond their holds, the share used."""

    account: Account
    overrun_fen: int
    used_pct: float | None  # of its budget, or of what was paid in (None: neither)
    at: float
    burn_fen_per_day: float = 0.0  # charged over the last BURN_DAYS, and what running jobs cost so far

    @property
    def out(self) -> bool:
        return self.account.remaining(month_of(self.at), self.overrun_fen) < 0

    def json(self) -> dict[str, Any]:
        out = self.account.json(month_of(self.at))
        out["overrun_fen"] = self.overrun_fen
        out["remaining_fen"] = (self.account.remaining(month_of(self.at), self.overrun_fen)
                                if out["remaining_fen"] is not None else None)
        out["used_pct"] = self.used_pct
        out["out_of_funds"] = self.out
        out["burn_fen_per_day"] = round(self.burn_fen_per_day)
        left = out["remaining_fen"]
        out["runs_out_at"] = (self.at + max(left, 0) / self.burn_fen_per_day * 86400.0
                              if left is not None and self.burn_fen_per_day > 0 else None)
        return out


class Funds:
    def __init__(self, store: JobStore, network: Network, feasible: Feasibility, meter: Meter) -> None:
        self.store, self.network, self.feasible, self.meter = store, network, feasible, meter
        self.ledger = Ledger(store.engine)
        self.audit = AuditLog(store.engine)
        self._funded: tuple[float, frozenset[str]] = (-math.inf, frozenset())
        self.post: Callable[[str, dict[str, Any]], None] = _post  # the webhook's sender (tests may watch it)
        self.changed: Callable[[], None] = lambda: None  # told of a top-up or a budget (the loop's gate)
        # (tenant, month, now) -> this month's (storage ¥, transfer ¥) so far, as the invoice prices them
        self.data_bill: Callable[[str, str, float], tuple[float, float]] | None = None
        self.invoice: Callable[[str, str, float], Invoice] | None = None  # (tenant, month, now) -> its invoice
        self._data_at = -math.inf
        self._alerts: tuple[float, list[Standing]] = (-math.inf, [])

    def funded(self, now: float) -> frozenset[str]:
        """Projects with funds, read at most every FRESH seconds (a blocking read: not on the event loop)."""
        at = self._funded[0]
        if now - at >= FRESH or now < at:
            self._funded = (now, frozenset(a.tenant for a in self.ledger.accounts()
                                           if a.prepaid or a.budget_fen is not None))
        return self._funded[1]

    def is_fresh(self, now: float) -> bool:
        return 0 <= now - self._funded[0] < FRESH

    def hold_for(self, spec: JobSpec, now: float) -> int | None:
        """Fen a new job holds (None: its project has no funds to hold from)."""
        if spec.tenant not in self.funded(now):
            return None
        return math.ceil(self.feasible.expected_cost(spec, now) * 100)

    def check_deploy(self, spec: JobSpec, replicas: int, now: float) -> None:
        """A funded project's model service must afford its replicas' first hour (a replica holds nothing: it
        runs until stopped, charged as it ends; out of funds, the project's `at_zero` applies to it)."""
        fen = self.hold_for(spec, now)
        acct = self.ledger.account(spec.tenant) if fen is not None else None
        if fen is None or acct is None:
            return
        month = month_of(now)
        if fen * replicas > acct.remaining(month):
            raise PaymentRequired(f"funds: {replicas} replica(s) are expected to cost {yuan(fen * replicas)} in "
                                  f"their first hour, and project {spec.tenant} has {acct.figures(month)}")

    def standing(self, now: float, tenants: set[str] | None = None) -> list[Standing]:
        """Every project with an account (funded, or once funded), or those of `tenants`; running jobs metered up
        to `now`."""
        accounts = [a for a in self.ledger.accounts() if tenants is None or a.tenant in tenants]
        if not accounts:
            return []
        names = {a.tenant for a in accounts}
        running = [r for t in sorted(names) for r in self.store.find(tenant=t, states={JobState.RUNNING})] \
            if len(names) <= 50 else [r for r in self.store.find(states={JobState.RUNNING}) if r.tenant in names]
        holds = self.ledger.holds([r.id for r in running])
        cost: dict[str, float] = {}
        for u in self.meter.open_intervals(running, now):
            cost[u.job_id] = cost.get(u.job_id, 0.0) + u.cny
        overrun: dict[str, int] = {}
        for r in running:
            over = round(cost.get(r.id, 0.0) * 100) - holds.get(r.id, 0)
            overrun[r.tenant] = overrun.get(r.tenant, 0) + max(0, over)
        paid = self.ledger.paid(names)
        burnt = self.ledger.charged_since(now - BURN_DAYS * 86400.0, names)
        running_fen: dict[str, float] = {}
        for r in running:
            running_fen[r.tenant] = running_fen.get(r.tenant, 0.0) + cost.get(r.id, 0.0) * 100
        month = month_of(now)
        out = []
        for a in accounts:
            over = overrun.get(a.tenant, 0)
            shares = []
            if a.budget_fen:
                shares.append((a.spent(month) + a.held_fen + over) / a.budget_fen * 100)
            if a.prepaid and paid.get(a.tenant):
                shares.append((paid[a.tenant] - a.available_fen + over) / paid[a.tenant] * 100)
            elif a.prepaid:
                shares.append(100.0 if a.available_fen - over <= 0 else 0.0)
            burn = (burnt.get(a.tenant, 0) + running_fen.get(a.tenant, 0.0)) / BURN_DAYS
            out.append(Standing(a, over, max(shares) if shares else None, now, burn))
        return out

    def charge_data(self, now: float) -> None:
        """Each funded project's storage and transfers this month, as its invoice prices them, charged up to
        now (every DATA_EVERY seconds, by the leader): they draw on the same balance as its jobs."""
        if self.data_bill is None or now - self._data_at < DATA_EVERY:
            return
        self._data_at = now
        month = month_of(now)
        last = month_of(month_window(month)[0] - 1)  # its final figure, once the month has ended
        for a in self.ledger.accounts():
            if a.prepaid or a.budget_fen is not None:
                for m in (last, month):
                    storage, transfer = self.data_bill(a.tenant, m, now)
                    self.ledger.charge_data(a.tenant, m, round((storage + transfer) * 100), now)

    def alerts(self, now: float, tenant: str | None) -> list[dict[str, str]]:
        """The console's funds alerts (`tenant`'s, or every project's): out of funds, or 80% used; the
        standing is reused for ALERTS_EVERY seconds (every open console asks every second or two)."""
        at, known = self._alerts
        if not 0 <= now - at < ALERTS_EVERY:
            known = self.standing(now)
            self._alerts = (now, known)
        out = []
        for s in known:
            t = s.account.tenant
            if tenant not in (None, t):
                continue
            if s.out:
                out.append({"kind": "funds", "subject": t,
                            "message": f"project {t} is out of funds: its jobs are held"})
            elif s.used_pct is not None and s.used_pct >= 80:
                out.append({"kind": "funds", "subject": t,
                            "message": f"project {t} has used {s.used_pct:.0f}% of its funds"})
        return out

    def check(self, now: float) -> dict[str, tuple[str, bool]]:
        """Projects out of funds -> (why their jobs wait, whether running ones stop); alerts sent on the way.
        Called by the leader's loop (control/gate.py)."""
        self.charge_data(now)
        out = {}
        for s in self.standing(now):
            self._alert(s, now)
            if s.out:
                a = s.account
                out[a.tenant] = (f"held: project {a.tenant} is out of funds ({a.figures(month_of(now))}, running "
                                 f"jobs {yuan(s.overrun_fen)} beyond their holds), a top-up or a larger budget "
                                 f"releases its jobs", a.at_zero == "stop")
        return out

    def _alert(self, s: Standing, now: float) -> None:
        """The highest level crossed this month, once: the audit trail, the log, the webhook."""
        if s.used_pct is None:
            return
        month = month_of(now)
        level = max((x for x in LEVELS if s.used_pct >= x), default=0)
        before = s.account.alerted
        seen = int(before.split(":")[1]) if before.startswith(month + ":") else 0
        if level == seen or not self.ledger.mark_alerted(s.account.tenant, f"{month}:{level}", before):
            return
        if level < seen:  # a top-up or a larger budget: the next crossing alerts again
            return
        tenant = s.account.tenant
        detail = f"{level}% of its funds used ({s.account.figures(month)})"
        self.audit.record(SYSTEM, "funds.alert", tenant, now, detail)
        log.warning("project %s: %s", tenant, detail)
        url = self.network.control.funds_webhook
        if url:
            payload = {"event": "funds.alert", "tenant": tenant, "level_pct": level, "at": now,
                       "standing": s.json()}
            threading.Thread(target=self.post, args=(url, payload), name="zhisuan-funds-webhook", daemon=True).start()

    def show(self, who: Principal, now: float, tenant: str | None = None) -> list[dict[str, Any]]:
        """Funded projects' standing: an admin's every one (or `tenant`'s), a tenant's own."""
        if tenant is not None and tenant != who.tenant and not who.admin:
            raise Forbidden(f"tenant: you act for {who.tenant!r}, not {tenant!r}")
        wanted = None if who.admin and tenant is None else {tenant or who.tenant}
        return [s.json() for s in self.standing(now, wanted)]

    def configure(self, who: Principal, tenant: str, now: float, prepaid: bool | None, budget_fen: int | bool | None,
            at_zero: str | None) -> dict[str, Any]:
        _admin(who, "sets a project's funds")
        return self._configure(By(who.actor, who.origin), tenant, now, prepaid, budget_fen, at_zero)

    def set_budget(self, by: By, tenant: str, now: float, budget_fen: int | bool | None,
                   at_zero: str | None) -> dict[str, Any]:
        """A budget set by whoever the caller checked may (an organisation's admin: control/orgs.py)."""
        return self._configure(by, tenant, now, None, budget_fen, at_zero)

    def _configure(self, by: By, tenant: str, now: float, prepaid: bool | None, budget_fen: int | bool | None,
                   at_zero: str | None) -> dict[str, Any]:
        self.ledger.configure(tenant, now, by, prepaid, budget_fen, at_zero)
        self._funded = (-math.inf, frozenset())
        self.changed()
        return self.standing(now, {tenant})[0].json()

    def topup(self, who: Principal, tenant: str, amount_cny: float, memo: str, now: float) -> dict[str, Any]:
        _admin(who, "records a top-up")
        self.ledger.topup(tenant, fen_of(amount_cny, "amount_yuan", MAX_TOPUP_FEN), now, By(who.actor, who.origin),
                          memo)
        self._funded = (-math.inf, frozenset())
        self.changed()
        return self.show(who, now, tenant)[0]

    def entries(self, who: Principal, tenant: str, limit: int) -> list[dict[str, Any]]:
        if tenant != who.tenant and not who.admin:
            raise Forbidden(f"tenant: you act for {who.tenant!r}, not {tenant!r}")
        return self.ledger.entries(tenant, limit=limit)

    def reconcile_month(self, month: str, who: Principal, now: float) -> list[dict[str, Any]]:
        """Each funded project's invoice for `month` beside its ledger, to the fen (admins)."""
        _admin(who, "reconciles the ledger")
        assert self.invoice is not None
        running = {r.id for r in self.store.find(states={JobState.RUNNING})}
        return [self.reconcile(self.invoice(a.tenant, month, now), running) for a in self.ledger.accounts()]

    def reconcile(self, bill: Invoice, running: set[str]) -> dict[str, Any]:
        """A month's invoice beside the ledger's charges, job by job, to the fen: jobs still running are on
        the invoice up to now but charged when their run ends, so they are listed apart."""
        charged = self.ledger.charges(bill.tenant, bill.month)
        lines = {x.job_id: round(x.cny * 100) for x in bill.lines}
        closed = {j: f for j, f in lines.items() if j not in running}
        differ = {j: {"invoice_fen": closed.get(j, 0), "ledger_fen": charged.get(j, 0)}
                  for j in set(closed) | set(charged) if closed.get(j, 0) != charged.get(j, 0) and j not in running}
        data = (bill.totals.get("storage_cny") or 0.0) + (bill.totals.get("transfer_cny") or 0.0)
        data_invoice, data_ledger = round(data * 100), self.ledger.data_charged(bill.tenant, bill.month)
        open_month = bill.month == month_of(time.time())  # storage still accrues: charged every DATA_EVERY
        return {"tenant": bill.tenant, "month": bill.month, "invoice_fen": sum(closed.values()),
                "ledger_fen": sum(f for j, f in charged.items() if j not in running),
                "data_invoice_fen": data_invoice, "data_ledger_fen": data_ledger,
                "data_reconciles": open_month or data_invoice == data_ledger,
                "open_fen": sum(f for j, f in lines.items() if j in running), "differences": differ,
                "reconciles": not differ and (open_month or data_invoice == data_ledger), "trial": self.ledger.trial()}


def _post(url: str, payload: dict[str, Any]) -> None:
    """The alert to the operator's webhook; a failure is logged, never retried forever."""
    try:
        httpx.post(url, json=payload, timeout=5.0)
    except httpx.HTTPError as e:
        log.warning("funds webhook %s: %s", url, e)


def _admin(who: Principal, what: str) -> None:
    if not who.admin:
        raise Forbidden(f"only an admin token {what}")
