"""Order lists: keyset pages, newest first, and each page loaded in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden
from app.core.pagination import Page, decode_cursor, encode_cursor, keyset_before
from app.merchants.errors import MerchantNotFound
from app.models import (
    Merchant,
    MerchantOrder,
    MerchantOrderStatus,
    MerchantStatus,
    Order,
    OrderLine,
    OrderStatus,
    Role,
    User,
)
from app.orders.schemas import (
    MerchantOrderListItem,
    OrderLineRead,
    OrderRead,
)
from app.orders.service import order_line_read, orders_query, read_orders, shipping_address


def _position(cursor: str | None, kind: str) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    created_at, row_id = decode_cursor(cursor, kind, datetime, uuid.UUID)
    return created_at, row_id


async def list_orders(
    session: AsyncSession,
    user: User,
    status: OrderStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[OrderRead]:
    """A buyer's own orders, or (admin) everyone's; newest first."""
    query = orders_query(user, status)
    position = _position(cursor, "orders")
    if position is not None:
        query = query.where(keyset_before(Order.created_at, Order.id, position))
    orders = list(
        await session.scalars(
            query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(orders) > limit:
        orders = orders[:limit]
        last = orders[-1]
        next_cursor = encode_cursor("orders", [last.created_at.isoformat(), str(last.id)])
    return Page(items=await read_orders(session, orders), next_cursor=next_cursor)


async def list_merchant_orders(
    session: AsyncSession,
    user: User,
    merchant_id: uuid.UUID,
    status: MerchantOrderStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[MerchantOrderListItem]:
    """A merchant's parts of orders, with the order number and shipping address; members of
    that merchant and admins only."""
    if not (
        user.role == Role.admin or (user.role == Role.merchant and user.merchant_id == merchant_id)
    ):
        # A merchant the caller may not see is 404; an approved (public) one is 403.
        approved = await session.scalar(
            select(Merchant.id).where(
                Merchant.id == merchant_id, Merchant.status == MerchantStatus.approved
            )
        )
        if approved is None:
            raise MerchantNotFound("No such merchant.")
        raise Forbidden("Only this merchant's members and admins see its orders.")
    query = (
        select(MerchantOrder, Order)
        .join(Order, Order.id == MerchantOrder.order_id)
        .where(MerchantOrder.merchant_id == merchant_id)
    )
    if status is not None:
        query = query.where(MerchantOrder.status == status)
    position = _position(cursor, "merchant_orders")
    if position is not None:
        query = query.where(keyset_before(MerchantOrder.created_at, MerchantOrder.id, position))
    rows = (
        await session.execute(
            query.order_by(MerchantOrder.created_at.desc(), MerchantOrder.id.desc()).limit(
                limit + 1
            )
        )
    ).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = encode_cursor("merchant_orders", [last.created_at.isoformat(), str(last.id)])
    return Page(items=await _merchant_order_items(session, rows), next_cursor=next_cursor)


async def _merchant_order_items(
    session: AsyncSession, rows: Sequence[Row[MerchantOrder, Order]]
) -> list[MerchantOrderListItem]:
    """List items of (merchant order, order) rows, with their lines: one more query."""
    lines: dict[uuid.UUID, list[OrderLineRead]] = defaultdict(list)
    if rows:
        for line in await session.scalars(
            select(OrderLine)
            .where(OrderLine.merchant_order_id.in_([mo.id for mo, _ in rows]))
            .order_by(OrderLine.position)
        ):
            lines[line.merchant_order_id].append(order_line_read(line))
    return [
        MerchantOrderListItem(
            id=mo.id,
            order_id=mo.order_id,
            merchant_id=mo.merchant_id,
            status=mo.status,
            subtotal_fen=mo.subtotal_fen,
            refunded_fen=mo.refunded_fen,
            carrier=mo.carrier,
            tracking_no=mo.tracking_no,
            shipped_at=mo.shipped_at,
            completed_at=mo.completed_at,
            lines=lines[mo.id],
            order_no=order.order_no,
            order_status=order.status,
            shipping_address=shipping_address(order),
            note=order.note,
            created_at=mo.created_at,
        )
        for mo, order in rows
    ]
