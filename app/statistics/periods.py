"""The statistics calendar: dimensions, period keys of a Shanghai day, and the cover of a date
range by the fewest whole years, quarters, months and days."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta


class Dimension(enum.StrEnum):
    total = "total"
    indicator = "indicator"
    buyer_type = "buyer_type"
    buyer_region = "buyer_region"
    product_class = "product_class"
    category = "category"
    merchant = "merchant"
    township = "township"


class Grain(enum.StrEnum):
    day = "day"
    month = "month"
    quarter = "quarter"
    year = "year"


class Indicator(enum.StrEnum):
    purchased = "purchased"
    helped_sold = "helped_sold"


PERIOD_GRAINS = (Grain.month, Grain.quarter, Grain.year)
"""Grains at which distinct buyers are kept."""


def period_of(day: date, grain: Grain) -> str:
    if grain is Grain.day:
        return day.isoformat()
    if grain is Grain.month:
        return f"{day.year:04d}-{day.month:02d}"
    if grain is Grain.quarter:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


def bounds(day: date, grain: Grain) -> tuple[date, date]:
    """The first and last day of the period of `grain` that holds `day`."""
    if grain is Grain.day:
        return day, day
    if grain is Grain.year:
        return date(day.year, 1, 1), date(day.year, 12, 31)
    first_month = day.month if grain is Grain.month else (day.month - 1) // 3 * 3 + 1
    start = date(day.year, first_month, 1)
    months = 1 if grain is Grain.month else 3
    end_month = first_month + months
    end = (
        date(day.year + 1, 1, 1) if end_month > 12 else date(day.year, end_month, 1)
    ) - timedelta(days=1)
    return start, end


@dataclass(frozen=True, slots=True)
class Piece:
    grain: Grain
    period: str


def cover(start: date, end: date) -> list[Piece]:
    """Whole years, quarters and months where they fit in [start, end], days elsewhere."""
    pieces: list[Piece] = []
    d = start
    while d <= end:
        for grain in (Grain.year, Grain.quarter, Grain.month, Grain.day):
            first, last = bounds(d, grain)
            if first == d and last <= end:
                pieces.append(Piece(grain, period_of(d, grain)))
                d = last + timedelta(days=1)
                break
    return pieces
