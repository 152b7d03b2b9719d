"""Accounts: sign-up, sign-in (with throttling) and the admins' user management.

Services flush, never commit: the request's session (or the CLI) commits. The one exception is
sign-in, which writes nothing but throttling bookkeeping: it uses short transactions of its own
(see `app.accounts.throttle`) so that a failure is counted although the request answers 401, and so
that no transaction is open while the password hash is computed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import anyio.to_thread
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import (
    AccountDisabled,
    CannotDisableSelf,
    EmailTaken,
    InvalidAccountData,
    InvalidCredentials,
    NotABuyer,
    UserNotFound,
)
from app.accounts.schemas import (
    DISPLAY_NAME_MAX_LENGTH,
    RegisterRequest,
    Token,
    UserCreate,
    UserUpdate,
    check_password,
    normalize_email,
)
from app.accounts.throttle import LoginThrottle
from app.audit.service import record
from app.core.config import Settings
from app.core.db import Database
from app.core.pagination import decode_cursor, encode_cursor
from app.core.ratelimit import RateLimited, RateLimiter
from app.core.security import create_access_token, hash_password, verify_password
from app.core.sql import escape_like
from app.core.validators import MainlandMobile, RegionCode
from app.models import BuyerType, Role, User

_phone = TypeAdapter(MainlandMobile)
_region = TypeAdapter(RegionCode)

# Roles an account can be created with directly; merchant members come from onboarding.
CREATABLE_ROLES = (Role.admin, Role.official, Role.buyer)


def _checked(field: str, value: str, check: TypeAdapter[str]) -> str:
    try:
        return check.validate_python(value)
    except ValidationError as exc:
        raise InvalidAccountData(field, exc.errors()[0]["msg"]) from None


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role,
    region_code: str,
    buyer_type: BuyerType | None = None,
    phone: str | None = None,
) -> User:
    """Add an account and flush it.

    Re-checks every input, since callers such as the CLI bypass the HTTP schemas:
    `InvalidAccountData` (422) for a bad value or a role that cannot be created here (`merchant`),
    `EmailTaken` (409) when the e-mail, compared case-insensitively, is in use.
    """
    try:
        email = normalize_email(email)
    except ValueError as exc:
        raise InvalidAccountData("email", str(exc)) from None
    try:
        check_password(password)
    except ValueError as exc:
        raise InvalidAccountData("password", str(exc)) from None
    display_name = display_name.strip()
    if not 1 <= len(display_name) <= DISPLAY_NAME_MAX_LENGTH:
        raise InvalidAccountData(
            "display_name", f"a display name has 1–{DISPLAY_NAME_MAX_LENGTH} characters"
        )
    if role not in CREATABLE_ROLES:
        raise InvalidAccountData("role", "merchant accounts are created by merchant onboarding")
    if role == Role.buyer and buyer_type is None:
        raise InvalidAccountData("buyer_type", "buyer_type is required for a buyer")
    if role != Role.buyer and buyer_type is not None:
        raise InvalidAccountData("buyer_type", f"buyer_type must be absent for an {role}")
    region_code = _checked("region_code", region_code, _region)
    if phone is not None:
        phone = _checked("phone", phone, _phone)

    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken()
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    user = User(
        email=email,
        password_hash=password_hash,
        display_name=display_name,
        phone=phone,
        region_code=region_code,
        role=role,
        buyer_type=buyer_type,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent sign-up with the same e-mail won the race
        raise EmailTaken() from None
    return user


async def register_buyer(session: AsyncSession, data: RegisterRequest) -> User:
    """A self sign-up: an individual buyer."""
    return await create_user(
        session,
        email=data.email,
        password=data.password,
        display_name=data.display_name,
        role=Role.buyer,
        buyer_type=BuyerType.individual,
        region_code=data.region_code,
        phone=data.phone,
    )


async def count_signup(limiter: RateLimiter, settings: Settings, address: str) -> None:
    """Count a sign-up attempt from `address`; over `SIGNUPS_PER_HOUR_PER_ADDRESS` it is
    `RateLimited` (429). Counted in the limiter's own transaction, whatever the sign-up does."""
    limit = settings.signups_per_hour_per_address
    if limit == 0:
        return
    hit = await limiter.hit(f"signup:{address}", limit, 3600)
    if not hit.allowed:
        raise RateLimited("Too many sign-ups from this address.", hit.retry_after)


async def create_user_by_admin(session: AsyncSession, actor: User, data: UserCreate) -> User:
    """An account created by an admin; audited as `user.created`."""
    user = await create_user(
        session,
        email=data.email,
        password=data.password,
        display_name=data.display_name,
        role=data.role,
        buyer_type=data.buyer_type,
        region_code=data.region_code,
        phone=data.phone,
    )
    await record(
        session,
        actor_id=actor.id,
        action="user.created",
        subject_type="user",
        subject_id=user.id,
        detail={"role": user.role.value, "buyer_type": _value(user.buyer_type)},
    )
    return user


async def issue_token(
    db: Database,
    throttle: LoginThrottle,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
) -> Token:
    """Sign in with e-mail and password.

    The attempt is counted before the password is checked (`LoginThrottle.begin`): over a limit
    it is `TooManyAttempts` (429) whatever the password. `InvalidCredentials` (401) for an unknown
    e-mail or a wrong password, alike in answer and in time; `AccountDisabled` (401) for a disabled
    account with the right password. A right password gives the attempt back.
    """
    email = email.strip().lower()
    attempt = await throttle.begin(email, address)

    # One read, outside any write transaction (no SQLite write lock), closed before the slow hash.
    async with AsyncSession(db.read_engine, expire_on_commit=False) as session:
        user = await session.scalar(select(User).where(User.email == email))
    stored_hash = user.password_hash if user is not None else None
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop. An unknown e-mail
    # burns the same work against a dummy hash.
    valid = await anyio.to_thread.run_sync(verify_password, password, stored_hash)
    if user is None or not valid:
        raise InvalidCredentials()
    await throttle.succeeded(attempt)
    if user.disabled:
        raise AccountDisabled()
    token, expires_in = create_access_token(
        user.id, settings.secret_key, settings.access_token_minutes
    )
    return Token(access_token=token, expires_in=expires_in)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The user; `UserNotFound` (404) otherwise."""
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


_USERS_CURSOR = "users:newest"


async def list_users(
    session: AsyncSession,
    *,
    role: Role | None = None,
    email: str | None = None,
    q: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[Sequence[User], str | None]:
    """Users newest first, filtered by role, exact e-mail (any case) and a substring of the e-mail
    or display name; keyset-paginated on (created_at, id). Returns the page and the next cursor."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    if email is not None:
        query = query.where(User.email == email.strip().lower())
    if q:
        pattern = "%" + escape_like(q.strip()) + "%"
        query = query.where(
            or_(
                User.email.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        after_at, after_id = _decode_users_cursor(cursor)
        query = query.where(
            or_(
                User.created_at < after_at,
                and_(User.created_at == after_at, User.id < after_id),
            )
        )
    query = query.order_by(User.created_at.desc(), User.id.desc()).limit(limit + 1)
    users = list((await session.scalars(query)).all())
    next_cursor = None
    if len(users) > limit:
        users = users[:limit]
        last = users[-1]
        next_cursor = encode_cursor(_USERS_CURSOR, [last.created_at.isoformat(), str(last.id)])
    return users, next_cursor


def _decode_users_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    after_at, after_id = decode_cursor(cursor, _USERS_CURSOR, datetime, uuid.UUID)
    return after_at, after_id


async def update_user(
    session: AsyncSession, actor: User, user_id: uuid.UUID, data: UserUpdate
) -> User:
    """Apply an admin's changes, all or nothing, with audit events for each real change.

    `UserNotFound` (404); `NotABuyer` (409) for a buyer type on an account without one (admins,
    officials, merchant members who had none); `CannotDisableSelf` (409).
    """
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise UserNotFound()
    changes = data.model_fields_set
    if "buyer_type" in changes and not (
        user.role == Role.buyer or (user.role == Role.merchant and user.buyer_type is not None)
    ):
        raise NotABuyer()
    if "disabled" in changes and data.disabled and user.id == actor.id:
        raise CannotDisableSelf()

    if "buyer_type" in changes and data.buyer_type != user.buyer_type:
        old = user.buyer_type
        user.buyer_type = data.buyer_type
        await record(
            session,
            actor_id=actor.id,
            action="user.buyer_type_changed",
            subject_type="user",
            subject_id=user.id,
            detail={"old": _value(old), "new": _value(data.buyer_type)},
        )
    if "disabled" in changes and data.disabled is not None and data.disabled != user.disabled:
        user.disabled = data.disabled
        await record(
            session,
            actor_id=actor.id,
            action="user.disabled" if data.disabled else "user.enabled",
            subject_type="user",
            subject_id=user.id,
        )
    if "display_name" in changes and data.display_name is not None:
        user.display_name = data.display_name
    await session.flush()
    return user


def _value(buyer_type: BuyerType | None) -> str | None:
    return buyer_type.value if buyer_type is not None else None
