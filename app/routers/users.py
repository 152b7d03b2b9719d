"""HTTP endpoints: the admins' user management."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.accounts import service
from app.accounts.deps import AdminUser
from app.accounts.schemas import EMAIL_MAX_LENGTH, UserCreate, UserRead, UserUpdate
from app.core.db import Session
from app.core.pagination import Cursor, Limit, Page
from app.models import Role

router = APIRouter(prefix="/users", tags=["users"])

_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in."},
    403: {"description": "Only admins manage users."},
}


@router.post("", status_code=201, response_model=UserRead, responses=_ADMIN_ONLY)
async def create_user(
    data: UserCreate, admin: AdminUser, session: Session, request: Request, response: Response
) -> UserRead:
    """Create an `admin`, `official` or organisation `buyer` account (admin).

    `buyer_type` is required for a buyer and must be absent otherwise (422); `merchant` accounts
    come from merchant onboarding (422 here). An e-mail in use, in any case, is `409 email_taken`.
    Audited as `user.created`. `Location` names the new account.
    """
    user = await service.create_user_by_admin(session, admin, data)
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{user.id}"
    return UserRead.model_validate(user)


@router.get("", response_model=Page[UserRead], responses=_ADMIN_ONLY)
async def list_users(
    _: AdminUser,
    session: Session,
    limit: Limit = 20,
    cursor: Cursor = None,
    role: Annotated[Role | None, Query(description="Only users with this role.")] = None,
    email: Annotated[
        str | None,
        Query(max_length=EMAIL_MAX_LENGTH, description="Exact e-mail address, any case."),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Case-insensitive substring of the e-mail address or display name.",
        ),
    ] = None,
) -> Page[UserRead]:
    """List accounts, newest first (admin). Filters combine."""
    users, next_cursor = await service.list_users(
        session, role=role, email=email, q=q, limit=limit, cursor=cursor
    )
    return Page[UserRead](
        items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor
    )


@router.get(
    "/{user_id}",
    response_model=UserRead,
    responses={**_ADMIN_ONLY, 404: {"description": "`user_not_found`."}},
)
async def get_user(user_id: uuid.UUID, _: AdminUser, session: Session) -> UserRead:
    """One account (admin)."""
    return UserRead.model_validate(await service.get_user(session, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses={
        **_ADMIN_ONLY,
        404: {"description": "`user_not_found`."},
        409: {"description": "`not_a_buyer` or `cannot_disable_self`."},
    },
)
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, admin: AdminUser, session: Session
) -> UserRead:
    """Change an account (admin): `buyer_type` once an organisation is verified, `disabled`, or
    `display_name`.

    Omitted fields stay as they are; `null` is refused (422). `disabled: true` stops the user's
    tokens at once and refuses its sign-ins; an admin cannot disable itself
    (`409 cannot_disable_self`). `buyer_type` applies to buyers and to merchant members who kept
    one (`409 not_a_buyer` otherwise). The changes apply together or not at all; each real change
    is audited (`user.buyer_type_changed` with `old`/`new`, `user.disabled`, `user.enabled`).
    """
    user = await service.update_user(session, admin, user_id, data)
    return UserRead.model_validate(user)
