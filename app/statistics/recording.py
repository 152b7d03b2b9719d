"""Keeping the statistics aggregates exact, in the transaction that moves the money.

`record_payment` runs when an order is marked paid, `record_refund` when a refund is approved
(buyer's refunds, cancellations of paid orders) and `record_refund_reversed` when the provider
refuses one and its approval is undone. Each reads the order's counted lines once and writes at
most four statements: the counted merchant orders (payment only), the sums at four grains, the
buyers' reference counts (RETURNING their new values) and the distinct-buyer counters that moved.
The caller holds the order lock and has flushed its changes to the lines.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import upsert_add
from app.core.time import SHANGHAI
from app.models import (
    Merchant,
    MerchantOrder,
    Order,
    OrderLine,
    StatsBuyer,
    StatsCounted,
    StatsPeriod,
)
from app.statistics.periods import PERIOD_GRAINS, Dimension, Grain, Indicator, period_of

SUM_KEYS = ("dimension", "grain", "period", "key")
BUYER_KEYS = (*SUM_KEYS, "buyer_id")
DimKey = tuple[Dimension, str]
_periods = cast(Table, StatsPeriod.__table__)
_buyers = cast(Table, StatsBuyer.__table__)


def indicator_for(buyer_region_code: str, east_region_codes: Sequence[str]) -> Indicator:
    """`purchased` when the buyer's region (frozen on the order) is the eastern county's."""
    return Indicator.purchased if buyer_region_code in east_region_codes else Indicator.helped_sold


def certified_on(
    cert_no: str | None, valid_from: date | None, valid_to: date | None, day: date
) -> bool:
    """A line counts only if its product's certificate (frozen on the line) covers the day."""
    if cert_no is None:
        return False
    return (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)


@dataclass(frozen=True, slots=True)
class CountedLine:
    id: uuid.UUID
    net_units: int
    unit_price_fen: int
    keys: tuple[DimKey, ...]


async def record_payment(
    session: AsyncSession, order: Order, east: Sequence[str], west: Sequence[str]
) -> None:
    """An order was just paid: its western merchant orders count, on the Shanghai day of
    `order.paid_at`, under the indicator of the buyer's frozen region."""
    assert order.paid_at is not None
    day = order.paid_at.astimezone(SHANGHAI).date()
    counted = [
        mo_id
        for mo_id, region in await session.execute(
            select(MerchantOrder.id, Merchant.region_code)
            .join(Merchant, Merchant.id == MerchantOrder.merchant_id)
            .where(MerchantOrder.order_id == order.id)
        )
        if region in west
    ]
    if not counted:
        return
    indicator = indicator_for(order.buyer_region_code, east)
    await session.execute(
        insert(StatsCounted),
        [
            {
                "merchant_order_id": mo_id,
                "order_id": order.id,
                "day": day.isoformat(),
                "indicator": indicator,
            }
            for mo_id in sorted(counted)
        ],
    )
    await _record(session, order, None)


async def record_refund(
    session: AsyncSession, order: Order, quantities: Mapping[uuid.UUID, int]
) -> None:
    """Units of lines were refunded (approved): they leave the period of the original payment."""
    await _record(session, order, {line_id: -q for line_id, q in quantities.items()})


async def record_refund_reversed(
    session: AsyncSession, order: Order, quantities: Mapping[uuid.UUID, int]
) -> None:
    """A refund the provider refused was undone: its units count again."""
    await _record(session, order, dict(quantities))


async def _counted_lines(
    session: AsyncSession, order: Order
) -> tuple[date | None, list[CountedLine]]:
    rows = (
        await session.execute(
            select(
                OrderLine.id,
                OrderLine.quantity - OrderLine.refunded_quantity,
                OrderLine.unit_price_fen,
                OrderLine.category_slug,
                OrderLine.assistance_class,
                OrderLine.origin_township,
                OrderLine.cert_no,
                OrderLine.cert_valid_from,
                OrderLine.cert_valid_to,
                MerchantOrder.merchant_id,
                StatsCounted.day,
                StatsCounted.indicator,
            )
            .join(StatsCounted, StatsCounted.merchant_order_id == OrderLine.merchant_order_id)
            .join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
            .where(StatsCounted.order_id == order.id)
        )
    ).all()
    if not rows:
        return None, []
    day = date.fromisoformat(rows[0].day)
    lines = [
        CountedLine(
            r[0],
            r[1],
            r.unit_price_fen,
            (
                (Dimension.total, ""),
                (Dimension.indicator, r.indicator),
                (Dimension.buyer_type, str(order.buyer_type)),
                (Dimension.buyer_region, order.buyer_region_code),
                (Dimension.product_class, str(r.assistance_class)),
                (Dimension.category, r.category_slug),
                (Dimension.merchant, str(r.merchant_id)),
                (Dimension.township, r.origin_township),
            ),
        )
        for r in rows
        if certified_on(r.cert_no, r.cert_valid_from, r.cert_valid_to, day)
    ]
    return day, lines


async def _record(
    session: AsyncSession, order: Order, changes: Mapping[uuid.UUID, int] | None
) -> None:
    """Add the lines' changes. `changes` maps a line to the change of its net units (None: every
    line is new, as at payment); the lines' current state is read from the database."""
    day, lines = await _counted_lines(session, order)
    if day is None or not lines:
        return
    sums: dict[DimKey, list[int]] = defaultdict(lambda: [0, 0])
    was: dict[DimKey, bool] = defaultdict(bool)
    now: dict[DimKey, bool] = defaultdict(bool)
    for line in lines:
        change = line.net_units if changes is None else changes.get(line.id, 0)
        for k in line.keys:
            sums[k][0] += change * line.unit_price_fen
            sums[k][1] += change
            was[k] |= line.net_units - change > 0
            now[k] |= line.net_units > 0
    orders = {k: int(now[k]) - int(was[k]) for k in sums}
    touched = sorted(k for k in sums if sums[k] != [0, 0] or orders[k])
    if not touched:
        return
    await session.execute(
        upsert_add(_periods, SUM_KEYS, ("amount_fen", "units", "order_count")).values(
            sorted(
                (
                    _sum_row(k, grain, day, sums[k][0], sums[k][1], orders[k], 0)
                    for k in touched
                    for grain in Grain
                ),
                key=_row_key,
            )
        )
    )
    moved = [k for k in touched if orders[k]]
    if moved:
        await _record_buyers(session, order.buyer_id, day, {k: orders[k] for k in moved})


async def _record_buyers(
    session: AsyncSession, buyer_id: uuid.UUID, day: date, deltas: Mapping[DimKey, int]
) -> None:
    """Move the buyer's reference counts; a count that left or reached 0 moves `buyer_count`."""
    rows = sorted(
        (
            {
                "dimension": dim,
                "grain": grain,
                "period": period_of(day, grain),
                "key": key,
                "buyer_id": buyer_id,
                "orders": delta,
            }
            for (dim, key), delta in deltas.items()
            for grain in PERIOD_GRAINS
        ),
        key=_row_key,
    )
    table = _buyers
    result = await session.execute(
        upsert_add(table, BUYER_KEYS, ("orders",))
        .values(rows)
        .returning(table.c.dimension, table.c.grain, table.c.period, table.c.key, table.c.orders)
    )
    flips: list[dict[str, Any]] = []
    for dim, grain, period, key, count in result.all():
        delta = deltas[(Dimension(dim), key)]
        if (delta > 0 and count == delta) or (delta < 0 and count == 0):
            flips.append(
                {
                    "dimension": dim,
                    "grain": grain,
                    "period": period,
                    "key": key,
                    "amount_fen": 0,
                    "units": 0,
                    "order_count": 0,
                    "buyer_count": 1 if delta > 0 else -1,
                }
            )
    if flips:
        await session.execute(
            upsert_add(_periods, SUM_KEYS, ("buyer_count",)).values(sorted(flips, key=_row_key))
        )


def _sum_row(
    k: DimKey, grain: Grain, day: date, amount: int, units: int, orders: int, buyers: int
) -> dict[str, Any]:
    return {
        "dimension": k[0],
        "grain": grain,
        "period": period_of(day, grain),
        "key": k[1],
        "amount_fen": amount,
        "units": units,
        "order_count": orders,
        "buyer_count": buyers,
    }


def _row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(row["dimension"]),
        str(row["grain"]),
        row["period"],
        row["key"],
        str(row.get("buyer_id", "")),
    )
