"""The scheduled jobs: payment timeouts, automatic completion, refund retries, key purge, and
the weekly settlement run.

Each unit of work (one order, one merchant order, one refund) is a transaction of its own. Jobs
are safe to run twice and on several machines at once: on PostgreSQL a worker claims a row with
`FOR UPDATE SKIP LOCKED`, so two workers never take the same one, and every step re-checks the
row's state under its lock before acting; on SQLite writers are serialised by the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database
from app.core.idempotency import purge_expired
from app.core.ratelimit import purge_stale_counters
from app.core.sql import for_update_skip_locked
from app.core.time import utcnow
from app.integrations.stripe import PaymentProviderUnavailable, StripeGateway
from app.models import MerchantOrder, MerchantOrderStatus, Order, OrderStatus, Refund, RefundStatus
from app.orders.lifecycle import auto_complete_one
from app.payments.service import cancel_order
from app.refunds.provider import settle_with_provider
from app.settlement.service import run_settlement, weekly_as_of, weekly_period_end

logger = logging.getLogger("shanhai.jobs")

BATCH = 500  # at most this many units per job per run; the next run takes the rest


@dataclass
class JobContext:
    db: Database
    settings: Settings
    gateway: StripeGateway | None
    done: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    """What time it is (the weekly settlement asks; tests move it)."""


async def _claim_next(session: AsyncSession, query: Select[uuid.UUID]) -> uuid.UUID | None:
    """One due row's id, its order's row locked for this transaction and skipped by other
    workers. Every query joins `orders` and the lock is taken on the order, never on the unit's
    own row: requests lock the order first and then write the merchant order or refund, so a job
    that held the unit's row while waiting for the order would deadlock with them."""
    return await session.scalar(for_update_skip_locked(query.limit(1), of=Order))


async def _each(
    ctx: JobContext,
    name: str,
    query: Callable[[], Select[uuid.UUID]],
    work: Callable[[AsyncSession, uuid.UUID], Awaitable[bool]],
) -> int:
    count = 0
    skipped: set[uuid.UUID] = set()
    for _ in range(BATCH):
        async with ctx.db.sessionmaker() as session:
            q = query()
            if skipped:
                q = q.where(q.selected_columns[0].not_in(skipped))
            unit = await _claim_next(session, q)
            if unit is None:
                break
            try:
                if await work(session, unit):
                    count += 1
                await session.commit()
            except PaymentProviderUnavailable:
                await session.rollback()
                skipped.add(unit)  # the provider is down: try this one on the next run
            except Exception:
                await session.rollback()
                skipped.add(unit)
                logger.exception("job step failed", extra={"job": name, "unit": str(unit)})
    ctx.done[name] = count
    return count


async def expire_unpaid_orders(ctx: JobContext) -> int:
    """Cancel orders past their payment deadline (cancel_reason `payment_timeout`): stock back,
    open PaymentIntents cancelled."""

    def due() -> Select[uuid.UUID]:
        return (
            select(Order.id)
            .where(Order.status == OrderStatus.pending_payment, Order.expires_at <= utcnow())
            .order_by(Order.expires_at)
        )

    async def work(session: AsyncSession, order_id: uuid.UUID) -> bool:
        await cancel_order(
            session, ctx.gateway, order_id, "payment_timeout", None, only_if_expired=True
        )
        order = await session.get(Order, order_id, populate_existing=True)
        return order is not None and order.status == OrderStatus.cancelled

    return await _each(ctx, "payment_timeouts", due, work)


async def complete_shipped(ctx: JobContext) -> int:
    """Complete merchant orders shipped `AUTO_COMPLETE_DAYS` ago (the setting in force now)."""

    def due() -> Select[uuid.UUID]:
        cutoff = utcnow() - timedelta(days=ctx.settings.auto_complete_days)
        return (
            select(MerchantOrder.id)
            .join(Order, Order.id == MerchantOrder.order_id)
            .where(
                MerchantOrder.status == MerchantOrderStatus.shipped,
                MerchantOrder.shipped_at <= cutoff,
            )
            .order_by(MerchantOrder.shipped_at)
        )

    async def work(session: AsyncSession, merchant_order_id: uuid.UUID) -> bool:
        return await auto_complete_one(session, merchant_order_id)

    return await _each(ctx, "auto_complete", due, work)


async def retry_refunds(ctx: JobContext) -> int:
    """Send again the Stripe refunds not yet confirmed (`approved`) or refused (`failed`) whose
    `next_attempt_at` has come: backoff of 1, 2, 4 … minutes up to 6 hours, for at most
    `AUTOMATIC_ATTEMPTS` attempts. Bank refunds wait for an admin's `mark-paid`."""

    def due() -> Select[uuid.UUID]:
        return (
            select(Refund.id)
            .join(Order, Order.id == Refund.order_id)
            .where(
                Refund.status.in_([RefundStatus.approved, RefundStatus.failed]),
                Refund.next_attempt_at <= utcnow(),
            )
            .order_by(Refund.next_attempt_at)
        )

    async def work(session: AsyncSession, refund_id: uuid.UUID) -> bool:
        refund = await settle_with_provider(session, ctx.gateway, refund_id, retry_failed=True)
        return refund.status == RefundStatus.succeeded

    return await _each(ctx, "refund_retries", due, work)


async def purge_idempotency_keys(ctx: JobContext) -> int:
    async with ctx.db.sessionmaker() as session:
        count = await purge_expired(session)
        await session.commit()
    ctx.done["idempotency_purge"] = count
    return count


async def purge_rate_limits(ctx: JobContext) -> int:
    async with ctx.db.sessionmaker() as session:
        count = await purge_stale_counters(session)
        await session.commit()
    ctx.done["rate_limit_purge"] = count
    return count


async def settle_weekly(ctx: JobContext) -> int:
    """On `SETTLEMENT_WEEKDAY` (Asia/Shanghai), settle the period ending yesterday, as of the
    start of today: every run that day, on any machine, sees the same settleable orders, and a
    merchant settled for the period (by this job or an admin) is left alone. One transaction."""
    now = ctx.clock()
    period_end = weekly_period_end(now, ctx.settings.settlement_weekday)
    count = 0
    if period_end is not None:
        async with ctx.db.sessionmaker() as session:
            result = await run_settlement(
                session,
                period_end=period_end,
                now=weekly_as_of(now),
                refund_window_days=ctx.settings.refund_window_days,
                actor_id=None,
            )
            await session.commit()
        count = len(result.settlement_ids)
    ctx.done["settlement"] = count
    return count


JOBS: list[Callable[[JobContext], Awaitable[int]]] = [
    expire_unpaid_orders,
    complete_shipped,
    retry_refunds,
    purge_idempotency_keys,
    purge_rate_limits,
    settle_weekly,
]


async def run_once(ctx: JobContext) -> dict[str, int]:
    """Run every job once; returns how many units each one did."""
    for job in JOBS:
        await job(ctx)
    logger.info("jobs ran", extra={"done": ctx.done})
    return dict(ctx.done)


async def run_forever(ctx: JobContext, interval_seconds: float) -> None:
    while True:
        try:
            await run_once(ctx)
        except Exception:
            logger.exception("jobs run failed")
        await asyncio.sleep(interval_seconds)
