"""Consumption-assistance figures for officials: any range, any grouping, from the aggregates.

How a range is answered: it is cut into the fewest whole years, quarters, months and days
(`periods.cover`); sums and order counts add up over those pieces (an order has one payment day);
a distinct buyer count is read as kept when the range (or a row's bucket) is one whole month,
quarter or year, counted as a union of the buyers' reference rows when it is several whole
months/quarters/years, and recounted from the order lines when it has loose days (the exact slow
path). A range that ends today or later is read up to the end of its year (no payment can lie in
the future), so "this year so far" is one year piece.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.time import shanghai_today
from app.models import Category, Merchant, StatsBuyer, StatsPeriod
from app.statistics import labels
from app.statistics.errors import DateRangeTooLong, InvalidDate, InvalidDateRange, InvalidGroupBy
from app.statistics.periods import Dimension, Grain, Piece, bounds, cover, period_of
from app.statistics.recount import Figures, recount
from app.statistics.schemas import (
    TIME_GROUPS,
    AssistanceReport,
    AssistanceRow,
    AssistanceTotals,
    GroupBy,
)

COUNTING_RULE = (
    "统计口径：西部协作县登记的经营主体销售、付款之日消费帮扶产品认定在有效期内的订单行；"
    "按付款时间（北京时间）计入日、月、季度、年度；金额为实付金额减去已批准的退款，"
    "退款计入原付款所属期间；每一订单行只计入一个指标：买家账户所在地（下单时）属东部协作县的"
    "计为采购，其余计为帮助销售；未付款、未付款即取消的订单不计入；订单数、购买人数为去重计数。"
)
MAX_RANGE_YEARS = 10
MIN_YEAR, MAX_YEAR = 2000, 2100
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: str, name: str) -> date:
    if not _DATE.match(value):
        raise InvalidDate(
            f"`{name}` must be a date written YYYY-MM-DD.",
            loc=["query", name],
            extra={"param": name},
        )
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidDate(
            f"`{name}` is not a calendar date.", loc=["query", name], extra={"param": name}
        ) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidDate(
            f"`{name}` must lie in {MIN_YEAR}–{MAX_YEAR}.",
            loc=["query", name],
            extra={"param": name},
        )
    return day


def parse_range(from_: str | None, to: str | None) -> tuple[date, date]:
    """`from`, `to` (inclusive, Shanghai days): by default 1 January of this year and today."""
    today = shanghai_today()
    start = parse_day(from_, "from") if from_ else date(today.year, 1, 1)
    end = parse_day(to, "to") if to else today
    if start > end:
        raise InvalidDateRange("`from` is after `to`.", loc=["query", "from"])
    try:
        limit = start.replace(year=start.year + MAX_RANGE_YEARS)
    except ValueError:  # 29 February
        limit = date(start.year + MAX_RANGE_YEARS, 3, 1)
    if end >= limit:
        raise DateRangeTooLong(
            f"A range spans at most {MAX_RANGE_YEARS} years.", loc=["query", "to"]
        )
    return start, end


def parse_group_by(value: str | None) -> GroupBy:
    try:
        return GroupBy(value or GroupBy.month)
    except ValueError:
        raise InvalidGroupBy(
            f"`group_by` is one of {', '.join(g.value for g in GroupBy)}.",
            loc=["query", "group_by"],
            extra={"allowed": [g.value for g in GroupBy]},
        ) from None


@dataclass(slots=True)
class Cell:
    """Figures of one sub-range and one dimension, per key."""

    start: date
    end: date
    pieces: list[Piece]
    sums: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    buyers: dict[str, int] | None = None


class Reader:
    """Reads cells of one dimension from the aggregates, falling back as the module says."""

    def __init__(self, session: AsyncSession, settings: Settings, dim: Dimension) -> None:
        self.session, self.settings, self.dim = session, settings, dim
        self.today = shanghai_today()

    def cell(self, start: date, end: date, period_end: date) -> Cell:
        """`period_end`: how far the range may be stretched when it reaches today."""
        lookup_end = max(end, period_end) if end >= self.today else end
        return Cell(start, end, cover(start, lookup_end))

    async def fill(self, cells: Sequence[Cell]) -> None:
        await self._sums(cells)
        for c in cells:
            if len(c.pieces) == 1 and c.pieces[0].grain is not Grain.day:
                continue  # kept with the sums
            if all(p.grain is not Grain.day for p in c.pieces):
                c.buyers = await self._union_buyers(c.pieces)
            else:
                found = await recount(
                    self.session,
                    self.settings.east_region_codes,
                    self.settings.west_region_codes,
                    self.dim,
                    c.start,
                    c.end,
                )
                c.buyers = {k: f.buyer_count for k, f in found.items()}

    async def _sums(self, cells: Sequence[Cell]) -> None:
        by_grain: dict[Grain, set[str]] = defaultdict(set)
        for c in cells:
            for p in c.pieces:
                by_grain[p.grain].add(p.period)
        if not by_grain:
            return
        s = StatsPeriod
        rows = await self.session.execute(
            select(
                s.grain, s.period, s.key, s.amount_fen, s.units, s.order_count, s.buyer_count
            ).where(
                s.dimension == self.dim.value,
                or_(
                    *(
                        and_(s.grain == g.value, s.period.in_(sorted(ps)))
                        for g, ps in by_grain.items()
                    )
                ),
            )
        )
        found: dict[Piece, list[tuple[str, int, int, int, int]]] = defaultdict(list)
        for grain, period, key, amount, units, orders, buyers in rows:
            found[Piece(Grain(grain), period)].append((key, amount, units, orders, buyers))
        for c in cells:
            single = len(c.pieces) == 1 and c.pieces[0].grain is not Grain.day
            if single:
                c.buyers = {}
            for p in c.pieces:
                for key, amount, units, orders, buyers in found.get(p, []):
                    figures = c.sums[key]
                    figures[0] += amount
                    figures[1] += units
                    figures[2] += orders
                    if single and c.buyers is not None:
                        c.buyers[key] = buyers

    async def _union_buyers(self, pieces: Sequence[Piece]) -> dict[str, int]:
        b = StatsBuyer
        by_grain: dict[Grain, list[str]] = defaultdict(list)
        for p in pieces:
            by_grain[p.grain].append(p.period)
        rows = await self.session.execute(
            select(b.key, func.count(func.distinct(b.buyer_id)))
            .where(
                b.dimension == self.dim.value,
                b.orders > 0,
                or_(*(and_(b.grain == g.value, b.period.in_(ps)) for g, ps in by_grain.items())),
            )
            .group_by(b.key)
        )
        return {key: int(n) for key, n in rows}


def _figures(c: Cell, key: str) -> Figures:
    amount, units, orders = c.sums.get(key, [0, 0, 0])
    return Figures(amount, units, orders, (c.buyers or {}).get(key, 0))


def _buckets(start: date, end: date, grain: Grain) -> list[tuple[str, date, date, date]]:
    """(key, first day in range, last day in range, the bucket's own last day) per bucket."""
    out = []
    d = start
    while d <= end:
        _, last = bounds(d, grain)
        out.append((period_of(d, grain), d, min(last, end), last))
        d = last + timedelta(days=1)
    return out


async def assistance_report(
    session: AsyncSession, settings: Settings, start: date, end: date, group_by: GroupBy
) -> AssistanceReport:
    """The figures of [start, end] grouped by `group_by`, with distinct totals."""
    dim = Dimension.total if group_by in TIME_GROUPS else Dimension(group_by.value)
    reader = Reader(session, settings, dim)
    totals_reader = reader if dim is Dimension.total else Reader(session, settings, Dimension.total)
    totals = totals_reader.cell(start, end, date(end.year, 12, 31))
    rows: list[AssistanceRow]
    if group_by in TIME_GROUPS:
        buckets = _buckets(start, end, Grain(group_by.value))
        cells = [reader.cell(a, b, last) for _, a, b, last in buckets]
        await reader.fill([*cells, totals])
        rows = [
            _row(key, labels.period_label(key), _figures(c, ""))
            for (key, *_), c in zip(buckets, cells, strict=True)
        ]
    else:
        cell = reader.cell(start, end, date(end.year, 12, 31))
        await reader.fill([cell])
        await totals_reader.fill([totals])
        names = await _labels(session, settings, dim, list(cell.sums))
        households = await _households(session, settings, dim, list(cell.sums))
        rows = [
            _row(key, names.get(key, key), _figures(cell, key), households.get(key))
            for key in cell.sums
            if any(cell.sums[key])
        ]
        rows.sort(key=lambda r: (-r.amount_fen, r.key))
    t = _figures(totals, "")
    return AssistanceReport(
        from_=start,
        to=end,
        group_by=group_by,
        rows=rows,
        totals=AssistanceTotals(
            amount_fen=t.amount_fen,
            order_count=t.order_count,
            units=t.units,
            buyer_count=t.buyer_count,
        ),
        counting_rule=COUNTING_RULE,
    )


def _row(key: str, label: str, f: Figures, households: int | None = None) -> AssistanceRow:
    return AssistanceRow(
        key=key,
        label=label,
        amount_fen=f.amount_fen,
        order_count=f.order_count,
        units=f.units,
        buyer_count=f.buyer_count,
        linked_households=households,
    )


async def _labels(
    session: AsyncSession, settings: Settings, dim: Dimension, keys: list[str]
) -> dict[str, str]:
    if dim is Dimension.indicator:
        return labels.INDICATOR_LABELS
    if dim is Dimension.buyer_type:
        return labels.BUYER_TYPE_LABELS
    if dim is Dimension.product_class:
        return labels.PRODUCT_CLASS_LABELS
    if dim is Dimension.buyer_region:
        return labels.REGION_LABELS
    if dim is Dimension.category and keys:
        rows = await session.execute(select(Category.slug, Category.name))
        return {str(slug): str(name) for slug, name in rows}
    if dim is Dimension.merchant and keys:
        rows = await session.execute(
            select(Merchant.id, Merchant.name).where(Merchant.id.in_(_uuids(keys)))
        )
        return {str(i): name for i, name in rows}
    return {}


async def _households(
    session: AsyncSession, settings: Settings, dim: Dimension, keys: list[str]
) -> dict[str, int]:
    if dim is Dimension.merchant and keys:
        rows = await session.execute(
            select(Merchant.id, Merchant.households).where(Merchant.id.in_(_uuids(keys)))
        )
        found = {str(i): int(n) for i, n in rows}
        return {k: found.get(k, 0) for k in keys}
    if dim is Dimension.township and keys:
        rows = await session.execute(
            select(Merchant.township, func.sum(Merchant.households))
            .where(
                Merchant.region_code.in_(settings.west_region_codes), Merchant.township.in_(keys)
            )
            .group_by(Merchant.township)
        )
        found = {str(t): int(n or 0) for t, n in rows}
        return {k: found.get(k, 0) for k in keys}
    return {}


def _uuids(keys: list[str]) -> list[uuid.UUID]:
    out: list[uuid.UUID] = []
    for k in keys:
        try:
            out.append(uuid.UUID(k))
        except ValueError:
            continue
    return out


async def monthly_by_indicator(
    session: AsyncSession, settings: Settings, year: int
) -> dict[str, list[int]]:
    """Each indicator's amount (fen) in each month of `year`: the `group_by=month` figures of
    `assistance_report` split by indicator, read from the same aggregates."""
    reader = Reader(session, settings, Dimension.indicator)
    buckets = _buckets(date(year, 1, 1), date(year, 12, 31), Grain.month)
    cells = [reader.cell(a, b, last) for _, a, b, last in buckets]
    await reader.fill(cells)
    return {
        key: [_figures(c, key).amount_fen for c in cells] for key in ("purchased", "helped_sold")
    }
