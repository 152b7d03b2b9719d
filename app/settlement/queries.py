"""Reading statements: who may see which, lists, and the statement as the API shows it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.models import (
    Merchant,
    MerchantOrder,
    Order,
    OrderLine,
    Role,
    Settlement,
    SettlementAdjustment,
    SettlementLine,
    SettlementStatus,
    User,
)
from app.settlement.errors import SettlementNotFound
from app.settlement.schemas import (
    SettledMerchantOrder,
    SettlementAdjustmentRead,
    SettlementLineItem,
    SettlementRead,
)


def readable(user: User) -> ColumnElement[bool]:
    """The statements `user` may see: an admin all, a merchant member its merchant's; anyone
    else may see none (403)."""
    if user.role == Role.admin:
        return true()
    if user.role == Role.merchant and user.merchant_id is not None:
        return Settlement.merchant_id == user.merchant_id
    raise Forbidden("Statements are read by admins and the merchant's members.")


async def get_visible(session: AsyncSession, user: User, settlement_id: uuid.UUID) -> Settlement:
    """The statement if `user` may see it; 404 for another merchant's (as for an unknown one)."""
    statement = await session.scalar(
        select(Settlement).where(Settlement.id == settlement_id, readable(user))
    )
    if statement is None:
        raise SettlementNotFound("No such settlement.")
    return statement


async def list_settlements(
    session: AsyncSession,
    user: User,
    *,
    merchant_id: uuid.UUID | None,
    status: SettlementStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[SettlementRead]:
    """Newest first; a merchant member's list holds only its own merchant's statements."""
    query = select(Settlement).where(readable(user))
    if merchant_id is not None:
        query = query.where(Settlement.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Settlement.status == status)
    if cursor is not None:
        position = decode_cursor(cursor, "settlements", datetime, uuid.UUID)
        query = query.where(
            or_(
                Settlement.created_at < position[0],
                and_(Settlement.created_at == position[0], Settlement.id < position[1]),
            )
        )
    rows = list(
        await session.scalars(
            query.order_by(Settlement.created_at.desc(), Settlement.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("settlements", [rows[-1].created_at, rows[-1].id])
    return Page(items=await read_settlements(session, rows), next_cursor=next_cursor)


async def read_settlements(
    session: AsyncSession, statements: Sequence[Settlement], *, with_lines: bool = False
) -> list[SettlementRead]:
    """The statements as the API shows them, in the order given (a few queries in all)."""
    ids = [s.id for s in statements]
    if not ids:
        return []
    merchants = await session.scalars(
        select(Merchant).where(Merchant.id.in_({s.merchant_id for s in statements}))
    )
    names = {m.id: m.name for m in merchants}
    settled = await _settled_orders(session, ids, with_lines)
    adjustments, carried_into = await _adjustments(session, ids)
    return [
        SettlementRead(
            id=s.id,
            merchant_id=s.merchant_id,
            merchant_name=names.get(s.merchant_id, ""),
            run_id=s.run_id,
            period_end=s.period_end,
            status=s.status,
            gross_fen=s.gross_fen,
            refunds_fen=s.refunds_fen,
            commission_fen=s.commission_fen,
            adjustments_fen=s.adjustments_fen,
            net_fen=s.net_fen,
            payout_method=s.payout_method,
            payout_reference=s.payout_reference,
            paid_at=s.paid_at,
            created_at=s.created_at,
            carried_into_id=carried_into.get(s.id),
            merchant_orders=settled.get(s.id, []),
            adjustments=adjustments.get(s.id, []),
        )
        for s in statements
    ]


async def _settled_orders(
    session: AsyncSession, ids: list[uuid.UUID], with_lines: bool
) -> dict[uuid.UUID, list[SettledMerchantOrder]]:
    rows = await session.execute(
        select(SettlementLine, Order.id, Order.order_no)
        .join(MerchantOrder, MerchantOrder.id == SettlementLine.merchant_order_id)
        .join(Order, Order.id == MerchantOrder.order_id)
        .where(SettlementLine.settlement_id.in_(ids))
        .order_by(SettlementLine.completed_at, SettlementLine.merchant_order_id)
    )
    found: dict[uuid.UUID, list[SettledMerchantOrder]] = defaultdict(list)
    by_mo: dict[uuid.UUID, SettledMerchantOrder] = {}
    for line, order_id, order_no in rows:
        item = SettledMerchantOrder(
            merchant_order_id=line.merchant_order_id,
            order_id=order_id,
            order_no=order_no,
            completed_at=line.completed_at,
            gross_fen=line.gross_fen,
            refunds_fen=line.refunds_fen,
            commission_fen=line.commission_fen,
            net_fen=line.net_fen,
            lines=[] if with_lines else None,
        )
        found[line.settlement_id].append(item)
        by_mo[line.merchant_order_id] = item
    if with_lines and by_mo:
        for ol in await session.scalars(
            select(OrderLine)
            .where(OrderLine.merchant_order_id.in_(list(by_mo)))
            .order_by(OrderLine.position, OrderLine.id)
        ):
            items = by_mo[ol.merchant_order_id].lines
            assert items is not None
            items.append(
                SettlementLineItem(
                    id=ol.id,
                    product_id=ol.product_id,
                    name=ol.name,
                    unit=ol.unit,
                    unit_price_fen=ol.unit_price_fen,
                    quantity=ol.quantity,
                    refunded_quantity=ol.refunded_quantity,
                    line_total_fen=ol.line_total_fen,
                )
            )
    return found


async def _adjustments(
    session: AsyncSession, ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[SettlementAdjustmentRead]], dict[uuid.UUID, uuid.UUID]]:
    rows = await session.execute(
        select(SettlementAdjustment, Order.order_no)
        .outerjoin(MerchantOrder, MerchantOrder.id == SettlementAdjustment.merchant_order_id)
        .outerjoin(Order, Order.id == MerchantOrder.order_id)
        .where(SettlementAdjustment.settlement_id.in_(ids))
        .order_by(SettlementAdjustment.kind, SettlementAdjustment.id)
    )
    found: dict[uuid.UUID, list[SettlementAdjustmentRead]] = defaultdict(list)
    for adj, order_no in rows:
        found[adj.settlement_id].append(
            SettlementAdjustmentRead(
                id=adj.id,
                kind=adj.kind,
                merchant_order_id=adj.merchant_order_id,
                order_no=order_no,
                source_settlement_id=adj.source_settlement_id,
                refunds_fen=adj.refunds_fen,
                commission_fen=adj.commission_fen,
                amount_fen=adj.amount_fen,
            )
        )
    carried_into = {
        source: into
        for source, into in await session.execute(
            select(
                SettlementAdjustment.source_settlement_id, SettlementAdjustment.settlement_id
            ).where(SettlementAdjustment.source_settlement_id.in_(ids))
        )
        if source is not None
    }
    return found, carried_into


async def statements_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> list[Settlement]:
    """The statements with these ids, in the order given."""
    if not ids:
        return []
    found = {
        s.id: s for s in await session.scalars(select(Settlement).where(Settlement.id.in_(ids)))
    }
    return [found[i] for i in ids]
