"""HTTP endpoints: merchant onboarding (applications, review, profile, members)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response, status

from app.accounts.deps import CurrentUser, OptionalUser
from app.core.db import Session
from app.core.pagination import Cursor, Limit, Page
from app.merchants import service
from app.merchants.schemas import (
    EmptyAction,
    MemberCreate,
    MemberRead,
    MerchantCreate,
    MerchantPublic,
    MerchantRead,
    MerchantUpdate,
    ReasonAction,
)
from app.models import MerchantKind, MerchantStatus

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
    return MerchantRead.from_model(merchant)


@router.get("", response_model=Page[MerchantRead] | Page[MerchantPublic])
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
        return Page[MerchantRead](
            items=[MerchantRead.from_model(m) for m in rows], next_cursor=next_cursor
        )
    return Page[MerchantPublic](
        items=[MerchantPublic.from_model(m) for m in rows], next_cursor=next_cursor
    )


@router.get("/{merchant_id}", response_model=MerchantRead | MerchantPublic, responses={404: _E404})
async def get_merchant(
    merchant_id: MerchantId, session: Session, viewer: OptionalUser
) -> MerchantRead | MerchantPublic:
    """One merchant. Its members and admins get every field (`MerchantRead`) in any status;
    anyone else gets the public fields of an approved merchant, and `404 merchant_not_found`
    for one that is not approved."""
    merchant, full = await service.get_merchant(session, viewer, merchant_id)
    return MerchantRead.from_model(merchant) if full else MerchantPublic.from_model(merchant)


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
    whole). Admins may change every field (`uscc` verified and unique again); their edits are
    audited as `merchant.updated`. Staff and other users: 403 (404 if the merchant is not
    approved and not theirs)."""
    merchant = await service.update_merchant(session, user, merchant_id, body)
    return MerchantRead.from_model(merchant)


@router.post("/{merchant_id}/approve", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def approve_merchant(
    merchant_id: MerchantId, admin: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Admin: `pending` → `approved` (the merchant may sell). Otherwise
    `409 invalid_transition`, naming the current and wanted status in `from` and `to`."""
    merchant = await service.approve_merchant(session, admin, merchant_id)
    return MerchantRead.from_model(merchant)


@router.post("/{merchant_id}/reject", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def reject_merchant(
    merchant_id: MerchantId, body: ReasonAction, admin: CurrentUser, session: Session
) -> MerchantRead:
    """Admin: `pending` → `rejected`, with a `reason` (1–500 characters) that the merchant's
    members see in `status_reason`. Rejection is final. Otherwise `409 invalid_transition`."""
    merchant = await service.reject_merchant(session, admin, merchant_id, body.reason)
    return MerchantRead.from_model(merchant)


@router.post("/{merchant_id}/suspend", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def suspend_merchant(
    merchant_id: MerchantId, body: ReasonAction, admin: CurrentUser, session: Session
) -> MerchantRead:
    """Admin: `approved` → `suspended`, with a `reason`. The merchant leaves the public lists
    and its products the storefront; its open orders still complete.
    Otherwise `409 invalid_transition`."""
    merchant = await service.suspend_merchant(session, admin, merchant_id, body.reason)
    return MerchantRead.from_model(merchant)


@router.post("/{merchant_id}/reinstate", response_model=MerchantRead, responses=_ADMIN_ACTION)
async def reinstate_merchant(
    merchant_id: MerchantId, admin: CurrentUser, session: Session, body: NoFieldsBody = None
) -> MerchantRead:
    """Admin: `suspended` → `approved`; `status_reason` is cleared and `approved_at` keeps the
    first approval. Otherwise `409 invalid_transition`."""
    merchant = await service.reinstate_merchant(session, admin, merchant_id)
    return MerchantRead.from_model(merchant)


@router.post(
    "/{merchant_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    responses={
        **_OWNER_ONLY,
        404: {"description": "`merchant_not_found` or `user_not_found` (no such e-mail)."},
        409: {
            "description": "`not_a_buyer`, or `orders_in_progress` "
            "(that buyer has orders awaiting payment or delivery)."
        },
    },
)
async def add_member(
    merchant_id: MerchantId, body: MemberCreate, user: CurrentUser, session: Session
) -> MemberRead:
    """Owner: add an existing buyer account, found by e-mail, as `staff` (its role becomes
    `merchant`). Unknown e-mail: `404 user_not_found`; an account that is not a buyer (a member
    of any merchant, an admin, an official): `409 not_a_buyer`."""
    member = await service.add_member(session, user, merchant_id, body)
    return MemberRead.from_model(member)


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
    rows, next_cursor = await service.list_members(
        session, user, merchant_id, limit=limit, cursor=cursor
    )
    return Page[MemberRead](items=[MemberRead.from_model(u) for u in rows], next_cursor=next_cursor)


@router.delete(
    "/{merchant_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **_OWNER_ONLY,
        404: {"description": "`merchant_not_found` or `member_not_found`."},
        409: {"description": "`cannot_remove_owner`."},
    },
)
async def remove_member(
    merchant_id: MerchantId, user_id: MemberId, user: CurrentUser, session: Session
) -> Response:
    """Owner: remove a staff member; the account becomes a `buyer` again. The owner cannot be
    removed (`409 cannot_remove_owner`); a user who is not a member: `404 member_not_found`."""
    await service.remove_member(session, user, merchant_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
