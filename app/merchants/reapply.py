"""A rejected merchant applies again: while `rejected` its owner may correct every field of the
application (`PATCH`, in `service.update_merchant`), then resubmit it (`rejected` → `pending`).

The earlier rejections are not lost: each `merchant.rejected` audit event carries its reason, and
the merchant's members and admins read them as `rejections` on the merchant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.merchants.errors import InvalidTransition
from app.merchants.schemas import MerchantRejection
from app.merchants.service import SUBJECT, _require_owner, _visible_merchant
from app.models import AuditEvent, Merchant, MerchantStatus, User

REJECTED_ACTION = "merchant.rejected"


async def resubmit_merchant(session: AsyncSession, owner: User, merchant_id: uuid.UUID) -> Merchant:
    """`rejected` → `pending`, by the merchant's owner, with a conditional UPDATE (`WHERE status
    = 'rejected'`) so a resubmission races nothing. `status_reason` is cleared (the reason stays
    in `rejections`). Audited as `merchant.resubmitted`.

    Raises MerchantNotFound (hidden from the caller), Forbidden (a member who is not the owner,
    an admin), InvalidTransition (any status but `rejected`)."""
    merchant = await _visible_merchant(session, owner, merchant_id)
    _require_owner(owner, merchant)
    resubmitted: Merchant | None = await session.scalar(
        update(Merchant)
        .where(Merchant.id == merchant.id, Merchant.status == MerchantStatus.rejected)
        .values(status=MerchantStatus.pending, status_reason=None)
        .returning(Merchant),
        execution_options={"populate_existing": True},
    )
    if resubmitted is None:
        current = merchant.status.value
        raise InvalidTransition(
            f"Only a rejected merchant can be resubmitted; this one is {current}.",
            extra={"from": current, "to": MerchantStatus.pending.value},
        )
    await record(
        session,
        actor_id=owner.id,
        action="merchant.resubmitted",
        subject_type=SUBJECT,
        subject_id=resubmitted.id,
        detail={"from": MerchantStatus.rejected.value, "to": MerchantStatus.pending.value},
    )
    return resubmitted


async def rejection_history(
    session: AsyncSession, merchant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[MerchantRejection]]:
    """Every rejection of each merchant, oldest first, read from the audit trail in one query."""
    ids = {str(i): i for i in merchant_ids}
    history: dict[uuid.UUID, list[MerchantRejection]] = {i: [] for i in ids.values()}
    if not ids:
        return history
    events = await session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == SUBJECT,
            AuditEvent.subject_id.in_(list(ids)),
            AuditEvent.action == REJECTED_ACTION,
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    for event in events:
        history[ids[event.subject_id]].append(
            MerchantRejection(
                reason=str(event.detail.get("reason", "")), at=event.at, by=event.actor_id
            )
        )
    return history
