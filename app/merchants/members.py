"""A merchant's members: staff join only by accepting the owner's invitation, and leave (or are
removed by the owner) to become buyers again.

No one is made staff without consent, and inviting reveals nothing: the owner gets the same
answer whether the address has an account or not, and whatever that account is. An invitation
is stored only when the address is free or a buyer's at the time; one to an admin, an official
or any merchant's member is audited and dropped, so it can never be accepted. Each step is an
audit event on the merchant.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import refuse_official
from app.audit.service import record
from app.core.errors import Forbidden
from app.core.pagination import decode_cursor, encode_cursor
from app.core.time import utcnow
from app.merchants.errors import (
    CannotRemoveOwner,
    InvalidTransition,
    InvitationExpired,
    InvitationNotFound,
    MemberNotFound,
    MerchantNotApproved,
    NotABuyer,
    OrdersInProgress,
)
from app.merchants.service import (
    SUBJECT,
    _join,
    _require_owner,
    _visible_merchant,
    sees_private,
)
from app.models import (
    BuyerType,
    InvitationStatus,
    Merchant,
    MerchantInvitation,
    MerchantRole,
    MerchantStatus,
    Role,
    User,
)
from app.orders.service import has_orders_in_progress

# --- inviting ----------------------------------------------------------------------------------


async def invite_member(
    session: AsyncSession, owner: User, merchant_id: uuid.UUID, email: str, ttl: timedelta
) -> datetime:
    """The owner of an approved merchant invites `email` (lower-cased) as staff; returns when
    the invitation expires. A pending invitation of the same address to this merchant is
    replaced by the new one (`replaced`), so inviting again renews it.

    Raises MerchantNotFound (hidden merchant), Forbidden (not its owner), MerchantNotApproved."""
    merchant = await _visible_merchant(session, owner, merchant_id)
    _require_owner(owner, merchant)
    if merchant.status != MerchantStatus.approved:
        raise MerchantNotApproved("Only an approved merchant invites staff.")
    now = utcnow()
    expires_at = now + ttl
    await session.execute(
        update(MerchantInvitation)
        .where(
            MerchantInvitation.merchant_id == merchant.id,
            MerchantInvitation.email == email,
            MerchantInvitation.status == InvitationStatus.pending,
        )
        .values(status=InvitationStatus.replaced, decided_at=now)
    )
    role = await session.scalar(select(User.role).where(User.email == email))
    deliverable = role is None or role == Role.buyer
    invitation_id: uuid.UUID | None = None
    if deliverable:
        invitation = MerchantInvitation(
            merchant_id=merchant.id,
            email=email,
            invited_by_id=owner.id,
            status=InvitationStatus.pending,
            expires_at=expires_at,
        )
        try:
            async with session.begin_nested():
                session.add(invitation)
                await session.flush()
            invitation_id = invitation.id
        except IntegrityError:
            # A concurrent invitation of the same address won the pending slot; it is as
            # fresh as ours, and the answer is the same.
            pass
    await record(
        session,
        actor_id=owner.id,
        action="merchant.member_invited",
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail={
            "email": email,
            "invitation_id": str(invitation_id) if invitation_id else None,
            "deliverable": deliverable,
        },
    )
    return expires_at


# --- the invited account's side ----------------------------------------------------------------


async def list_my_invitations(
    session: AsyncSession, user: User, *, limit: int, cursor: str | None
) -> tuple[list[tuple[MerchantInvitation, str]], str | None]:
    """The invitations addressed to the caller's e-mail, newest first, each with its merchant's
    name; replaced ones are left out (the newer invitation is listed)."""
    stmt = (
        select(MerchantInvitation, Merchant.name)
        .join(Merchant, Merchant.id == MerchantInvitation.merchant_id)
        .where(
            MerchantInvitation.email == user.email,
            MerchantInvitation.status != InvitationStatus.replaced,
        )
    )
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor, "invitations", datetime, uuid.UUID)
        stmt = stmt.where(
            or_(
                MerchantInvitation.created_at < after_at,
                and_(MerchantInvitation.created_at == after_at, MerchantInvitation.id < after_id),
            )
        )
    stmt = stmt.order_by(MerchantInvitation.created_at.desc(), MerchantInvitation.id.desc())
    rows = [(inv, name) for inv, name in (await session.execute(stmt.limit(limit + 1))).all()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = encode_cursor("invitations", [last.created_at, last.id])
    return rows, next_cursor


async def _answerable(
    session: AsyncSession, user: User, invitation_id: uuid.UUID, now: datetime
) -> MerchantInvitation:
    """The caller's own invitation, still pending and not expired. Another user's invitation
    is `invitation_not_found` (404), like one that does not exist; officials get 403."""
    refuse_official(user.role)
    invitation = await session.get(MerchantInvitation, invitation_id)
    if invitation is None or invitation.email != user.email:
        raise InvitationNotFound("No such invitation.")
    if invitation.status != InvitationStatus.pending:
        raise InvalidTransition(
            f"This invitation is already {invitation.status.value}.",
            extra={"from": invitation.status.value},
        )
    if invitation.expires_at <= now:
        raise InvitationExpired("This invitation has expired; ask the owner to invite you again.")
    return invitation


async def _close(
    session: AsyncSession, invitation: MerchantInvitation, status: InvitationStatus, now: datetime
) -> None:
    """pending → `status`, conditionally: of two answers racing, only one lands."""
    closed = await session.scalar(
        update(MerchantInvitation)
        .where(
            MerchantInvitation.id == invitation.id,
            MerchantInvitation.status == InvitationStatus.pending,
        )
        .values(status=status, decided_at=now)
        .returning(MerchantInvitation.id)
    )
    if closed is None:
        raise InvalidTransition("This invitation was answered meanwhile.")
    await session.refresh(invitation)


async def accept_invitation(
    session: AsyncSession, user: User, invitation_id: uuid.UUID
) -> tuple[MerchantInvitation, str]:
    """The invited buyer joins the merchant as staff (its role becomes `merchant`).

    Raises InvitationNotFound, InvalidTransition (already answered or replaced),
    InvitationExpired, NotABuyer (the caller is no longer a buyer), OrdersInProgress,
    MerchantNotApproved (the merchant was suspended meanwhile)."""
    now = utcnow()
    invitation = await _answerable(session, user, invitation_id, now)
    if user.role != Role.buyer:
        raise NotABuyer("Only a buyer account can join a merchant; yours is not one now.")
    if await has_orders_in_progress(session, user.id):
        raise OrdersInProgress(
            "Finish or cancel your orders in progress before joining a merchant."
        )
    merchant = await session.get(Merchant, invitation.merchant_id)
    assert merchant is not None  # merchants are never deleted
    if merchant.status != MerchantStatus.approved:
        raise MerchantNotApproved("This merchant is not approved at the moment; try later.")
    await _close(session, invitation, InvitationStatus.accepted, now)
    if not await _join(session, user.id, merchant.id, MerchantRole.staff):
        raise NotABuyer("Only a buyer account can join a merchant; yours is not one now.")
    await record(
        session,
        actor_id=user.id,
        action="merchant.invitation_accepted",
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail={
            "invitation_id": str(invitation.id),
            "user_id": str(user.id),
            "merchant_role": MerchantRole.staff.value,
        },
    )
    return invitation, merchant.name


async def decline_invitation(
    session: AsyncSession, user: User, invitation_id: uuid.UUID
) -> tuple[MerchantInvitation, str]:
    """The invited account says no. Raises InvitationNotFound, InvalidTransition,
    InvitationExpired."""
    now = utcnow()
    invitation = await _answerable(session, user, invitation_id, now)
    await _close(session, invitation, InvitationStatus.declined, now)
    merchant = await session.get(Merchant, invitation.merchant_id)
    assert merchant is not None
    await record(
        session,
        actor_id=user.id,
        action="merchant.invitation_declined",
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail={"invitation_id": str(invitation.id), "user_id": str(user.id)},
    )
    return invitation, merchant.name


# --- members -----------------------------------------------------------------------------------


async def list_members(
    session: AsyncSession,
    viewer: User,
    merchant_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """The merchant's members ordered by e-mail (members carry no joining date), for its
    members and admins."""
    merchant = await _visible_merchant(session, viewer, merchant_id)
    if not sees_private(viewer, merchant.id):
        raise Forbidden("Only the merchant's members and admins may list its members.")
    stmt = select(User).where(User.merchant_id == merchant.id)
    if cursor is not None:
        (after_email,) = decode_cursor(cursor, "members", str)
        stmt = stmt.where(User.email > str(after_email))
    rows = list((await session.scalars(stmt.order_by(User.email).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("members", [rows[-1].email])
    return rows, next_cursor


async def remove_member(
    session: AsyncSession, actor: User, merchant_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Turn a staff member back into a buyer: the owner removes staff, or staff leaves (the
    caller names itself). Raises MerchantNotFound (hidden merchant), Forbidden (someone else's
    membership, and not the owner), MemberNotFound, CannotRemoveOwner."""
    merchant = await _visible_merchant(session, actor, merchant_id)
    leaving = actor.id == user_id
    if not leaving:
        _require_owner(actor, merchant)
    member = await session.get(User, user_id)
    if member is None or member.merchant_id != merchant.id:
        raise MemberNotFound("This user is not a member of the merchant.")
    if member.merchant_role == MerchantRole.owner:
        raise CannotRemoveOwner("The owner cannot be removed from its merchant.")
    removed = await session.scalar(
        update(User)
        .where(
            User.id == member.id,
            User.merchant_id == merchant.id,
            User.merchant_role == MerchantRole.staff,
        )
        .values(
            role=Role.buyer,
            merchant_id=None,
            merchant_role=None,
            buyer_type=member.buyer_type or BuyerType.individual,
        )
        .returning(User.id)
    )
    if removed is None:
        raise MemberNotFound("This user is not a member of the merchant.")
    await record(
        session,
        actor_id=actor.id,
        action="merchant.member_left" if leaving else "merchant.member_removed",
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail={"user_id": str(member.id)},
    )
