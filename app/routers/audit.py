"""HTTP endpoints: the audit trail (admin only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts.deps import AdminUser
from app.audit.queries import list_audit_events
from app.audit.schemas import AuditEventFilters, AuditEventRead
from app.core.db import Session
from app.core.pagination import Cursor, Limit, Page

router = APIRouter(tags=["audit"])


@router.get(
    "/audit-events",
    response_model=Page[AuditEventRead],
    responses={
        400: {"description": "`invalid_cursor`"},
        401: {"description": "`not_authenticated` or `invalid_token`"},
        403: {"description": "`forbidden`: admins only"},
    },
)
async def get_audit_events(
    session: Session,
    _: AdminUser,
    action: Annotated[
        str | None, Query(max_length=60, description="Exact action, e.g. `merchant.approved`.")
    ] = None,
    subject_type: Annotated[
        str | None, Query(max_length=40, description="Exact subject type, e.g. `product`.")
    ] = None,
    subject_id: Annotated[str | None, Query(max_length=64, description="Exact subject id.")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="Only what this user did.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[AuditEventRead]:
    """The audit trail, newest first (by time, then id): every approval, rejection,
    suspension, stock adjustment, payment confirmation, refund decision, settlement and payout.
    Filters match exactly and combine with AND. Admins only; events are never changed or
    deleted. Events by the scheduled jobs have `actor_id: null`."""
    filters = AuditEventFilters(
        action=action, subject_type=subject_type, subject_id=subject_id, actor_id=actor_id
    )
    return await list_audit_events(session, filters, limit=limit, cursor=cursor)
