"""HTTP endpoints: the invited account's side of staff invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path

from app.accounts.deps import CurrentUser
from app.core.db import Session
from app.core.pagination import Cursor, Limit, Page
from app.core.time import utcnow
from app.merchants import members
from app.merchants.schemas import EmptyAction, InvitationRead

router = APIRouter(tags=["merchants"])

InvitationId = Annotated[uuid.UUID, Path(description="The invitation's id.")]
NoFieldsBody = Annotated[
    EmptyAction | None,
    Body(description="`{}`; the body may also be left out."),
]
_E401 = {"description": "`not_authenticated` / `invalid_token`."}
_E403 = {"description": "`forbidden`: officials (who may do nothing outside the statistics)."}
_E404 = {"description": "`invitation_not_found`: no such invitation for the caller."}
_ANSWER_409 = (
    "`invalid_transition` (already accepted, declined or replaced by a newer invitation), "
    "`invitation_expired`"
)


@router.get("/me/invitations", response_model=Page[InvitationRead], responses={401: _E401})
async def list_my_invitations(
    user: CurrentUser, session: Session, limit: Limit = 20, cursor: Cursor = None
) -> Page[InvitationRead]:
    """Invitations to join a merchant as staff addressed to the caller's e-mail, newest first:
    pending ones to answer, and past ones with their outcome (`accepted`, `declined`,
    `expired`). An invitation the owner renewed is listed once, as the newer one."""
    rows, next_cursor = await members.list_my_invitations(session, user, limit=limit, cursor=cursor)
    now = utcnow()
    return Page[InvitationRead](
        items=[InvitationRead.from_model(inv, name, now) for inv, name in rows],
        next_cursor=next_cursor,
    )


@router.post(
    "/invitations/{invitation_id}/accept",
    response_model=InvitationRead,
    responses={
        401: _E401,
        403: _E403,
        404: _E404,
        409: {
            "description": f"{_ANSWER_409}, `not_a_buyer` (only a buyer joins a merchant), "
            "`orders_in_progress` (finish or cancel them first), `merchant_not_approved` "
            "(the merchant is suspended)."
        },
    },
)
async def accept_invitation(
    invitation_id: InvitationId, user: CurrentUser, session: Session, body: NoFieldsBody = None
) -> InvitationRead:
    """Accept a pending invitation: the caller, a buyer, becomes the merchant's `staff` (its
    role becomes `merchant`, and it no longer buys with this account). Refused with
    `409 orders_in_progress` while the caller has orders awaiting payment or delivery. Another
    user's invitation is `404 invitation_not_found`. Audited as `merchant.invitation_accepted`."""
    invitation, name = await members.accept_invitation(session, user, invitation_id)
    return InvitationRead.from_model(invitation, name, utcnow())


@router.post(
    "/invitations/{invitation_id}/decline",
    response_model=InvitationRead,
    responses={401: _E401, 403: _E403, 404: _E404, 409: {"description": f"{_ANSWER_409}."}},
)
async def decline_invitation(
    invitation_id: InvitationId, user: CurrentUser, session: Session, body: NoFieldsBody = None
) -> InvitationRead:
    """Decline a pending invitation; the owner may invite again later. Another user's
    invitation is `404 invitation_not_found`. Audited as `merchant.invitation_declined`."""
    invitation, name = await members.decline_invitation(session, user, invitation_id)
    return InvitationRead.from_model(invitation, name, utcnow())
