"""Opaque keyset cursors and the `{items, next_cursor}` page shape shared by every list."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, or_

from app.core.errors import BadRequest

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1–100.")]
Cursor = Annotated[
    str | None,
    Query(description="Opaque cursor from the previous page's `next_cursor`."),
]


MAX_CURSOR_LENGTH = 512


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


CursorKey = datetime | uuid.UUID | int | str
_INT64_MAX = 2**63 - 1
_NOT_OURS = "The cursor is not one this list gave out."


def encode_cursor(kind: str, values: Sequence[CursorKey]) -> str:
    """A cursor of `kind` (e.g. the sort order) positioned after the row with these key values
    (aware datetimes, UUIDs, non-negative integers, text)."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([kind, *plain], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *types: type[CursorKey]) -> tuple[Any, ...]:
    """The key values in `cursor`, one per type in `types`: `datetime` (aware, returned in UTC),
    `uuid.UUID`, `int` (0 to 2^63 - 1) or `str` (UTF-8 without NUL). Anything else — not base64,
    not JSON, another list's or sort's cursor, a value of the wrong type, a time without a zone
    — is `400 invalid_cursor`, never an error further down."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor(_NOT_OURS)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise InvalidCursor(_NOT_OURS) from None
    if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
        raise InvalidCursor("The cursor does not belong to this list or sort order.")
    values = tuple(_key(value, type_) for value, type_ in zip(data[1:], types, strict=True))
    if any(value is None for value in values):
        raise InvalidCursor(_NOT_OURS)
    return values


def _key(value: Any, type_: type[CursorKey]) -> CursorKey | None:
    """`value` as a `type_`, or None when it cannot be one of ours."""
    if type_ is int:
        valid = type(value) is int and 0 <= value <= _INT64_MAX
        return value if valid else None
    if not isinstance(value, str) or "\x00" in value:
        return None
    try:
        value.encode()  # no lone surrogates: the database could not take them
        if type_ is uuid.UUID:
            return uuid.UUID(value)
        if type_ is datetime:
            at = datetime.fromisoformat(value)
            return at.astimezone(UTC) if at.tzinfo is not None else None
    except (ValueError, UnicodeError, OverflowError):
        return None
    return value if type_ is str else None


def keyset_before(
    time_column: SQLColumnExpression[datetime],
    id_column: SQLColumnExpression[uuid.UUID],
    position: tuple[datetime, uuid.UUID],
) -> ColumnElement[bool]:
    """Rows after `position` in a newest-first walk over (time, id)."""
    at, row_id = position
    return or_(time_column < at, and_(time_column == at, id_column < row_id))
