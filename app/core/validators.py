"""Reusable, bounded input types: every string has a limit, every number a range."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints

from app.core.money import MAX_FEN

# ASCII digits only: Python's `\d` (and `str.isdigit`) also match Arabic-Indic and other digits.
MOBILE_PATTERN = r"^(\+86|0086)?[ -]?1[3-9][0-9]([ -]?[0-9]){8}$"
REGION_PATTERN = r"^[1-8][0-9]{5}$"


def _mobile(value: str) -> str:
    digits = re.sub(r"[ -]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not re.fullmatch(r"1[3-9][0-9]{9}", digits):
        raise ValueError("not a mainland mobile number (11 digits, starting 13–19)")
    return "+86" + digits


def _region(value: str) -> str:
    if not re.fullmatch(REGION_PATTERN, value):
        raise ValueError("not a 6-digit administrative division code")
    return value


MainlandMobile = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=20, pattern=MOBILE_PATTERN),
    AfterValidator(_mobile),
    Field(
        description="Mainland mobile number, 11 digits starting 13–19, optionally after `+86` or "
        "`0086`, with spaces or hyphens between digits if you like; stored and shown as E.164 "
        "(`+86…`).",
        examples=["+8613812345678"],
    ),
]
RegionCode = Annotated[
    str,
    StringConstraints(min_length=6, max_length=6, pattern=REGION_PATTERN),
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


def _date_text(value: object) -> object:
    """Only `YYYY-MM-DD` text (or a date, from Python): pydantic alone would take a number as
    seconds since 1970 (`0` → 1970-01-01) or a timestamp string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return value
    raise ValueError("a date is a string YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_date_text), Field(examples=["2026-01-01"])]
"""A calendar date written `YYYY-MM-DD`, nothing else."""
