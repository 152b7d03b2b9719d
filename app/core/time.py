"""One clock for the whole service, and the Asia/Shanghai calendar that reports are cut in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def shanghai_day_start(day: date) -> datetime:
    """The UTC instant at which `day` begins in Asia/Shanghai."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def shanghai_day_end_exclusive(day: date) -> datetime:
    return shanghai_day_start(day + timedelta(days=1))


def shanghai_today() -> date:
    return utcnow().astimezone(SHANGHAI).date()
