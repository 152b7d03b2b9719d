"""Yearly targets and the year's progress against them."""

from __future__ import annotations

from datetime import date
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.core.sql import upsert_set
from app.core.time import utcnow
from app.models import StatsTarget, User
from app.statistics import labels
from app.statistics.errors import InvalidYear
from app.statistics.periods import Dimension, Indicator
from app.statistics.schemas import IndicatorProgress, ProgressRead, TargetsRead, TargetsUpdate
from app.statistics.service import MAX_YEAR, MIN_YEAR, Reader


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidYear(
            f"The year must lie in {MIN_YEAR}–{MAX_YEAR}.",
            loc=["query", "year"],
            extra={"year": year},
        )
    return year


async def set_targets(
    session: AsyncSession, user: User, year: int, data: TargetsUpdate
) -> TargetsRead:
    """Create or replace the year's targets (idempotent: the same body gives the same targets)."""
    check_year(year)
    now = utcnow()
    values = {**data.model_dump(), "updated_by": user.id, "updated_at": now}
    await session.execute(
        upsert_set(cast(Table, StatsTarget.__table__), ("year",), tuple(values)).values(
            year=year, **values
        )
    )
    await record(
        session,
        actor_id=user.id,
        action="stats.targets_set",
        subject_type="stats_targets",
        subject_id=str(year),
        detail=data.model_dump(),
    )
    return TargetsRead(year=year, updated_at=now, **data.model_dump())


async def progress(session: AsyncSession, settings: Settings, year: int) -> ProgressRead:
    """Year-to-date figure per indicator against the year's targets."""
    check_year(year)
    reader = Reader(session, settings, Dimension.indicator)
    cell = reader.cell(date(year, 1, 1), date(year, 12, 31), date(year, 12, 31))
    await reader.fill([cell])
    target = await session.get(StatsTarget, year)
    goals = {
        Indicator.purchased: target.purchased_fen if target else None,
        Indicator.helped_sold: target.helped_sold_fen if target else None,
    }
    items = []
    for indicator, goal in goals.items():
        actual = cell.sums.get(indicator.value, [0])[0]
        items.append(
            IndicatorProgress(
                indicator=indicator.value,
                label=labels.INDICATOR_LABELS[indicator.value],
                target_fen=goal,
                actual_fen=actual,
                ratio=round(actual / goal, 4) if goal else None,
            )
        )
    return ProgressRead(year=year, as_of=utcnow(), indicators=items)
