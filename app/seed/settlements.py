"""The demo year's settlement history: a run on every `SETTLEMENT_WEEKDAY` since the first
completed order, as the weekly job would have made it; every statement paid by bank a couple of
days later except those of the latest run, which await payout; and one statement carried
forward: before the latest run a buyer gets a refund on an order settled earlier, from a
cooperative with nothing new to settle that week.

Runs only while there is no statement (so seeding twice adds nothing); the refund's provider step
commits, like the order seeding does.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.time import SHANGHAI, shanghai_day_start
from app.models import (
    MerchantOrder,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    Settlement,
    SettlementLine,
    SettlementStatus,
    User,
)
from app.refunds.provider import settle_with_provider
from app.refunds.schemas import RefundCreate
from app.refunds.service import approve_refund, request_refund
from app.settlement.payouts import mark_paid
from app.settlement.service import run_settlement, settleable


async def seed_settlements(
    session: AsyncSession, settings: Settings, *, admin_email: str, now: datetime
) -> int:
    """The weekly statements of the demo year; returns how many were issued (0 if any exist)."""
    if await session.scalar(select(Settlement.id).limit(1)) is not None:
        return 0
    first = await session.scalar(select(func.min(MerchantOrder.completed_at)))
    admin = await session.scalar(select(User).where(User.email == admin_email))
    if first is None or admin is None:
        return 0
    days = _settlement_days(first, now, settings.settlement_weekday)
    issued = 0
    for n, day in enumerate(days):
        at = shanghai_day_start(day)
        if n == len(days) - 1 and n > 0:
            await _late_refund(session, admin, day, settings)
        result = await run_settlement(
            session,
            period_end=day - timedelta(days=1),
            now=at,
            refund_window_days=settings.refund_window_days,
            actor_id=None,
        )
        issued += len(result.settlement_ids)
        if n == len(days) - 1:
            break
        for i, settlement_id in enumerate(result.settlement_ids):
            statement = await session.get(Settlement, settlement_id)
            assert statement is not None
            if statement.status == SettlementStatus.pending_payout:
                await mark_paid(session, admin, settlement_id, f"ABC{day:%Y%m%d}{i:04d}")
                statement.paid_at = at + timedelta(days=2, hours=2)
    await session.flush()
    return issued


def _settlement_days(first: datetime, now: datetime, weekday: int) -> list[date]:
    day = first.astimezone(SHANGHAI).date() + timedelta(days=1)
    day += timedelta(days=(weekday - day.isoweekday()) % 7)
    today = now.astimezone(SHANGHAI).date()
    days = []
    while day <= today:
        days.append(day)
        day += timedelta(days=7)
    return days


async def _late_refund(session: AsyncSession, admin: User, day: date, settings: Settings) -> None:
    """A refund, approved now, of a line of a settled bank-paid order, from a merchant with
    nothing new to settle on `day`: its next statement is carried forward."""
    busy = select(MerchantOrder.merchant_id).where(
        settleable(day - timedelta(days=1), shanghai_day_start(day), settings.refund_window_days)
    )
    line = await session.scalar(
        select(OrderLine)
        .join(SettlementLine, SettlementLine.merchant_order_id == OrderLine.merchant_order_id)
        .join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            MerchantOrder.merchant_id.not_in(busy),
            OrderLine.refunded_quantity == 0,
            Order.payment_method == PaymentMethod.bank_transfer,
            Order.status == OrderStatus.completed,
        )
        .order_by(OrderLine.line_total_fen.desc())
        .limit(1)
    )
    if line is None:
        return
    order = await session.get(Order, line.order_id)
    assert order is not None
    buyer = await session.get(User, order.buyer_id)
    assert buyer is not None
    refund = await request_refund(
        session,
        buyer,
        order.id,
        RefundCreate.model_validate(
            {
                "lines": [{"order_line_id": line.id, "quantity": line.quantity}],
                "reason": "收到后发现品质问题，协商退款",
            }
        ),
    )
    await approve_refund(session, admin, refund.id)
    await settle_with_provider(session, None, refund.id)
