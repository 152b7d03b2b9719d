"""Reading refunds: those of some orders, and the refunds list (admins, a merchant's members)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.models import MerchantOrder, Refund, RefundLine, RefundStatus, Role, User
from app.refunds.schemas import RefundLineRead, RefundRead


async def refund_reads(session: AsyncSession, refund_rows: Sequence[Refund]) -> list[RefundRead]:
    """These refunds with their lines, in the given order: one query for the lines."""
    lines: dict[uuid.UUID, list[RefundLineRead]] = defaultdict(list)
    if refund_rows:
        for rl in await session.scalars(
            select(RefundLine).where(RefundLine.refund_id.in_([r.id for r in refund_rows]))
        ):
            lines[rl.refund_id].append(
                RefundLineRead(
                    order_line_id=rl.order_line_id, quantity=rl.quantity, amount_fen=rl.amount_fen
                )
            )
    return [RefundRead.from_model(refund, lines[refund.id]) for refund in refund_rows]


async def refunds_of_orders(
    session: AsyncSession, order_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[RefundRead]]:
    """The refunds of these orders with their lines, oldest first, by order id: two queries."""
    refund_rows = list(
        await session.scalars(
            select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.created_at)
        )
    )
    refunds: dict[uuid.UUID, list[RefundRead]] = defaultdict(list)
    for read in await refund_reads(session, refund_rows):
        refunds[read.order_id].append(read)
    return refunds


def _of_merchant(query: Select[Refund], merchant_id: uuid.UUID) -> Select[Refund]:
    """Refunds of the merchant's merchant orders, and whole-order refunds of orders it is in."""
    own_part = exists().where(
        MerchantOrder.id == Refund.merchant_order_id, MerchantOrder.merchant_id == merchant_id
    )
    in_order = exists().where(
        MerchantOrder.order_id == Refund.order_id, MerchantOrder.merchant_id == merchant_id
    )
    return query.where(or_(own_part, and_(Refund.merchant_order_id.is_(None), in_order)))


async def list_refunds(
    session: AsyncSession,
    user: User,
    *,
    status: RefundStatus | None,
    order_id: uuid.UUID | None,
    merchant_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[RefundRead]:
    """Refunds, newest first: admins see all; a merchant's members see their merchant's
    (`merchant_id` defaults to theirs; another merchant's is 403); others are 403."""
    if user.role == Role.merchant:
        if merchant_id is not None and merchant_id != user.merchant_id:
            raise Forbidden("A merchant's members list only their own merchant's refunds.")
        merchant_id = user.merchant_id
    elif user.role != Role.admin:
        raise Forbidden("Refunds are listed for admins and merchants' members.")
    query = select(Refund)
    if status is not None:
        query = query.where(Refund.status == status)
    if order_id is not None:
        query = query.where(Refund.order_id == order_id)
    if merchant_id is not None:
        query = _of_merchant(query, merchant_id)
    if cursor is not None:
        at, row_id = decode_cursor(cursor, "refunds", datetime, uuid.UUID)
        query = query.where(
            or_(Refund.created_at < at, and_(Refund.created_at == at, Refund.id < row_id))
        )
    rows = list(
        await session.scalars(
            query.order_by(Refund.created_at.desc(), Refund.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("refunds", [rows[-1].created_at, rows[-1].id])
    return Page(items=await refund_reads(session, rows), next_cursor=next_cursor)
