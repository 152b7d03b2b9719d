"""Reading the audit trail: newest first, keyset-paginated over (at, id)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.schemas import AuditEventFilters, AuditEventRead
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.models import AuditEvent

_CURSOR_KIND = "audit:newest"


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, event_id = decode_cursor(cursor, _CURSOR_KIND, datetime, uuid.UUID)
    return at, event_id


async def list_audit_events(
    session: AsyncSession,
    filters: AuditEventFilters,
    *,
    limit: int,
    cursor: str | None,
) -> Page[AuditEventRead]:
    """One page of events matching `filters`, newest first (`at` desc, then `id` desc).

    Raises `InvalidCursor` (400) for a cursor this list did not hand out.
    """
    query = select(AuditEvent)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.subject_type is not None:
        query = query.where(AuditEvent.subject_type == filters.subject_type)
    if filters.subject_id is not None:
        query = query.where(AuditEvent.subject_id == filters.subject_id)
    if filters.actor_id is not None:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if cursor is not None:
        at, event_id = _position(cursor)
        query = query.where(
            or_(AuditEvent.at < at, and_(AuditEvent.at == at, AuditEvent.id < event_id))
        )
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(_CURSOR_KIND, [last.at.isoformat(), str(last.id)])
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(row) for row in rows], next_cursor=next_cursor
    )
