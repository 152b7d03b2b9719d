"""Reusable, bounded input types: every string has a limit, every number a range."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints

from app.core.money import MAX_FEN

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _mobile(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.match(digits):
        raise ValueError("not a mainland mobile number (11 digits, starting 13–19)")
    return "+86" + digits


def _region(value: str) -> str:
    if not re.fullmatch(r"[1-8]\d{5}", value):
        raise ValueError("not a 6-digit administrative division code")
    return value


MainlandMobile = Annotated[
    str,
    StringConstraints(max_length=20),
    AfterValidator(_mobile),
    Field(
        description="Mainland mobile number; stored and shown as E.164 (+86…).",
        examples=["+8613812345678"],
    ),
]
RegionCode = Annotated[
    str,
    StringConstraints(min_length=6, max_length=6),
    AfterValidator(_region),
    Field(description="6-digit administrative division code (行政区划代码).", examples=["330127"]),
]
Fen = Annotated[int, Field(ge=0, le=MAX_FEN, description="Amount in fen (分).")]
PositiveFen = Annotated[int, Field(gt=0, le=MAX_FEN, description="Amount in fen (分), > 0.")]


def _utc_rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(_utc_rfc3339, return_type=str, when_used="json"),
    Field(examples=["2026-11-29T02:15:30.123456+00:00"]),
]
"""A timestamp shown in UTC with microseconds, e.g. `2026-11-29T02:15:30.123456+00:00`: the
exact text PostgreSQL builds for the product list (`app/catalog/queries.py`)."""
