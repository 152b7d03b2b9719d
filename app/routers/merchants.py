"""HTTP endpoints: merchant onboarding (applications, review, profile, members)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.deps import CurrentUser, OptionalUser
from app.core.db import Session
from app.core.openapi import OPTIONAL_AUTH
from app.core.pagination import Cursor, Limit, Page
from app.merchants import members, reapply, service
from app.merchants.schemas import (
    EmptyAction,
    InvitationSent,
    MemberCreate,
    MemberRead,
    MerchantCreate,
    MerchantPublic,
    MerchantRead,
    MerchantUpdate,
    ReasonAction,
)
from app.models import Merchant, MerchantKind, MerchantStatus

router = APIRouter(prefix="/merchants", tags=["merchants"])

MerchantId = Annotated[uuid.UUID, Path(description="The merchant's id.")]
MemberId = Annotated[uuid.UUID, Path(description="The member's user id.")]

_E401 = {"description": "`not_authenticated` / `invalid_token`."}
_E404 = {
    "description": "`merchant_not_found`: no such merchant, or one that is not approved and "
    "not the caller's."
}
_ADMIN_ACTION: dict[int | str, dict[str, Any]] = {
    401: _E401,
    403: {
        "description": "`forbidden`: only admins decide. Given to a caller who sees the "
        "merchant (anyone, for an approved one; its own members, in any status)."
    },
    404: {
        "description": "`merchant_not_found`: no such merchant, or one the caller may not see "
        "(not approved and not its own)."
    },
    409: {"description": "`invalid_transition`, with `from` and `to`."},
}

_OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    401: _E401,
    403: {"description": "`forbidden`: only the merchant's owner."},
    404: _E404,
}


async def _read(session: AsyncSession, merchant: Merchant) -> MerchantRead:
    """The whole merchant with its earlier rejections (members and admins only)."""
    history = await reapply.rejection_history(session, [merchant.id])
    return MerchantRead.from_model(merchant, history[merchant.id])


NoFieldsBody = Annotated[
    EmptyAction | None,
    Body(description="`{}`; the body may also be left out."),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MerchantRead,
    responses={
        401: _E401,
        403: {"description": "`forbidden`: admins and officials cannot apply."},
        409: {
            "description": "`already_merchant`, `uscc_taken`, or `orders_in_progress` "
            "(the applicant has orders awaiting payment or delivery)."
        },
        422: {"description": "`validation_error`, or `invalid_uscc` (check character)."},
    },
)
async def apply_for_merchant(
    body: MerchantCreate, user: CurrentUser, session: Session
) -> MerchantRead:
    """Apply to sell: a buyer registers a merchant and becomes its `owner` (the caller's role
    becomes `merchant`). The merchant starts `pending` until an admin approves it.

    `uscc` is trimmed and upper-cased, then its check character verified (`422 invalid_uscc`);
    a code already registered is `409 uscc_taken`. `contact_phone` is stored as E.164.
    `linked_households.poverty_alleviated` and `.monitored` may not exceed `households`.
    The bank account number (8–34 digits, spaces ignored) is only ever shown masked.
    Admins and officials: 403; a merchant member: `409 already_merchant`."""
    merchant = await service.apply_for_merchant(session, user, body)
    return await _read(session, merchant)


@router.get(
    "", response_model=Page[MerchantRead] | Page[MerchantPublic], openapi_extra=OPTIONAL_AUTH
)
async def list_merchants(
    session: Session,
    viewer: OptionalUser,
    status_: Annotated[
        MerchantStatus | None,
        Query(
            alias="status",
            description="Admins: any status. Everyone else sees approved merchants only, so "
            "another status gives an empty list.",
        ),
    ] = None,
    township: Annotated[str | None, Query(max_length=40, description="Exact match.")] = None,
    kind: MerchantKind | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MerchantRead] | Page[MerchantPublic]:
    """Merchants, newest first. Anyone (signed in or not): approved merchants, public fields
    (`MerchantPublic`). Admins: every status and all fields (`MerchantRead`)."""
    rows, next_cursor, full = await service.list_merchants(
        session, viewer, status=status_, township=township, kind=kind, limit=limit, cursor=cursor
    )
    if full:
        history = await reapply.rejection_history(session, [m.id for m in rows])
        return Page[MerchantRead](
            items=[MerchantRead.from_model(m, history[m.id]) for m in rows],
            next_cursor=next_cursor,
        )
    return Page[MerchantPublic](
        items=[MerchantPublic.from_model(m) for m in rows], next_cursor=next_cursor
    )


@router.get(
    "/{merchant_id}",
    response_model=MerchantRead | MerchantPublic,
    responses={404: _E404},
    openapi_extra=OPTIONAL_AUTH,
)
async def get_merchant(
    merchant_id: MerchantId, session: Session, viewer: OptionalUser
) -> MerchantRead | MerchantPublic:
    """One merchant. Its members and admins get every field (`MerchantRead`) in any status;
    anyone else gets the public fields of an approved merchant, and `404 merchant_not_found`
    for one that is not approved."""
    merchant, full = await service.get_merchant(session, viewer, merchant_id)
    return await _read(session, merchant) if full else MerchantPublic.from_model(merchant)


@router.patch(
    "/{merchant_id}",
    response_model=MerchantRead,
    responses={
        401: _E401,
        403: {
            "description": "`forbidden`: not the owner or an admin, or a field the owner may "
            "not change (named in `fields`)."
        },
        404: _E404,
        409: {"description": "`uscc_taken`."},
        422: {"description": "`validation_error`, or `invalid_uscc`."},
    },
)
async def update_merchant(
    merchant_id: MerchantId, body: MerchantUpdate, user: CurrentUser, session: Session
) -> MerchantRead:
    """Change a merchant; fields left out stay as they are, `linked_households` and
    `bank_account` are replaced as a whole, `null` is refused (422).

    The owner may change `contact_phone`, `address` and `bank_account`; any other field from
    an owner is `403 forbidden`, with the refused names in `fields` (the request is refused as a
    whole). While the merchant is `rejected`, the owner may correct every field of the
    application (`uscc` verified and unique again: `422 invalid_uscc`, `409 uscc_taken`), then
    resubmit it with `POST /merchants/{id}/resubmit`; these corrections are audited as
    `merchant.updated` with the field names. Admins may change every field (`uscc` verified
    and unique again); their edits are audited as `merchant.updated`. Staff and other users:
    403 (404 if the merchant is not approved and not theirs).

    A change of any part of `bank_account` is audited as `merchant.bank_account_changed` (the
    numbers only masked). When the owner makes it, `payouts_on_hold` becomes true until an admin
    calls `POST /merchants/{id}/verify-bank-account`; an admin's own change does not put payouts
    on hold (the admin is the checker) and does not lift a hold already set."""
    merchant = await service.update_merchant(session, user, merchant_id, body)
    return await _read(session, merchant)


@router.post("/{merchant_id}/approve", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def approve_merchant(
    merchant_id: MerchantId, admin: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Admin: `pending` → `approved` (the merchant may sell). Otherwise
    `409 invalid_transition`, naming the current and wanted status in `from` and `to`."""
    merchant = await service.approve_merchant(session, admin, merchant_id)
    return await _read(session, merchant)


@router.post("/{merchant_id}/reject", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def reject_merchant(
    merchant_id: MerchantId, body: ReasonAction, admin: CurrentUser, session: Session
) -> MerchantRead:
    """Admin: `pending` → `rejected`, with a `reason` (1–500 characters) that the merchant's
    members see in `status_reason` and, later, in `rejections`. The owner may then correct the
    application (`PATCH`) and resubmit it. Otherwise `409 invalid_transition`."""
    merchant = await service.reject_merchant(session, admin, merchant_id, body.reason)
    return await _read(session, merchant)


@router.post("/{merchant_id}/suspend", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def suspend_merchant(
    merchant_id: MerchantId, body: ReasonAction, admin: CurrentUser, session: Session
) -> MerchantRead:
    """Admin: `approved` → `suspended`, with a `reason`. The merchant leaves the public lists
    and its products the storefront; its open orders still complete.
    Otherwise `409 invalid_transition`."""
    merchant = await service.suspend_merchant(session, admin, merchant_id, body.reason)
    return await _read(session, merchant)


@router.post("/{merchant_id}/reinstate", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def reinstate_merchant(
    merchant_id: MerchantId, admin: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Admin: `suspended` → `approved`; `status_reason` is cleared and `approved_at` keeps the
    first approval. Otherwise `409 invalid_transition`."""
    merchant = await service.reinstate_merchant(session, admin, merchant_id)
    return await _read(session, merchant)


@router.post(
    "/{merchant_id}/verify-bank-account",
    response_model=MerchantRead,
    responses={
        401: _E401,
        403: {"description": "`forbidden`: only admins verify."},
        404: _E404,
    },
)
async def verify_bank_account(
    merchant_id: MerchantId, user: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Admin: the payout bank account has been checked (e.g. against the merchant's bank
    documents): `payouts_on_hold` becomes false and payouts may reach the merchant again.
    Audited as `merchant.bank_account_verified` when it clears a hold; verifying an account that
    is not on hold changes nothing (idempotent, 200). Anyone else: 403 on a merchant they may
    see, 404 on one they may not."""
    merchant = await service.verify_bank_account(session, user, merchant_id)
    return await _read(session, merchant)


@router.post(
    "/{merchant_id}/members",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InvitationSent,
    responses={
        401: _E401,
        403: {"description": "`forbidden`: only the merchant's owner invites."},
        404: _E404,
        409: {"description": "`merchant_not_approved`: only an approved merchant invites."},
    },
)
async def invite_member(
    request: Request,
    merchant_id: MerchantId,
    body: MemberCreate,
    user: CurrentUser,
    session: Session,
) -> InvitationSent:
    """Owner of an approved merchant: invite an e-mail address to join as `staff`.

    Nobody is made staff without consent: the invited buyer sees the invitation in
    `GET /me/invitations` and accepts (`POST /invitations/{id}/accept`) or declines it while
    signed in. The answer is `202` with the same body whether or not the address has an account,
    and whatever that account is, so inviting reveals nothing about who is registered. Only a
    buyer can join: an invitation to an address whose account is not a buyer (an admin, an
    official, any merchant's member, the owner itself) is never delivered and can never be
    accepted. An address with no account yet can sign up and accept it.

    Invitations expire after `INVITATION_TTL_DAYS` (7 by default). Inviting the same address
    again replaces its pending invitation (a fresh one, with a new expiry). Every invitation is
    an audit event (`merchant.member_invited`)."""
    ttl = timedelta(days=request.app.state.settings.invitation_ttl_days)
    expires_at = await members.invite_member(session, user, merchant_id, body.email, ttl)
    return InvitationSent(email=body.email, expires_at=expires_at)


@router.get(
    "/{merchant_id}/members",
    response_model=Page[MemberRead],
    responses={
        401: _E401,
        403: {"description": "`forbidden`: only its members and admins."},
        404: _E404,
    },
)
async def list_members(
    merchant_id: MerchantId,
    user: CurrentUser,
    session: Session,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MemberRead]:
    """The merchant's members (owner and staff), for its members and admins, ordered by
    e-mail since membership carries no date."""
    rows, next_cursor = await members.list_members(
        session, user, merchant_id, limit=limit, cursor=cursor
    )
    return Page[MemberRead](items=[MemberRead.from_model(u) for u in rows], next_cursor=next_cursor)


@router.delete(
    "/{merchant_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        401: _E401,
        403: {"description": "`forbidden`: neither the owner nor the member itself."},
        404: {"description": "`merchant_not_found` or `member_not_found`."},
        409: {"description": "`cannot_remove_owner`."},
    },
)
async def remove_member(
    merchant_id: MerchantId, user_id: MemberId, user: CurrentUser, session: Session
) -> Response:
    """The owner removes a staff member, or a staff member leaves (`user_id` is the caller's
    own id); the account becomes a `buyer` again at once. The owner cannot be removed this way
    (`409 cannot_remove_owner`); a user who is not a member: `404 member_not_found`. Audited as
    `merchant.member_removed` or `merchant.member_left`."""
    await members.remove_member(session, user, merchant_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{merchant_id}/resubmit",
    response_model=MerchantRead,
    responses={
        **_OWNER_ONLY,
        409: {"description": "`invalid_transition`: the merchant is not `rejected`."},
    },
)
async def resubmit_merchant(
    merchant_id: MerchantId, user: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Owner: apply again after a rejection, `rejected` → `pending`, once the application has
    been corrected with `PATCH /merchants/{id}` (every field may be changed while rejected).
    `status_reason` is cleared; the earlier reasons stay in `rejections`, for the admin who
    reviews it again. Audited as `merchant.resubmitted`. Any other status:
    `409 invalid_transition`; staff and admins: `403 forbidden`; anyone else: `404`."""
    merchant = await reapply.resubmit_merchant(session, user, merchant_id)
    return await _read(session, merchant)
