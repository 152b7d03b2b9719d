"""Settlement runs: one statement per merchant over what has become settleable.

A merchant order is settleable once it is `completed`, it completed on or before `period_end`
(an Asia/Shanghai day, inclusive) and `REFUND_WINDOW_DAYS` have passed since, at the run's time.
A statement settles each such merchant order once, at its amounts then (subtotal, refunds
approved so far, the commission the ledger holds for it), and deducts what changed since on
orders settled before (late refunds and their commission effect) and a negative net carried
forward from an earlier statement.

Concurrency: a run locks the merchants it settles (`FOR UPDATE SKIP LOCKED` on PostgreSQL, in
id order; SQLite serialises writers), then re-reads everything under those locks. A second run
at the same moment skips the merchants the first holds and, once it may lock them, finds them
settled for the period (one statement per merchant and `period_end`, a unique constraint) and
their merchant orders settled (a unique constraint on the settled merchant order). The same
constraints back the locks up if anything ever slipped past them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import SHANGHAI, shanghai_day_end_exclusive, shanghai_day_start
from app.ledger.service import Leg, post
from app.models import (
    AdjustmentKind,
    AuditEvent,
    LedgerAccount,
    LedgerKind,
    Merchant,
    MerchantOrder,
    MerchantOrderStatus,
    PayoutMethod,
    Settlement,
    SettlementAdjustment,
    SettlementLine,
    SettlementStatus,
)
from app.settlement.errors import PeriodEndInFuture


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: uuid.UUID
    period_end: date
    settlement_ids: list[uuid.UUID]


@dataclass(slots=True)
class _Draft:
    """A statement being assembled for one merchant."""

    merchant_id: uuid.UUID
    lines: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        gross = sum(line["gross_fen"] for line in self.lines)
        refunds = sum(line["refunds_fen"] for line in self.lines)
        commission = sum(line["commission_fen"] for line in self.lines)
        adjustments = sum(a["amount_fen"] for a in self.adjustments)
        return {
            "gross_fen": gross,
            "refunds_fen": refunds,
            "commission_fen": commission,
            "adjustments_fen": adjustments,
            "net_fen": gross - refunds - commission - adjustments,
        }


def settleable(period_end: date, now: datetime, refund_window_days: float) -> ColumnElement[bool]:
    """Merchant orders completed on or before `period_end` (Asia/Shanghai) whose refund window
    has passed at `now`, and not settled yet."""
    return and_(
        MerchantOrder.status == MerchantOrderStatus.completed,
        MerchantOrder.completed_at < shanghai_day_end_exclusive(period_end),
        MerchantOrder.completed_at <= now - timedelta(days=refund_window_days),
        ~exists().where(SettlementLine.merchant_order_id == MerchantOrder.id),
    )


def _late_changes() -> Any:
    """Settled merchant orders whose refunds or commission changed since they were last
    accounted for (settled, plus the late-refund adjustments already made): merchant_id, id,
    the refunds and commission deltas."""
    done = (
        select(
            SettlementAdjustment.merchant_order_id.label("mo_id"),
            func.sum(SettlementAdjustment.refunds_fen).label("refunds"),
            func.sum(SettlementAdjustment.commission_fen).label("commission"),
        )
        .where(SettlementAdjustment.kind == AdjustmentKind.late_refund)
        .group_by(SettlementAdjustment.merchant_order_id)
        .subquery()
    )
    refunds_delta = (
        MerchantOrder.refunded_fen - SettlementLine.refunds_fen - func.coalesce(done.c.refunds, 0)
    )
    commission_delta = (
        MerchantOrder.commission_fen
        - SettlementLine.commission_fen
        - func.coalesce(done.c.commission, 0)
    )
    return (
        select(
            MerchantOrder.merchant_id,
            MerchantOrder.id,
            refunds_delta.label("refunds_delta"),
            commission_delta.label("commission_delta"),
        )
        .join(SettlementLine, SettlementLine.merchant_order_id == MerchantOrder.id)
        .outerjoin(done, done.c.mo_id == MerchantOrder.id)
        .where(or_(refunds_delta != 0, commission_delta != 0))
    )


async def _lock_merchants(
    session: AsyncSession, period_end: date, candidates: set[uuid.UUID]
) -> list[uuid.UUID]:
    """Lock the candidates this run may settle (skipping those another run holds), then keep
    those without a statement for the period, read after the locks (a fresh snapshot)."""
    if not candidates:
        return []
    locked = list(
        await session.scalars(
            select(Merchant.id)
            .where(Merchant.id.in_(sorted(candidates)))
            .order_by(Merchant.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not locked:
        return []
    done = set(
        await session.scalars(
            select(Settlement.merchant_id).where(
                Settlement.merchant_id.in_(locked), Settlement.period_end == period_end
            )
        )
    )
    return [m for m in locked if m not in done]


async def _candidates(
    session: AsyncSession, period_end: date, now: datetime, window: float
) -> set[uuid.UUID]:
    new = await session.scalars(
        select(MerchantOrder.merchant_id).where(settleable(period_end, now, window)).distinct()
    )
    late = await session.scalars(select(_late_changes().subquery().c.merchant_id).distinct())
    return set(new) | set(late)


async def _drafts(
    session: AsyncSession,
    merchants: list[uuid.UUID],
    period_end: date,
    now: datetime,
    window: float,
) -> dict[uuid.UUID, _Draft]:
    """What each locked merchant's statement holds: new lines, late changes, carried nets."""
    drafts = {m: _Draft(m) for m in merchants}
    rows = await session.execute(
        select(
            MerchantOrder.id,
            MerchantOrder.merchant_id,
            MerchantOrder.subtotal_fen,
            MerchantOrder.refunded_fen,
            MerchantOrder.commission_fen,
            MerchantOrder.completed_at,
        )
        .where(MerchantOrder.merchant_id.in_(merchants), settleable(period_end, now, window))
        .order_by(MerchantOrder.completed_at, MerchantOrder.id)
    )
    for mo_id, merchant_id, subtotal, refunded, commission, completed_at in rows:
        drafts[merchant_id].lines.append(
            {
                "id": uuid.uuid4(),
                "merchant_order_id": mo_id,
                "completed_at": completed_at,
                "gross_fen": subtotal,
                "refunds_fen": refunded,
                "commission_fen": commission,
                "net_fen": subtotal - refunded - commission,
                "created_at": now,
            }
        )
    late = _late_changes().where(MerchantOrder.merchant_id.in_(merchants))
    for merchant_id, mo_id, refunds_delta, commission_delta in await session.execute(late):
        drafts[merchant_id].adjustments.append(
            {
                "id": uuid.uuid4(),
                "kind": AdjustmentKind.late_refund,
                "merchant_order_id": mo_id,
                "source_settlement_id": None,
                "refunds_fen": int(refunds_delta),
                "commission_fen": int(commission_delta),
                "amount_fen": int(refunds_delta) + int(commission_delta),
                "created_at": now,
            }
        )
    drafts = {m: d for m, d in drafts.items() if d.lines or d.adjustments}
    carried = await session.execute(
        select(Settlement.id, Settlement.merchant_id, Settlement.net_fen)
        .where(
            Settlement.merchant_id.in_(list(drafts)),
            Settlement.status == SettlementStatus.carried_forward,
            ~exists().where(SettlementAdjustment.source_settlement_id == Settlement.id),
        )
        .order_by(Settlement.created_at)
    )
    for source_id, merchant_id, net in carried:
        drafts[merchant_id].adjustments.append(
            {
                "id": uuid.uuid4(),
                "kind": AdjustmentKind.carried_forward,
                "merchant_order_id": None,
                "source_settlement_id": source_id,
                "refunds_fen": 0,
                "commission_fen": 0,
                "amount_fen": -net,
                "created_at": now,
            }
        )
    return drafts


async def run_settlement(
    session: AsyncSession,
    *,
    period_end: date,
    now: datetime,
    refund_window_days: float,
    actor_id: uuid.UUID | None,
) -> RunResult:
    """Issue the statements of `period_end` as of `now`; flushes, never commits.

    Locks the merchants it settles until the caller's transaction ends. Idempotent: a merchant
    with a statement for the period is left alone, and a merchant order is settled once.
    `422 period_end_in_future` for a day after today (Asia/Shanghai).
    """
    if period_end > now.astimezone(SHANGHAI).date():
        raise PeriodEndInFuture(
            f"period_end {period_end.isoformat()} has not begun yet (Asia/Shanghai).",
            loc=["body", "period_end"],
        )
    run_id = uuid.uuid4()
    candidates = await _candidates(session, period_end, now, refund_window_days)
    merchants = await _lock_merchants(session, period_end, candidates)
    drafts = await _drafts(session, merchants, period_end, now, refund_window_days)
    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    adjustments: list[dict[str, Any]] = []
    for merchant_id in sorted(drafts):
        draft = drafts[merchant_id]
        statement_id = uuid.uuid4()
        totals = draft.totals()
        rows.append(await _statement_row(session, statement_id, draft, totals, run_id, now))
        rows[-1]["period_end"] = period_end
        lines += [{**line, "settlement_id": statement_id} for line in draft.lines]
        adjustments += [{**a, "settlement_id": statement_id} for a in draft.adjustments]
    # Core inserts of the tables (not the ORM's bulk path): 10,000 lines in a fraction of the time
    for model, values in (
        (Settlement, rows),
        (SettlementLine, lines),
        (SettlementAdjustment, adjustments),
    ):
        if values:
            await session.execute(insert(cast(Table, model.__table__)), values)
    await _audit_run(session, run_id, period_end, rows, actor_id, now)
    await session.flush()
    return RunResult(run_id, period_end, [row["id"] for row in rows])


async def _statement_row(
    session: AsyncSession,
    statement_id: uuid.UUID,
    draft: _Draft,
    totals: dict[str, int],
    run_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    """The statement's row; a positive net is posted to the ledger as due to be paid out."""
    net = totals["net_fen"]
    status = (
        SettlementStatus.carried_forward
        if net < 0
        else SettlementStatus.paid
        if net == 0
        else SettlementStatus.pending_payout
    )
    txn_id = None
    if net > 0:
        txn_id = await post(
            session,
            LedgerKind.settlement_issued,
            [
                Leg(LedgerAccount.merchant_payable, net, draft.merchant_id),
                Leg(LedgerAccount.payouts, -net, draft.merchant_id),
            ],
        )
    return {
        "id": statement_id,
        "merchant_id": draft.merchant_id,
        "run_id": run_id,
        "status": status,
        **totals,
        "issued_txn_id": txn_id,
        # A statement of exactly 0 has nothing to pay: it is issued paid.
        "payout_method": PayoutMethod.none if net == 0 else None,
        "payout_reference": None,
        "transfer_attempted_at": None,
        "paid_at": now if net == 0 else None,
        "paid_by": None,
        "created_at": now,
        "updated_at": now,
    }


async def _audit_run(
    session: AsyncSession,
    run_id: uuid.UUID,
    period_end: date,
    rows: list[dict[str, Any]],
    actor_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """One event for the run and one per statement issued (found by the statement's id)."""
    by_status: dict[str, int] = defaultdict(int)
    for row in rows:
        by_status[str(row["status"])] += 1
    events = [
        {
            "id": uuid.uuid4(),
            "at": now,
            "actor_id": actor_id,
            "action": "settlement.run",
            "subject_type": "settlement_run",
            "subject_id": str(run_id),
            "detail": {
                "period_end": period_end.isoformat(),
                "statements": len(rows),
                "by_status": dict(by_status),
                "net_fen": sum(int(row["net_fen"]) for row in rows),
            },
        }
    ]
    events += [
        {
            "id": uuid.uuid4(),
            "at": now,
            "actor_id": actor_id,
            "action": "settlement.issued",
            "subject_type": "settlement",
            "subject_id": str(row["id"]),
            "detail": {
                "run_id": str(run_id),
                "merchant_id": str(row["merchant_id"]),
                "period_end": period_end.isoformat(),
                "status": str(row["status"]),
                "net_fen": int(row["net_fen"]),
            },
        }
        for row in rows
    ]
    await session.execute(insert(cast(Table, AuditEvent.__table__)), events)


def weekly_period_end(now: datetime, weekday: int) -> date | None:
    """The period the jobs settle at `now`: yesterday (Asia/Shanghai) when today is
    `SETTLEMENT_WEEKDAY` (1 = Monday … 7 = Sunday), else None."""
    today = now.astimezone(SHANGHAI).date()
    if today.isoweekday() != weekday:
        return None
    return today - timedelta(days=1)


def weekly_as_of(now: datetime) -> datetime:
    """The instant the weekly run settles as of: the start of the settlement day (Asia/Shanghai),
    so every run that day, on any machine, sees the same settleable orders."""
    return shanghai_day_start(now.astimezone(SHANGHAI).date())
