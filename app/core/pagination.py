"""Opaque keyset cursors and the `{items, next_cursor}` page shape shared by every list."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

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


def encode_cursor(kind: str, values: list[Any]) -> str:
    """A cursor of `kind` (e.g. the sort order) positioned after the row with these key values."""
    raw = json.dumps([kind, *values], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, arity: int) -> list[Any]:
    """The key values in `cursor`; `400 invalid_cursor` unless it is one of ours for `kind`."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("The cursor is not one this list gave out.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("The cursor is not one this list gave out.") from None
    if not isinstance(data, list) or len(data) != arity + 1 or data[0] != kind:
        raise InvalidCursor("The cursor does not belong to this list or sort order.")
    return data[1:]
