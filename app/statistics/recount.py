"""The statistics recounted from the order lines: the exact slow path of odd date ranges, the
rebuild of every aggregate, and the verification that the aggregates equal a recount.

`counted_lines` is the counting rule written once in SQL: lines of paid orders, of merchants
registered in the western county, whose certificate covers the Shanghai day of the payment,
with their net (paid less refunded) units and amount and every dimension's key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    FromClause,
    Integer,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    Uuid,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import shanghai_date, shanghai_day_text, uuid_text
from app.models import (
    Merchant,
    MerchantOrder,
    Order,
    OrderLine,
    StatsBuyer,
    StatsCounted,
    StatsPeriod,
)
from app.statistics.periods import PERIOD_GRAINS, Dimension, Grain, Indicator


@dataclass(frozen=True, slots=True)
class Figures:
    amount_fen: int = 0
    units: int = 0
    order_count: int = 0
    buyer_count: int = 0


def _indicator(east: Sequence[str]) -> ColumnElement[str]:
    return case(
        (Order.buyer_region_code.in_(list(east)), literal(Indicator.purchased.value)),
        else_=literal(Indicator.helped_sold.value),
    )


def counted_lines(
    east: Sequence[str], west: Sequence[str], start: date | None = None, end: date | None = None
) -> Subquery:
    """Every counted line (optionally paid within [start, end], Shanghai days)."""
    day = shanghai_date(Order.paid_at)
    net = OrderLine.quantity - OrderLine.refunded_quantity
    query = (
        select(
            OrderLine.order_id.label("order_id"),
            Order.buyer_id.label("buyer_id"),
            shanghai_day_text(Order.paid_at).label("day"),
            net.label("units"),
            (net * OrderLine.unit_price_fen).label("amount"),
            literal("", String).label(Dimension.total),
            _indicator(east).label(Dimension.indicator),
            cast(Order.buyer_type, String).label(Dimension.buyer_type),
            Order.buyer_region_code.label(Dimension.buyer_region),
            cast(OrderLine.assistance_class, String).label(Dimension.product_class),
            OrderLine.category_slug.label(Dimension.category),
            uuid_text(MerchantOrder.merchant_id).label(Dimension.merchant),
            OrderLine.origin_township.label(Dimension.township),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
        .join(Merchant, Merchant.id == MerchantOrder.merchant_id)
        .where(
            Order.paid_at.is_not(None),
            Merchant.region_code.in_(list(west)),
            OrderLine.cert_no.is_not(None),
            or_(OrderLine.cert_valid_from.is_(None), OrderLine.cert_valid_from <= day),
            or_(OrderLine.cert_valid_to.is_(None), OrderLine.cert_valid_to >= day),
        )
    )
    if start is not None:
        query = query.where(day >= start)
    if end is not None:
        query = query.where(day <= end)
    return query.subquery("counted")


def period_expr(day: ColumnElement[str], grain: Grain) -> ColumnElement[str]:
    """The period key of a `YYYY-MM-DD` text, in plain SQL both databases speak."""
    if grain is Grain.day:
        return day
    if grain is Grain.month:
        return func.substr(day, 1, 7)
    if grain is Grain.year:
        return func.substr(day, 1, 4)
    quarter = (cast(func.substr(day, 6, 2), Integer) + 2) // 3
    return func.substr(day, 1, 4) + literal("-Q") + cast(quarter, String)


def _figures_columns(lines: FromClause, *, buyers: bool) -> list[ColumnElement[Any]]:
    positive = lines.c.units > 0
    return [
        func.coalesce(func.sum(lines.c.amount), 0).label("amount_fen"),
        func.coalesce(func.sum(lines.c.units), 0).label("units"),
        func.count(func.distinct(case((positive, lines.c.order_id)))).label("order_count"),
        (
            func.count(func.distinct(case((positive, lines.c.buyer_id))))
            if buyers
            else literal(0, Integer)
        ).label("buyer_count"),
    ]


def recount_select(lines: FromClause, dim: Dimension, grain: Grain) -> Select[Any]:
    """Rows as `stats_periods` should hold them for one dimension and grain."""
    period = period_expr(lines.c.day, grain)
    key = lines.c[dim.value]
    return select(
        literal(dim.value, String).label("dimension"),
        literal(grain.value, String).label("grain"),
        period.label("period"),
        key.label("key"),
        *_figures_columns(lines, buyers=grain is not Grain.day),
    ).group_by(period, key)


async def recount(
    session: AsyncSession,
    east: Sequence[str],
    west: Sequence[str],
    dim: Dimension,
    start: date,
    end: date,
) -> dict[str, Figures]:
    """Figures per key of `dim` over [start, end], straight from the order lines."""
    lines = counted_lines(east, west, start, end)
    key = lines.c[dim.value]
    rows = await session.execute(select(key, *_figures_columns(lines, buyers=True)).group_by(key))
    return {str(r[0]): Figures(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def _scratch_table() -> Table:
    """A temporary table holding the counted lines once, so the 56 groupings of a rebuild each
    scan a narrow table instead of joining four (plain SQL both databases speak)."""
    text_columns = [d.value for d in Dimension]
    return Table(
        "stats_rebuild_lines",
        MetaData(),
        Column("order_id", Uuid),
        Column("buyer_id", Uuid),
        Column("day", String(10)),
        Column("units", BigInteger),
        Column("amount", BigInteger),
        *(Column(name, String(64)) for name in text_columns),
        prefixes=["TEMPORARY"],
    )


Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all) as a rebuild goes."""


async def rebuild(
    session: AsyncSession,
    east: Sequence[str],
    west: Sequence[str],
    progress: Progress | None = None,
) -> None:
    """Recompute every aggregate from the order lines (after a restore, a migration, or a change
    of the paired counties). Runs in the caller's transaction."""
    steps = 2 + len(Dimension) * (len(Grain) + len(PERIOD_GRAINS))
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    for model in (StatsBuyer, StatsPeriod, StatsCounted):
        await session.execute(delete(model))
    await session.execute(
        insert(StatsCounted).from_select(
            ["merchant_order_id", "order_id", "day", "indicator"],
            select(
                MerchantOrder.id,
                Order.id,
                shanghai_day_text(Order.paid_at),
                _indicator(east),
            )
            .join(Order, Order.id == MerchantOrder.order_id)
            .join(Merchant, Merchant.id == MerchantOrder.merchant_id)
            .where(Order.paid_at.is_not(None), Merchant.region_code.in_(list(west))),
        )
    )
    step()
    scratch = _scratch_table()
    conn = await session.connection()
    await conn.run_sync(lambda c: scratch.create(c))
    source = counted_lines(east, west)
    await session.execute(
        insert(scratch).from_select([c.name for c in scratch.columns], select(source))
    )
    step()
    columns = ["dimension", "grain", "period", "key", "amount_fen", "units", "order_count"]
    for dim in Dimension:
        for grain in Grain:
            await session.execute(
                insert(StatsPeriod).from_select(
                    [*columns, "buyer_count"], recount_select(scratch, dim, grain)
                )
            )
            step()
        for grain in PERIOD_GRAINS:
            await session.execute(
                insert(StatsBuyer).from_select(
                    ["dimension", "grain", "period", "key", "buyer_id", "orders"],
                    _membership_select(scratch, dim, grain),
                )
            )
            step()
    await conn.run_sync(lambda c: scratch.drop(c))
    await session.flush()


def _membership_select(lines: FromClause, dim: Dimension, grain: Grain) -> Select[Any]:
    period = period_expr(lines.c.day, grain)
    key = lines.c[dim.value]
    return select(
        literal(dim.value, String),
        literal(grain.value, String),
        period,
        key,
        lines.c.buyer_id,
        func.count(func.distinct(case((lines.c.units > 0, lines.c.order_id)))),
    ).group_by(period, key, lines.c.buyer_id)


async def verify(
    session: AsyncSession, east: Sequence[str], west: Sequence[str], limit: int = 50
) -> list[str]:
    """Differences between the aggregates and a recount (empty when they agree)."""
    problems: list[str] = []
    lines = counted_lines(east, west)
    for dim in Dimension:
        for grain in Grain:
            expected = {
                (r.period, r.key): Figures(r.amount_fen, r.units, r.order_count, r.buyer_count)
                for r in await session.execute(recount_select(lines, dim, grain))
            }
            stored = {
                (r.period, r.key): Figures(r.amount_fen, r.units, r.order_count, r.buyer_count)
                for r in await session.scalars(
                    select(StatsPeriod).where(
                        StatsPeriod.dimension == dim.value, StatsPeriod.grain == grain.value
                    )
                )
            }
            for where in sorted(expected.keys() | stored.keys()):
                want, have = expected.get(where, Figures()), stored.get(where, Figures())
                if want != have:
                    problems.append(f"{dim}/{grain} {where[0]} {where[1]!r}: {have} != {want}")
    problems += await _verify_buyers(session)
    return problems[:limit]


async def _verify_buyers(session: AsyncSession) -> list[str]:
    """Each kept `buyer_count` and `order_count` equals what the buyers' reference counts say."""
    b = StatsBuyer
    members = (
        select(
            b.dimension,
            b.grain,
            b.period,
            b.key,
            func.sum(case((b.orders > 0, 1), else_=0)).label("buyers"),
            func.sum(b.orders).label("orders"),
        )
        .group_by(b.dimension, b.grain, b.period, b.key)
        .subquery()
    )
    p = StatsPeriod
    rows = await session.execute(
        select(
            p.dimension,
            p.grain,
            p.period,
            p.key,
            p.buyer_count,
            p.order_count,
            members.c.buyers,
            members.c.orders,
        )
        .outerjoin(
            members,
            (members.c.dimension == p.dimension)
            & (members.c.grain == p.grain)
            & (members.c.period == p.period)
            & (members.c.key == p.key),
        )
        .where(p.grain != Grain.day.value)
    )
    return [
        f"buyers {r[0]}/{r[1]} {r[2]} {r[3]!r}: counters {r[4]}/{r[5]} != references {r[6]}/{r[7]}"
        for r in rows
        if (r[4], r[5]) != (int(r[6] or 0), int(r[7] or 0))
    ]
