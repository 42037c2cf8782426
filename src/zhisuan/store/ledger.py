"""A project's money as a double-entry ledger, in fen (integers: no float ever decides a balance).

Five accounts per project: `payments` (what was paid in: a top-up is payments −X, available +X), `available`
(prepaid money not held), `held` (the expected cost of its queued and running jobs: a hold is available −H, held +H;
a release the reverse), `revenue` (what its runs were charged: available −C, revenue +C) and `billed` (a project on
a budget without a prepaid balance draws its holds and charges from here: what it is invoiced after the fact). The
legs of every transaction sum to zero, so the whole ledger does; the `funds` row keeps each project's available and
held sums, written in the same transaction as their legs, and `trial()` checks that they agree. A job's run is
charged when its usage is stored (store/jobs.py, in that same transaction): per local month, the rounded sum of the
job's usage so far less what was charged before — so a job's charges in a month are exactly its invoice line rounded
to the fen, however many runs it took."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, case, delete, func, insert, or_, select, update

from zhisuan.catalog.tou import UTC_OFFSET
from zhisuan.model import SpecError
from zhisuan.store.audit import By, record_conn
from zhisuan.store.db import insert_once
from zhisuan.store.schema import FundsRow, HoldRow, LedgerRow, UsageRow

MAX_TOPUP_FEN = 10_000_000_000  # ¥100,000,000 in one top-up: more is a typo, not a payment
MAX_BUDGET_FEN = 100_000_000_000  # ¥1,000,000,000 a month
AT_ZERO = ("hold", "stop")
MAX_ENTRIES = 10_000


class InsufficientFunds(RuntimeError):
    """A job's expected cost is more than its project has left: the message gives the figures."""


def month_of(t: float) -> str:
    """The local (Asia/Shanghai) month of epoch seconds `t`, as invoices count months."""
    return str(np.datetime64(int(t + UTC_OFFSET), "s").astype("datetime64[M]"))


def yuan(fen: int | float) -> str:
    return f"¥{fen / 100:,.2f}"


def fen_of(cny: float, field: str, most: int) -> int:
    """A yuan amount from a request as fen: finite, positive, at most `most`; SpecError naming `field`."""
    if not isinstance(cny, int | float) or isinstance(cny, bool) or not math.isfinite(cny):
        raise SpecError([(field, f"must be a finite number of yuan, got {cny!r}")])
    fen = round(cny * 100) if 0 < cny <= most / 100 else 0  # (a huge finite amount × 100 is no longer finite)
    if fen <= 0 or fen > most:
        raise SpecError([(field, f"must be more than ¥0 and at most {yuan(most)}, got ¥{cny}")])
    return fen


@dataclass(frozen=True)
class Account:
    tenant: str
    prepaid: bool
    available_fen: int
    held_fen: int
    budget_fen: int | None
    month: str
    spent_fen: int
    at_zero: str
    alerted: str

    def spent(self, month: str) -> int:
        return self.spent_fen if self.month == month else 0

    def remaining(self, month: str, overrun: int = 0) -> int:
        """Fen the project may still commit in `month`: the lesser of its available balance (prepaid) and
        what its budget leaves after this month's charges and its holds; `overrun`: running jobs' cost
        beyond what they hold, not yet charged."""
        left = []
        if self.prepaid:
            left.append(self.available_fen - overrun)
        if self.budget_fen is not None:
            left.append(self.budget_fen - self.spent(month) - self.held_fen - overrun)
        return min(left) if left else 2**62

    def figures(self, month: str) -> str:
        parts = []
        if self.prepaid:
            parts.append(f"prepaid balance {yuan(self.available_fen + self.held_fen)}, of which "
                         f"{yuan(self.held_fen)} held by its queued and running jobs: {yuan(self.available_fen)} free")
        if self.budget_fen is not None:
            parts.append(f"monthly budget {yuan(self.budget_fen)}: spent {yuan(self.spent(month))}, held "
                         f"{yuan(self.held_fen)}, "
                         f"{yuan(self.budget_fen - self.spent(month) - self.held_fen)} left")
        return " and ".join(parts)

    def json(self, month: str) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["remaining_fen"] = self.remaining(month) if (self.prepaid or self.budget_fen is not None) else None
        out["spent_fen"] = self.spent(month)
        out["month"] = month
        return out


def _account(row: Any) -> Account:
    return Account(row.tenant, bool(row.prepaid), int(row.available_fen), int(row.held_fen),
                   None if row.budget_fen is None else int(row.budget_fen), row.month, int(row.spent_fen),
                   row.at_zero, row.alerted)


def _legs(conn: Connection, tenant: str, now: float, kind: str, legs: list[tuple[str, int, str]],
          job_id: str | None = None, actor: str = "zhisuan", memo: str = "") -> None:
    """One balanced transaction: (account, fen, month) legs summing to zero."""
    assert sum(f for _, f, _ in legs) == 0, legs
    txn = uuid.uuid4().hex
    conn.execute(insert(LedgerRow), [{"txn": txn, "at": now, "tenant": tenant, "account": a, "fen": f, "kind": kind,
                                      "job_id": job_id, "month": m, "actor": actor[:80], "memo": memo[:200]}
                                     for a, f, m in legs if f])


def _ensure(conn: Connection, tenant: str, prepaid: bool, month: str, now: float) -> None:
    """The project's funds row, created unless it exists (two first top-ups racing: one creates it). Out of
    funds, a prepaid project's running jobs stop unless it chose otherwise (money not paid is not spent); a
    budget's go on."""
    insert_once(conn, FundsRow, "tenant", tenant=tenant, prepaid=prepaid, available_fen=0, held_fen=0, month=month,
                spent_fen=0, at_zero="stop" if prepaid else "hold", alerted="", updated_at=now)


def _read(conn: Connection, tenant: str) -> Account | None:
    row = conn.execute(select(FundsRow).where(FundsRow.tenant == tenant).with_for_update()).first()
    return None if row is None else _account(row)


def hold(conn: Connection, tenant: str, job_id: str, fen: int, now: float, actor: str) -> None:
    """Hold `fen` for a job being stored in `conn`'s transaction, if what is left allows: checked and taken
    in one conditional UPDATE (racing submits cannot both take the last yuan). InsufficientFunds names the
    figures; the caller's transaction then stores nothing."""
    month = month_of(now)
    conn.execute(update(FundsRow).where(FundsRow.tenant == tenant, FundsRow.month != month)
                 .values(month=month, spent_fen=0))
    taken = conn.execute(
        update(FundsRow)
        .where(FundsRow.tenant == tenant, or_(FundsRow.prepaid.is_(False), FundsRow.available_fen >= fen),
               or_(FundsRow.budget_fen.is_(None), FundsRow.budget_fen - FundsRow.spent_fen - FundsRow.held_fen >= fen))
        .values(available_fen=case((FundsRow.prepaid.is_(True), FundsRow.available_fen - fen),
                                   else_=FundsRow.available_fen),
                held_fen=FundsRow.held_fen + fen, updated_at=now))
    acct = _read(conn, tenant)
    if acct is None:
        return  # not a funded project (any more): nothing to hold
    if taken.rowcount != 1:
        raise InsufficientFunds(f"funds: the job is expected to cost up to {yuan(fen)}, and project {tenant} has "
                                f"{acct.figures(month)}")
    conn.execute(insert(HoldRow), {"job_id": job_id, "tenant": tenant, "fen": fen})
    _legs(conn, tenant, now, "hold", [(_side(acct), -fen, month), ("held", fen, month)], job_id, actor)


def _side(acct: Account) -> str:
    """Where a project's holds and charges are drawn from: its prepaid balance, or (a budget only) what it is
    billed after the fact — so a project that turns prepaid later does not pay twice for what was invoiced."""
    return "available" if acct.prepaid else "billed"


def settle(conn: Connection, job_id: str, tenant: str, ended: bool, charged: bool, now: float) -> None:
    """In the transaction that stores a run's usage (`charged`) or ends a job (`ended`): charge the job's
    usage not yet charged, per month, and release its hold once it ended. Nothing for unfunded projects."""
    acct = _read(conn, tenant)
    if acct is None:
        return
    month = month_of(now)
    spent = acct.spent(month)
    available = held = 0
    if charged:
        cum: dict[str, float] = {}
        for cny, start in conn.execute(select(UsageRow.cny, UsageRow.start).where(UsageRow.job_id == job_id)):
            cum[month_of(start)] = cum.get(month_of(start), 0.0) + cny
        before = dict(conn.execute(select(LedgerRow.month, func.sum(LedgerRow.fen)).where(
            LedgerRow.job_id == job_id, LedgerRow.account == "revenue").group_by(LedgerRow.month)).all())
        for m in sorted(cum):
            due = round(cum[m] * 100) - int(before.get(m) or 0)
            if due:
                _legs(conn, tenant, now, "charge", [(_side(acct), -due, m), ("revenue", due, m)], job_id,
                      memo=f"usage of {job_id} in {m}")
                available -= due if acct.prepaid else 0
                spent += due if m == month else 0
    if ended:
        fen = conn.execute(select(HoldRow.fen).where(HoldRow.job_id == job_id)).scalar()
        if fen is not None:
            conn.execute(delete(HoldRow).where(HoldRow.job_id == job_id))
            side = conn.execute(select(LedgerRow.account).where(  # back where the hold was taken from
                LedgerRow.job_id == job_id, LedgerRow.kind == "hold", LedgerRow.account != "held")
                .order_by(LedgerRow.id.desc()).limit(1)).scalar() or "available"
            _legs(conn, tenant, now, "release", [("held", -fen, month), (side, fen, month)], job_id)
            available, held = available + (fen if side == "available" else 0), held - fen
    if available or held or spent != acct.spent(month):
        conn.execute(update(FundsRow).where(FundsRow.tenant == tenant).values(
            available_fen=FundsRow.available_fen + available, held_fen=FundsRow.held_fen + held,
            month=month, spent_fen=spent, updated_at=now))


def charge_data(conn: Connection, tenant: str, month: str, total_fen: int, now: float) -> int:
    """Charge what a project's storage and transfers cost in `month` so far (`total_fen`, as its invoice
    says) less what was charged for them before; the fen charged now."""
    acct = _read(conn, tenant)
    if acct is None:
        return 0
    before = conn.execute(select(func.sum(LedgerRow.fen)).where(
        LedgerRow.tenant == tenant, LedgerRow.account == "revenue", LedgerRow.kind == "data",
        LedgerRow.month == month)).scalar() or 0
    due = total_fen - int(before)
    if due:
        _legs(conn, tenant, now, "data", [(_side(acct), -due, month), ("revenue", due, month)],
              memo=f"storage and transfers in {month}")
        current = month_of(now)
        conn.execute(update(FundsRow).where(FundsRow.tenant == tenant).values(
            available_fen=FundsRow.available_fen - (due if acct.prepaid else 0),
            spent_fen=acct.spent(current) + (due if month == current else 0), month=current, updated_at=now))
    return due


class Ledger:
    """Projects' funds: set up, topped up, read, and checked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def account(self, tenant: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(FundsRow).where(FundsRow.tenant == tenant)).first()
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(select(FundsRow).order_by(FundsRow.tenant))]

    def funded(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(FundsRow.tenant)).scalars())

    def configure(self, tenant: str, now: float, by: By, prepaid: bool | None = None,
                  budget_fen: int | bool | None = False, at_zero: str | None = None) -> Account:
        """Create or change a project's funding (`budget_fen` False: unchanged, None: no budget). A budget
        below what the month already spent and holds is refused with the figures: nothing is changed."""
        if at_zero is not None and at_zero not in AT_ZERO:
            raise SpecError([("at_zero", f"one of {', '.join(AT_ZERO)}, got {at_zero!r}")])
        if isinstance(budget_fen, int) and not isinstance(budget_fen, bool) and not 0 < budget_fen <= MAX_BUDGET_FEN:
            raise SpecError([("budget_yuan", f"more than ¥0 and at most {yuan(MAX_BUDGET_FEN)}")])
        month = month_of(now)
        with self.engine.begin() as conn:
            _ensure(conn, tenant, bool(prepaid), month, now)
            acct = _read(conn, tenant)
            assert acct is not None
            values: dict[str, Any] = {"updated_at": now}
            if prepaid is not None:
                values["prepaid"] = prepaid
            if at_zero is not None:
                values["at_zero"] = at_zero
            if budget_fen is not False and not isinstance(budget_fen, bool):
                committed = acct.spent(month) + acct.held_fen
                if budget_fen is not None and budget_fen < committed:
                    raise SpecError([("budget_yuan", f"{yuan(budget_fen)} is below what project {tenant} already "
                                                     f"committed this month ({acct.figures(month)}); wait for its "
                                                     f"jobs to end or cancel some first")])
                values["budget_fen"] = budget_fen
            conn.execute(update(FundsRow).where(FundsRow.tenant == tenant).values(**values))
            detail = ", ".join(f"{k}={v}" for k, v in values.items() if k != "updated_at")
            record_conn(conn, by, "funds.set", tenant, now, detail)
            out = _read(conn, tenant)
        assert out is not None
        return out

    def topup(self, tenant: str, fen: int, now: float, by: By, memo: str = "") -> Account:
        """Record money paid in: the project's prepaid balance grows by `fen` (a project without funds
        becomes prepaid). Racing top-ups both count: each adds in one UPDATE."""
        if not 0 < fen <= MAX_TOPUP_FEN:
            raise SpecError([("amount_yuan", f"more than ¥0 and at most {yuan(MAX_TOPUP_FEN)}")])
        month = month_of(now)
        with self.engine.begin() as conn:
            _ensure(conn, tenant, True, month, now)
            conn.execute(update(FundsRow).where(FundsRow.tenant == tenant).values(
                prepaid=True, available_fen=FundsRow.available_fen + fen, updated_at=now))
            _legs(conn, tenant, now, "topup", [("payments", -fen, month), ("available", fen, month)],
                  actor=by.actor, memo=memo)
            record_conn(conn, by, "funds.topup", tenant, now, f"{yuan(fen)} {memo}".strip())
            out = _read(conn, tenant)
        assert out is not None
        return out

    def mark_alerted(self, tenant: str, mark: str, before: str) -> bool:
        """Record that alert `mark` was sent, if no one recorded it since `before` was read (one replica's
        loop sends each alert once)."""
        with self.engine.begin() as conn:
            done = conn.execute(update(FundsRow).where(FundsRow.tenant == tenant, FundsRow.alerted == before)
                                .values(alerted=mark))
        return done.rowcount == 1

    def entries(self, tenant: str | None = None, job_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest legs (at most MAX_ENTRIES), oldest first."""
        query = select(LedgerRow).order_by(LedgerRow.id.desc()).limit(max(1, min(limit, MAX_ENTRIES)))
        if tenant is not None:
            query = query.where(LedgerRow.tenant == tenant)
        if job_id is not None:
            query = query.where(LedgerRow.job_id == job_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.with_only_columns(*LedgerRow.__table__.columns))]
        return rows[::-1]

    def holds(self, job_ids: list[str]) -> dict[str, int]:
        """Job -> fen it holds, of `job_ids` that hold any."""
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            return {str(j): int(f) for j, f in conn.execute(select(HoldRow.job_id, HoldRow.fen)
                                                            .where(HoldRow.job_id.in_(job_ids)))}

    def paid(self, tenants: set[str] | None = None) -> dict[str, int]:
        """Project -> fen paid in by top-ups, ever (of `tenants`, or every project)."""
        query = (select(LedgerRow.tenant, func.sum(LedgerRow.fen)).where(LedgerRow.account == "payments")
                 .group_by(LedgerRow.tenant))
        if tenants is not None:
            query = query.where(LedgerRow.tenant.in_(sorted(tenants)))
        with self.engine.connect() as conn:
            return {str(t): -int(f) for t, f in conn.execute(query)}

    def charged_since(self, since: float, tenants: set[str] | None = None) -> dict[str, int]:
        """Project -> fen its runs were charged since `since` (a burn rate's), of `tenants` or every project."""
        query = (select(LedgerRow.tenant, func.sum(LedgerRow.fen))
                 .where(LedgerRow.account == "revenue", LedgerRow.at >= since).group_by(LedgerRow.tenant))
        if tenants is not None:
            query = query.where(LedgerRow.tenant.in_(sorted(tenants)))
        with self.engine.connect() as conn:
            return {str(t): int(f) for t, f in conn.execute(query)}

    def charge_data(self, tenant: str, month: str, total_fen: int, now: float) -> int:
        with self.engine.begin() as conn:
            return charge_data(conn, tenant, month, total_fen, now)

    def data_charged(self, tenant: str, month: str) -> int:
        """Fen charged for the project's storage and transfers in `month`."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.sum(LedgerRow.fen)).where(
                LedgerRow.tenant == tenant, LedgerRow.account == "revenue", LedgerRow.kind == "data",
                LedgerRow.month == month)).scalar() or 0)

    def charges(self, tenant: str, month: str) -> dict[str, int]:
        """Job -> fen charged for its usage in `month` (the revenue legs)."""
        query = (select(LedgerRow.job_id, func.sum(LedgerRow.fen))
                 .where(LedgerRow.tenant == tenant, LedgerRow.account == "revenue", LedgerRow.month == month,
                        LedgerRow.job_id.is_not(None))
                 .group_by(LedgerRow.job_id))
        with self.engine.connect() as conn:
            return {str(j): int(f) for j, f in conn.execute(query)}

    def trial(self) -> list[str]:
        """What does not balance (empty: all does): every transaction's legs sum to zero, each project's
        available and held legs equal its funds row, and its held legs the holds of its jobs."""
        problems = []
        with self.engine.connect() as conn:
            for txn, total in conn.execute(select(LedgerRow.txn, func.sum(LedgerRow.fen)).group_by(LedgerRow.txn)
                                           .having(func.sum(LedgerRow.fen) != 0)):
                problems.append(f"transaction {txn} sums to {total} fen")
            sums = {(t, a): int(f) for t, a, f in conn.execute(
                select(LedgerRow.tenant, LedgerRow.account, func.sum(LedgerRow.fen))
                .group_by(LedgerRow.tenant, LedgerRow.account))}
            holds = dict(conn.execute(select(HoldRow.tenant, func.sum(HoldRow.fen)).group_by(HoldRow.tenant)).all())
            for acct in (_account(r) for r in conn.execute(select(FundsRow))):
                for name, kept in (("available", acct.available_fen), ("held", acct.held_fen)):
                    if sums.get((acct.tenant, name), 0) != kept:
                        problems.append(f"{acct.tenant}: {name} legs sum to {sums.get((acct.tenant, name), 0)} fen, "
                                        f"the account says {kept}")
                if int(holds.get(acct.tenant) or 0) != acct.held_fen:
                    problems.append(f"{acct.tenant}: its jobs hold {holds.get(acct.tenant) or 0} fen, the account "
                                    f"says {acct.held_fen}")
        return problems

