"""Reading refunds for the orders they belong to."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Refund, RefundLine
from app.refunds.schemas import RefundLineRead, RefundRead


async def refunds_of_orders(
    session: AsyncSession, order_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[RefundRead]]:
    """The refunds of these orders with their lines, oldest first, by order id: two queries."""
    refund_rows = list(
        await session.scalars(
            select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.created_at)
        )
    )
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
    refunds: dict[uuid.UUID, list[RefundRead]] = defaultdict(list)
    for refund in refund_rows:
        refunds[refund.order_id].append(RefundRead.from_model(refund, lines[refund.id]))
    return refunds
