"""Who is calling: the bearer token, re-checked against the database on every request."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Enum, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.core.db import Session
from app.core.errors import Forbidden, Unauthorized
from app.core.security import decode_access_token
from app.core.statements import Statements
from app.models import Role, User

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


_users = cast(Table, User.__table__)
_USER_BY_ID = select(_users).where(_users.c.id == bindparam("user_id"))
# The driver returns an enum column's text: the enum it stands for, by column.
_ENUMS = {
    c.key: c.type.enum_class
    for c in _users.columns
    if isinstance(c.type, Enum) and c.type.enum_class is not None
}


async def _load_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The caller as a persistent User of this session, read with one prebuilt Core statement.

    Every authenticated request pays for this read, and the ORM's identity load costs several
    times the statement. The row becomes an ORM object the way SQLAlchemy documents for objects
    from a cache (`make_transient_to_detached`, then `add`): it is tracked and refreshable like
    one loaded by `session.get`. On PostgreSQL, before the request's transaction has begun, the
    read runs on its own (`Statements.first_alone`: no BEGIN, no COMMIT)."""
    row = await (await Statements.of(session)).first_alone(_USER_BY_ID, {"user_id": user_id})
    if row is None:
        return None
    existing = session.identity_map.get(session.identity_key(User, user_id))
    if existing is not None:
        return cast(User, existing)
    for key, enum_class in _ENUMS.items():
        if row[key] is not None and not isinstance(row[key], enum_class):
            row[key] = enum_class(row[key])
    user = User(**row)
    make_transient_to_detached(user)
    session.add(user)
    return user


async def _optional_user(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    if credentials is None:
        return None
    user_id = decode_access_token(credentials.credentials, request.app.state.settings.secret_key)
    if user_id is None:
        raise Unauthorized("The access token is invalid or has expired.", code="invalid_token")
    user = await _load_user(session, user_id)
    if user is None or user.disabled:
        raise Unauthorized("The access token is invalid or has expired.", code="invalid_token")
    return user


async def _current_user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise Unauthorized("Sign in first: send `Authorization: Bearer <token>`.")
    return user


OptionalUser = Annotated[User | None, Depends(_optional_user)]
"""The caller if a token was sent (a bad token is still 401), else None."""
CurrentUser = Annotated[User, Depends(_current_user)]
"""The signed-in caller; 401 without a valid token."""


def require_role(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency admitting only callers with one of `roles` (403 for the others)."""

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(
                "Your role does not allow this.",
                code="forbidden",
            )
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_role(Role.admin))]
BuyerUser = Annotated[User, Depends(require_role(Role.buyer))]
MerchantUser = Annotated[User, Depends(require_role(Role.merchant))]
StatsUser = Annotated[User, Depends(require_role(Role.admin, Role.official))]
