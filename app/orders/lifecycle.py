"""The order lifecycle that involves no payment provider: paying, cancelling, shipping,
receiving, completing.

Every function that changes an order first locks the order row (`lock_order`), so operations on
one order run one at a time on PostgreSQL (SQLite serialises all writers anyway). Nothing here
calls the network.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import Select, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import refuse_official
from app.core.config import Settings
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
    Product,
    Role,
    User,
)
from app.orders.errors import (
    InvalidTransition,
    MerchantOrderNotFound,
    OrderNotFound,
)
from app.statistics.recording import record_payment

OPEN_ORDER_STATUSES = (OrderStatus.pending_payment, OrderStatus.paid)


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Order:
    """The order row, locked for this transaction (FOR UPDATE on PostgreSQL)."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise OrderNotFound("No such order.")
    return order


# Lifecycle without a provider -------------------------------------------------------------------


async def restock_lines(session: AsyncSession, quantities: dict[uuid.UUID, int]) -> None:
    """Return units to stock, in product-id order."""
    for product_id in sorted(quantities):
        if quantities[product_id] > 0:
            await session.execute(
                update(Product)
                .where(Product.id == product_id)
                .values(stock=Product.stock + quantities[product_id])
                .execution_options(synchronize_session=False)
            )


async def mark_paid(
    session: AsyncSession, order: Order, payment: Payment, settings: Settings
) -> bool:
    """Record the order as paid by `payment` and post the money to the ledger.

    The caller holds the order lock. Returns False (and changes nothing) if the order is not
    awaiting payment: the caller then refunds the payment in full.
    """
    if order.status != OrderStatus.pending_payment:
        return False
    now = utcnow()
    rate = settings.commission_rate_bps
    order.status = OrderStatus.paid
    order.paid_at = now
    order.commission_rate_bps = rate
    merchant_orders = list(
        await session.scalars(select(MerchantOrder).where(MerchantOrder.order_id == order.id))
    )
    legs = [Leg(LedgerAccount.platform_cash, payment.amount_fen)]
    commission_legs: list[Leg] = []
    for mo in merchant_orders:
        mo.status = MerchantOrderStatus.paid
        mo.commission_fen = apply_bps(mo.subtotal_fen, rate)
        legs.append(Leg(LedgerAccount.merchant_payable, -mo.subtotal_fen, mo.merchant_id, mo.id))
        commission_legs += [
            Leg(LedgerAccount.merchant_payable, mo.commission_fen, mo.merchant_id, mo.id),
            Leg(LedgerAccount.platform_commission, -mo.commission_fen, mo.merchant_id, mo.id),
        ]
    await post(session, LedgerKind.payment_captured, legs, order_id=order.id, payment_id=payment.id)
    await post(
        session, LedgerKind.commission, commission_legs, order_id=order.id, payment_id=payment.id
    )
    sold = (
        await session.execute(
            select(OrderLine.product_id, OrderLine.quantity).where(OrderLine.order_id == order.id)
        )
    ).all()
    for product_id, quantity in sorted(sold):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(sold_units=Product.sold_units + quantity)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    await record_payment(session, order, settings.east_region_codes, settings.west_region_codes)
    return True


def _assert_shippable_statuses(merchant_orders: list[MerchantOrder]) -> None:
    for mo in merchant_orders:
        if mo.status in (MerchantOrderStatus.shipped, MerchantOrderStatus.completed):
            raise InvalidTransition(
                "Part of this order has already shipped; ask for a refund instead."
            )


async def cancel_order_in_db(session: AsyncSession, order: Order, reason: str) -> int:
    """Cancel an unshipped order: stock back, merchant orders cancelled. The caller holds the
    order lock and deals with payments. Returns the money to refund."""
    if order.status not in OPEN_ORDER_STATUSES:
        raise InvalidTransition(f"An order that is {order.status} cannot be cancelled.")
    merchant_orders = list(
        await session.scalars(select(MerchantOrder).where(MerchantOrder.order_id == order.id))
    )
    _assert_shippable_statuses(merchant_orders)
    now = utcnow()
    lines = (
        await session.execute(
            select(OrderLine.product_id, OrderLine.quantity, OrderLine.refunded_quantity).where(
                OrderLine.order_id == order.id
            )
        )
    ).all()
    # Units already refunded went back to stock when their refund was approved.
    back: dict[uuid.UUID, int] = defaultdict(int)
    for product_id, quantity, refunded in lines:
        back[product_id] += quantity - refunded
    await restock_lines(session, back)
    if order.status == OrderStatus.paid:
        # Paid units were counted as sold: a cancellation takes them back out.
        for product_id in sorted(back):
            if back[product_id]:
                await session.execute(
                    update(Product)
                    .where(Product.id == product_id, Product.sold_units >= back[product_id])
                    .values(sold_units=Product.sold_units - back[product_id])
                    .execution_options(synchronize_session=False)
                )
    refund_due = order.total_fen - order.refunded_fen if order.status == OrderStatus.paid else 0
    for mo in merchant_orders:
        mo.status = MerchantOrderStatus.cancelled
        mo.cancelled_at = now
    order.status = OrderStatus.cancelled
    order.cancelled_at = now
    order.cancel_reason = reason
    await session.flush()
    return refund_due


async def get_merchant_order_for_member(
    session: AsyncSession, user: User, merchant_order_id: uuid.UUID
) -> MerchantOrder:
    mo = await session.scalar(
        select(MerchantOrder)
        .where(MerchantOrder.id == merchant_order_id)
        .execution_options(populate_existing=True)
    )
    if mo is None:
        raise MerchantOrderNotFound("No such merchant order.")
    if user.role == Role.admin:
        return mo
    if user.role != Role.merchant:
        raise Forbidden("Only the merchant's members ship its orders.")
    if user.merchant_id != mo.merchant_id:
        raise MerchantOrderNotFound("No such merchant order.")
    return mo


async def _merchant_order_seen_by(
    session: AsyncSession, user: User, merchant_order_id: uuid.UUID
) -> MerchantOrder:
    """The merchant order if `user` sees it: an admin, its merchant's members, the order's
    buyer; officials 403; anyone else gets `404 merchant_order_not_found`."""
    refuse_official(user.role)
    row = (
        await session.execute(
            select(MerchantOrder, Order.buyer_id)
            .join(Order, Order.id == MerchantOrder.order_id)
            .where(MerchantOrder.id == merchant_order_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is not None:
        mo, buyer_id = row
        if (
            user.role == Role.admin
            or (user.role == Role.merchant and user.merchant_id == mo.merchant_id)
            or (user.role == Role.buyer and buyer_id == user.id)
        ):
            return mo
    raise MerchantOrderNotFound("No such merchant order.")


async def ship_merchant_order(
    session: AsyncSession, user: User, merchant_order_id: uuid.UUID, carrier: str, tracking_no: str
) -> MerchantOrder:
    """paid → shipped, by a member of the merchant. Locks the order. Whoever sees the merchant
    order but is not its merchant's member (its buyer, an admin) gets 403; anyone else 404."""
    mo = await _merchant_order_seen_by(session, user, merchant_order_id)
    if not (user.role == Role.merchant and user.merchant_id == mo.merchant_id):
        raise Forbidden("Only the merchant's members ship its orders.")
    await lock_order(session, mo.order_id)
    await session.refresh(mo)
    if mo.status != MerchantOrderStatus.paid:
        raise InvalidTransition(f"A merchant order that is {mo.status} cannot be shipped.")
    mo.status = MerchantOrderStatus.shipped
    mo.carrier = carrier
    mo.tracking_no = tracking_no
    mo.shipped_at = utcnow()
    await session.flush()
    return mo


async def complete_order_if_done(session: AsyncSession, order_id: uuid.UUID) -> None:
    """A paid order completes when each merchant order is completed or was cancelled."""
    statuses = set(
        await session.scalars(
            select(MerchantOrder.status).where(MerchantOrder.order_id == order_id)
        )
    )
    done = {MerchantOrderStatus.completed, MerchantOrderStatus.cancelled}
    if statuses <= done and MerchantOrderStatus.completed in statuses:
        now = utcnow()
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.paid)
            .values(status=OrderStatus.completed, completed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


async def _complete(session: AsyncSession, mo: MerchantOrder) -> None:
    mo.status = MerchantOrderStatus.completed
    mo.completed_at = utcnow()
    await session.flush()
    await complete_order_if_done(session, mo.order_id)


async def confirm_receipt(
    session: AsyncSession, user: User, merchant_order_id: uuid.UUID
) -> MerchantOrder:
    """shipped → completed, by the buyer; the order completes with its last merchant order.
    Whoever sees the merchant order but is not its buyer (its merchant's members, an admin) gets
    403; anyone else 404."""
    mo = await _merchant_order_seen_by(session, user, merchant_order_id)
    if user.role != Role.buyer:
        raise Forbidden("Only the buyer confirms receipt.")
    await lock_order(session, mo.order_id)
    await session.refresh(mo)
    if mo.status != MerchantOrderStatus.shipped:
        raise InvalidTransition(f"A merchant order that is {mo.status} cannot be received.")
    await _complete(session, mo)
    return mo


async def auto_complete_one(session: AsyncSession, merchant_order_id: uuid.UUID) -> bool:
    """Complete a merchant order that is still shipped (the job). False if it changed."""
    mo = await session.get(MerchantOrder, merchant_order_id)
    if mo is None:
        return False
    await lock_order(session, mo.order_id)
    await session.refresh(mo)
    if mo.status != MerchantOrderStatus.shipped:
        return False
    await _complete(session, mo)
    return True


def due_for_completion(days: float) -> Select[uuid.UUID]:
    cutoff = utcnow() - timedelta(days=days)
    return select(MerchantOrder.id).where(
        and_(
            MerchantOrder.status == MerchantOrderStatus.shipped,
            MerchantOrder.shipped_at <= cutoff,
        )
    )
