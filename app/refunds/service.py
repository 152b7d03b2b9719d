"""Refunds: asking, deciding, and the approval that makes a refund owed to the buyer.

A refund moves in two steps. Approval (one transaction, under the order lock) takes effect on our
side: refunded quantities, unshipped units back in stock, the merchant's payable and commission
reduced, the money moved to `refunds_in_transit`. Returning the money afterwards (Stripe, or an
admin's bank transfer) is `app.refunds.provider`. From its approval on, a refund counts for
settlement and statistics whatever becomes of the payout: `approved`, `failed` and `succeeded`
are all owed to the buyer, never back to the merchant.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.errors import Forbidden
from app.core.money import apply_bps
from app.core.time import utcnow
from app.ledger.service import Leg, post
from app.models import (
    LedgerAccount,
    LedgerKind,
    MerchantOrder,
    MerchantOrderStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Product,
    Refund,
    RefundKind,
    RefundLine,
    RefundStatus,
    Role,
    User,
)
from app.orders.errors import InvalidTransition
from app.orders.lifecycle import complete_order_if_done, lock_order, restock_lines
from app.orders.service import get_visible_order
from app.refunds.errors import (
    InvalidRefundLine,
    OrderNotRefundable,
    RefundExceedsPurchase,
    RefundNotFound,
    RefundSpansMerchants,
)
from app.refunds.schemas import RefundCreate
from app.statistics.recording import record_refund

REFUNDABLE = (OrderStatus.paid, OrderStatus.completed)
FIRST_RETRY_AFTER = timedelta(minutes=1)
"""An approved refund is the jobs' once this long has passed without the provider's answer."""


async def succeeded_payment(session: AsyncSession, order_id: uuid.UUID) -> Payment | None:
    return await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.succeeded)
        .order_by(Payment.succeeded_at)
        .limit(1)
    )


async def _asked_lines(
    session: AsyncSession, order_id: uuid.UUID, data: RefundCreate
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, OrderLine], uuid.UUID]:
    """The quantities asked per line, the lines themselves and their one merchant order; 422
    `invalid_refund_line` for a line of another order, `refund_spans_merchants` for two."""
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    for line in data.lines:
        wanted[line.order_line_id] += line.quantity
    lines = {
        line.id: line
        for line in await session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == order_id, OrderLine.id.in_(list(wanted)))
            .execution_options(populate_existing=True)
        )
    }
    for index, asked in enumerate(data.lines):
        if asked.order_line_id not in lines:
            raise InvalidRefundLine(
                f"Line {asked.order_line_id} is not a line of this order.",
                loc=("body", "lines", index, "order_line_id"),
                extra={"order_line_id": str(asked.order_line_id)},
            )
    merchant_orders = {line.merchant_order_id for line in lines.values()}
    if len(merchant_orders) != 1:
        first = lines[data.lines[0].order_line_id].merchant_order_id
        index = next(
            i
            for i, asked in enumerate(data.lines)
            if lines[asked.order_line_id].merchant_order_id != first
        )
        raise RefundSpansMerchants(
            "A refund covers lines of one merchant; ask once per merchant.",
            loc=("body", "lines", index, "order_line_id"),
        )
    return wanted, lines, merchant_orders.pop()


async def request_refund(
    session: AsyncSession, buyer: User, order_id: uuid.UUID, data: RefundCreate
) -> Refund:
    """A buyer asks for lines of one merchant order back. Locks the order.

    409 refund_exceeds_purchase when a quantity is more than bought less what was refunded or is
    awaiting a decision; 422 for a line of another order or lines of two merchants.
    """
    if buyer.role != Role.buyer:
        raise Forbidden("Only the buyer asks for a refund.")
    await get_visible_order(session, buyer, order_id)
    order = await lock_order(session, order_id)
    if order.status not in REFUNDABLE:
        raise OrderNotRefundable(f"An order that is {order.status} cannot be refunded.")
    payment = await succeeded_payment(session, order.id)
    if payment is None:  # pragma: no cover - a paid order always has one
        raise OrderNotRefundable("This order has no captured payment.")

    wanted, lines, merchant_order_id = await _asked_lines(session, order.id, data)
    mo = await session.get(MerchantOrder, merchant_order_id)
    assert mo is not None
    if mo.status == MerchantOrderStatus.cancelled:
        raise OrderNotRefundable("That part of the order was cancelled and refunded already.")

    awaiting = await _awaiting_quantities(session, list(wanted))
    amount = 0
    for line_id, quantity in wanted.items():
        bought = lines[line_id]
        left = bought.quantity - bought.refunded_quantity - awaiting.get(line_id, 0)
        if quantity > left:
            raise RefundExceedsPurchase(
                f"Only {max(left, 0)} of {bought.name} can still be refunded.",
                extra={"order_line_id": str(line_id), "refundable_quantity": max(left, 0)},
            )
        amount += bought.unit_price_fen * quantity

    refund = Refund(
        order_id=order.id,
        payment_id=payment.id,
        merchant_order_id=merchant_order_id,
        kind=RefundKind.requested,
        status=RefundStatus.requested,
        amount_fen=amount,
        reason=data.reason,
        requested_by=buyer.id,
    )
    session.add(refund)
    await session.flush()
    for line_id, quantity in wanted.items():
        session.add(
            RefundLine(
                refund_id=refund.id,
                order_line_id=line_id,
                quantity=quantity,
                amount_fen=lines[line_id].unit_price_fen * quantity,
            )
        )
    await session.flush()
    return refund


async def _awaiting_quantities(
    session: AsyncSession, line_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(RefundLine.order_line_id, RefundLine.quantity)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(RefundLine.order_line_id.in_(line_ids), Refund.status == RefundStatus.requested)
    )
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for line_id, quantity in rows:
        totals[line_id] += quantity
    return totals


async def refund_merchant_ids(session: AsyncSession, refund: Refund) -> set[uuid.UUID]:
    """The merchants a refund concerns: its merchant order's, or (a whole-order refund) every
    merchant of the order."""
    query = select(MerchantOrder.merchant_id)
    if refund.merchant_order_id is not None:
        query = query.where(MerchantOrder.id == refund.merchant_order_id)
    else:
        query = query.where(MerchantOrder.order_id == refund.order_id)
    return set(await session.scalars(query))


async def load_refund_for_decision(
    session: AsyncSession, user: User, refund_id: uuid.UUID, *, admins_only: bool = False
) -> Refund:
    """The refund, if `user` may act on it: an admin, or (unless `admins_only`) a member of the
    refund's merchant.

    API.md's rule: 404 `refund_not_found` for who may not see it (another buyer, a member of
    another merchant); 403 for who sees it but may not act (the order's buyer, a member of the
    merchant on an admin's action, an official).
    """
    refund = await session.get(Refund, refund_id)
    if refund is None:
        raise RefundNotFound("No such refund.")
    if user.role == Role.admin:
        return refund
    if user.role == Role.buyer:
        order = await session.get(Order, refund.order_id)
        if order is None or order.buyer_id != user.id:
            raise RefundNotFound("No such refund.")
        raise Forbidden("The buyer does not decide its own refund.")
    if user.role == Role.merchant:
        if user.merchant_id not in await refund_merchant_ids(session, refund):
            raise RefundNotFound("No such refund.")
        if admins_only:
            raise Forbidden("Only an admin does this.")
        return refund
    raise Forbidden("Refunds are decided by the merchant or an admin.")


async def _move_money(
    session: AsyncSession,
    order: Order,
    refund: Refund,
    merchant_orders: dict[uuid.UUID, MerchantOrder],
    by_mo: dict[uuid.UUID, int],
    now: datetime,
) -> None:
    """The refund's money per merchant order: payables reduced, commission recomputed on gross
    less refunds, both posted; a merchant order refunded in full before shipping is cancelled."""
    rate = order.commission_rate_bps or 0
    legs = [Leg(LedgerAccount.refunds_in_transit, -refund.amount_fen)]
    commission_legs: list[Leg] = []
    for mo_id, amount in by_mo.items():
        mo = merchant_orders[mo_id]
        mo.refunded_fen += amount
        legs.append(Leg(LedgerAccount.merchant_payable, amount, mo.merchant_id, mo.id))
        commission = apply_bps(mo.subtotal_fen - mo.refunded_fen, rate)
        delta = commission - mo.commission_fen
        mo.commission_fen = commission
        commission_legs += [
            Leg(LedgerAccount.merchant_payable, delta, mo.merchant_id, mo.id),
            Leg(LedgerAccount.platform_commission, -delta, mo.merchant_id, mo.id),
        ]
        if mo.refunded_fen == mo.subtotal_fen and mo.status == MerchantOrderStatus.paid:
            mo.status = MerchantOrderStatus.cancelled  # nothing left to ship
            mo.cancelled_at = now
    if sum(by_mo.values()) != refund.amount_fen:  # pragma: no cover - a bug, never input
        raise AssertionError("refund lines do not add up to the refund")
    await post(
        session,
        LedgerKind.refund_approved,
        legs,
        order_id=order.id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
    )
    await post(
        session,
        LedgerKind.commission_adjusted,
        commission_legs,
        order_id=order.id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
    )


async def apply_refund(
    session: AsyncSession,
    order: Order,
    refund: Refund,
    quantities: dict[uuid.UUID, int],
    *,
    restock: bool,
) -> None:
    """Our side of an approved refund (the caller holds the order lock): quantities, stock of
    unshipped units, merchant payables and commission, the ledger, and the order's status."""
    now = utcnow()
    lines = {
        line.id: line
        for line in await session.scalars(
            select(OrderLine)
            .where(OrderLine.id.in_(list(quantities)))
            .execution_options(populate_existing=True)
        )
    }
    merchant_orders = {
        mo.id: mo
        for mo in await session.scalars(
            select(MerchantOrder)
            .where(MerchantOrder.order_id == order.id)
            .execution_options(populate_existing=True)
        )
    }
    by_mo: dict[uuid.UUID, int] = defaultdict(int)
    back: dict[uuid.UUID, int] = defaultdict(int)
    for line_id, quantity in quantities.items():
        line = lines[line_id]
        line.refunded_quantity += quantity
        by_mo[line.merchant_order_id] += line.unit_price_fen * quantity
        mo = merchant_orders[line.merchant_order_id]
        if mo.status in (MerchantOrderStatus.paid, MerchantOrderStatus.pending_payment):
            back[line.product_id] += quantity
    if restock:
        await restock_lines(session, back)
    for product_id in sorted(back):
        await session.execute(
            update(Product)
            .where(Product.id == product_id, Product.sold_units >= back[product_id])
            .values(sold_units=Product.sold_units - back[product_id])
            .execution_options(synchronize_session=False)
        )

    await _move_money(session, order, refund, merchant_orders, by_mo, now)
    order.refunded_fen += refund.amount_fen
    refund.status = RefundStatus.approved
    refund.decided_at = refund.decided_at or now
    # If the request dies before the provider is asked, the jobs take it from here.
    refund.next_attempt_at = now + FIRST_RETRY_AFTER
    if order.refunded_fen == order.total_fen and order.status in REFUNDABLE:
        order.status = OrderStatus.refunded
    await session.flush()
    await record_refund(session, order, quantities)
    await complete_order_if_done(session, order.id)


async def approve_refund(session: AsyncSession, user: User, refund_id: uuid.UUID) -> Refund:
    """requested → approved (our side). The caller then settles it with the provider."""
    refund = await load_refund_for_decision(session, user, refund_id)
    order = await lock_order(session, refund.order_id)
    await session.refresh(refund)
    if refund.status == RefundStatus.approved:
        payment = await session.get(Payment, refund.payment_id)
        if payment is not None and payment.provider == PaymentMethod.stripe:
            return refund  # approved before, Stripe not reached yet: settle again
        raise InvalidTransition("This refund is approved; it awaits the bank transfer back.")
    if refund.status != RefundStatus.requested:
        raise InvalidTransition(f"A refund that is {refund.status} cannot be approved.")
    quantities = {
        rl.order_line_id: rl.quantity
        for rl in await session.scalars(select(RefundLine).where(RefundLine.refund_id == refund.id))
    }
    refund.decided_by = user.id
    await apply_refund(session, order, refund, quantities, restock=True)
    await record(
        session,
        actor_id=user.id,
        action="refund.approved",
        subject_type="refund",
        subject_id=refund.id,
        detail={"order_id": str(order.id), "amount_fen": refund.amount_fen},
    )
    return refund


async def reject_refund(
    session: AsyncSession, user: User, refund_id: uuid.UUID, reason: str
) -> Refund:
    refund = await load_refund_for_decision(session, user, refund_id)
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    if refund.status != RefundStatus.requested:
        raise InvalidTransition(f"A refund that is {refund.status} cannot be rejected.")
    refund.status = RefundStatus.rejected
    refund.reject_reason = reason
    refund.decided_by = user.id
    refund.decided_at = utcnow()
    await session.flush()
    await record(
        session,
        actor_id=user.id,
        action="refund.rejected",
        subject_type="refund",
        subject_id=refund.id,
        detail={"order_id": str(refund.order_id), "reason": reason},
    )
    return refund


async def refund_whole_payment(
    session: AsyncSession, order: Order, payment: Payment, reason: str
) -> Refund:
    """A payment that arrived for an order that is no longer awaiting it goes back in full.
    The caller holds the order lock and has marked the payment succeeded."""
    refund = Refund(
        order_id=order.id,
        payment_id=payment.id,
        merchant_order_id=None,
        kind=RefundKind.late_payment,
        status=RefundStatus.approved,
        amount_fen=payment.amount_fen,
        reason=reason,
        decided_at=utcnow(),
        next_attempt_at=utcnow() + FIRST_RETRY_AFTER,
    )
    session.add(refund)
    await session.flush()
    await post(
        session,
        LedgerKind.late_payment_captured,
        [
            Leg(LedgerAccount.platform_cash, payment.amount_fen),
            Leg(LedgerAccount.refunds_in_transit, -payment.amount_fen),
        ],
        order_id=order.id,
        payment_id=payment.id,
        refund_id=refund.id,
    )
    return refund
