"""Merchant onboarding: applications, the status machine and profile edits (members and
invitations: `app/merchants/members.py`).

Who may see what: an approved merchant is public; its members and admins see it in any status;
to anyone else a merchant that is not approved does not exist (404). Permission checks come after
that visibility check, so a refusal (403) never reveals a hidden merchant.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.errors import Forbidden
from app.core.pagination import decode_cursor, encode_cursor
from app.core.time import utcnow
from app.merchants import uscc as uscc_check
from app.merchants.errors import (
    AlreadyMerchant,
    InvalidTransition,
    InvalidUSCC,
    MerchantNotFound,
    OrdersInProgress,
    UsccTaken,
)
from app.merchants.schemas import (
    BankAccountIn,
    MerchantCreate,
    MerchantUpdate,
    mask_account_no,
)
from app.models import (
    Merchant,
    MerchantKind,
    MerchantRole,
    MerchantStatus,
    Role,
    User,
)
from app.orders.service import has_orders_in_progress

OWNER_EDITABLE = frozenset({"contact_phone", "address", "bank_account"})
APPLICATION_FIELDS = frozenset(MerchantUpdate.model_fields)
"""While `rejected`, the owner may correct every field of the application before resubmitting."""
SUBJECT = "merchant"


# --- visibility and permissions -------------------------------------------------------------


def is_member(user: User | None, merchant_id: uuid.UUID) -> bool:
    return user is not None and user.role == Role.merchant and user.merchant_id == merchant_id


def sees_private(user: User | None, merchant_id: uuid.UUID) -> bool:
    """Members of the merchant and admins see the whole merchant (`MerchantRead`)."""
    return (user is not None and user.role == Role.admin) or is_member(user, merchant_id)


async def _visible_merchant(
    session: AsyncSession, viewer: User | None, merchant_id: uuid.UUID
) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None or (
        merchant.status != MerchantStatus.approved and not sees_private(viewer, merchant.id)
    ):
        raise MerchantNotFound("No such merchant.")
    return merchant


def _require_owner(user: User, merchant: Merchant) -> None:
    if not (is_member(user, merchant.id) and user.merchant_role == MerchantRole.owner):
        raise Forbidden("Only the merchant's owner may do this.")


# --- helpers -----------------------------------------------------------------------------------


def _checked_uscc(raw: str) -> str:
    code = uscc_check.normalize(raw)
    if not uscc_check.is_valid(code):
        raise InvalidUSCC(["body", "uscc"])
    return code


async def _ensure_uscc_free(session: AsyncSession, code: str) -> None:
    taken = await session.scalar(select(Merchant.id).where(Merchant.uscc == code))
    if taken is not None:
        raise UsccTaken("A merchant with this unified social credit code is already registered.")


async def _flush_guarding_uscc(session: AsyncSession, merchant: Merchant) -> None:
    """Flush `merchant` in a SAVEPOINT; a concurrent registration of the same code (the unique
    index fires) becomes `409 uscc_taken` instead of a 500."""
    try:
        async with session.begin_nested():
            session.add(merchant)
            await session.flush()
    except IntegrityError as exc:
        if "uscc" not in str(exc.orig):
            raise
        raise UsccTaken(
            "A merchant with this unified social credit code is already registered."
        ) from None


async def _join(
    session: AsyncSession, user_id: uuid.UUID, merchant_id: uuid.UUID, role: MerchantRole
) -> bool:
    """Make a buyer a member of the merchant; False if the user is no longer a buyer (checked
    in the UPDATE itself, so two concurrent requests cannot both succeed)."""
    joined = await session.scalar(
        update(User)
        .where(User.id == user_id, User.role == Role.buyer)
        .values(role=Role.merchant, merchant_id=merchant_id, merchant_role=role)
        .returning(User.id)
    )
    return joined is not None


# --- applying ----------------------------------------------------------------------------------


async def apply_for_merchant(
    session: AsyncSession, applicant: User, data: MerchantCreate
) -> Merchant:
    """Register a `pending` merchant with the applicant (a buyer) as its owner; the applicant's
    role becomes `merchant` in the same transaction.

    Raises Forbidden (admins, officials), AlreadyMerchant, InvalidUSCC, UsccTaken."""
    if applicant.role in (Role.admin, Role.official):
        raise Forbidden("Admins and officials cannot apply for a merchant.")
    if applicant.role == Role.merchant:
        raise AlreadyMerchant("You are already a member of a merchant.")
    if await has_orders_in_progress(session, applicant.id):
        raise OrdersInProgress(
            "Finish or cancel your orders in progress before applying for a merchant."
        )
    code = _checked_uscc(data.uscc)
    await _ensure_uscc_free(session, code)
    households = data.linked_households
    merchant = Merchant(
        name=data.name,
        kind=data.kind,
        uscc=code,
        legal_representative=data.legal_representative,
        contact_phone=data.contact_phone,
        region_code=data.region_code,
        township=data.township,
        address=data.address,
        households=households.households,
        poverty_alleviated_households=households.poverty_alleviated,
        monitored_households=households.monitored,
        bank_name=data.bank_account.bank_name,
        bank_account_name=data.bank_account.account_name,
        bank_account_no=data.bank_account.account_no,
        status=MerchantStatus.pending,
    )
    await _flush_guarding_uscc(session, merchant)
    if not await _join(session, applicant.id, merchant.id, MerchantRole.owner):
        # Another request of the same user made it a member first; the request rolls back.
        raise AlreadyMerchant("You are already a member of a merchant.")
    return merchant


# --- reading -----------------------------------------------------------------------------------


async def get_merchant(
    session: AsyncSession, viewer: User | None, merchant_id: uuid.UUID
) -> tuple[Merchant, bool]:
    """The merchant and whether the viewer sees all of it; MerchantNotFound when hidden."""
    merchant = await _visible_merchant(session, viewer, merchant_id)
    return merchant, sees_private(viewer, merchant.id)


def _decode_merchant_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    created_at, merchant_id = decode_cursor(cursor, "merchants", datetime, uuid.UUID)
    return created_at, merchant_id


async def list_merchants(
    session: AsyncSession,
    viewer: User | None,
    *,
    status: MerchantStatus | None,
    township: str | None,
    kind: MerchantKind | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Merchant], str | None, bool]:
    """A page of merchants, newest first, the next cursor, and whether the viewer (an admin)
    sees every status and all fields. For anyone else only approved merchants are listed and
    the filters narrow that set."""
    admin = viewer is not None and viewer.role == Role.admin
    stmt = select(Merchant)
    if not admin:
        stmt = stmt.where(Merchant.status == MerchantStatus.approved)
    if status is not None:
        stmt = stmt.where(Merchant.status == status)
    if township is not None:
        stmt = stmt.where(Merchant.township == township)
    if kind is not None:
        stmt = stmt.where(Merchant.kind == kind)
    if cursor is not None:
        after_at, after_id = _decode_merchant_cursor(cursor)
        stmt = stmt.where(
            or_(
                Merchant.created_at < after_at,
                and_(Merchant.created_at == after_at, Merchant.id < after_id),
            )
        )
    stmt = stmt.order_by(Merchant.created_at.desc(), Merchant.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor("merchants", [last.created_at.isoformat(), str(last.id)])
    return rows, next_cursor, admin


# --- the status machine ------------------------------------------------------------------------

_TRANSITIONS: dict[str, tuple[MerchantStatus, MerchantStatus, str]] = {
    "approve": (MerchantStatus.pending, MerchantStatus.approved, "merchant.approved"),
    "reject": (MerchantStatus.pending, MerchantStatus.rejected, "merchant.rejected"),
    "suspend": (MerchantStatus.approved, MerchantStatus.suspended, "merchant.suspended"),
    "reinstate": (MerchantStatus.suspended, MerchantStatus.approved, "merchant.reinstated"),
}


async def _transition(
    session: AsyncSession,
    admin: User,
    merchant_id: uuid.UUID,
    verb: str,
    reason: str | None = None,
) -> Merchant:
    """Move the merchant along one edge of the status machine with a conditional UPDATE
    (`WHERE status = :from`), so of two admins racing only one succeeds; the other gets
    `409 invalid_transition`. Writes the audit event."""
    if admin.role != Role.admin:
        # 404 if the caller may not see the merchant; its own members and anyone (for an
        # approved merchant) see it, and are refused with 403.
        await _visible_merchant(session, admin, merchant_id)
        raise Forbidden("Only admins decide on merchants.")
    expected, target, action = _TRANSITIONS[verb]
    values: dict[str, Any] = {"status": target, "status_reason": reason}
    if verb == "approve":
        values["approved_at"] = utcnow()
    merchant: Merchant | None = await session.scalar(
        update(Merchant)
        .where(Merchant.id == merchant_id, Merchant.status == expected)
        .values(**values)
        .returning(Merchant),
        execution_options={"populate_existing": True},
    )
    if merchant is None:
        current = await session.scalar(select(Merchant.status).where(Merchant.id == merchant_id))
        if current is None:
            raise MerchantNotFound("No such merchant.")
        raise InvalidTransition(
            f"Cannot {verb} a merchant that is {current.value} ({current.value} → {target.value}"
            f" is not allowed; {verb} applies to {expected.value} merchants).",
            extra={"from": current.value, "to": target.value},
        )
    detail: dict[str, Any] = {"from": expected.value, "to": target.value}
    if reason is not None:
        detail["reason"] = reason
    await record(
        session,
        actor_id=admin.id,
        action=action,
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail=detail,
    )
    return merchant


async def approve_merchant(session: AsyncSession, admin: User, merchant_id: uuid.UUID) -> Merchant:
    """pending → approved; sets `approved_at`."""
    return await _transition(session, admin, merchant_id, "approve")


async def reject_merchant(
    session: AsyncSession, admin: User, merchant_id: uuid.UUID, reason: str
) -> Merchant:
    """pending → rejected, with the reason in `status_reason`."""
    return await _transition(session, admin, merchant_id, "reject", reason)


async def suspend_merchant(
    session: AsyncSession, admin: User, merchant_id: uuid.UUID, reason: str
) -> Merchant:
    """approved → suspended, with the reason in `status_reason`."""
    return await _transition(session, admin, merchant_id, "suspend", reason)


async def reinstate_merchant(
    session: AsyncSession, admin: User, merchant_id: uuid.UUID
) -> Merchant:
    """suspended → approved; `approved_at` keeps the first approval."""
    return await _transition(session, admin, merchant_id, "reinstate")


# --- editing -----------------------------------------------------------------------------------

_PLAIN_FIELDS = (
    "name",
    "kind",
    "legal_representative",
    "contact_phone",
    "region_code",
    "township",
    "address",
)


async def update_merchant(
    session: AsyncSession, actor: User, merchant_id: uuid.UUID, data: MerchantUpdate
) -> Merchant:
    """Apply a partial update. Admins may change every field; the owner only `contact_phone`,
    `address` and `bank_account` (anything else: 403 naming the fields), or every field while
    the merchant is `rejected`. Admin edits, and the owner's corrections of a rejected
    application, are audited as `merchant.updated` with the changed field names (never the
    values). A change of
    the bank account by anyone is audited as `merchant.bank_account_changed`, and by the owner it
    puts payouts on hold (`_change_bank_account`)."""
    merchant = await _visible_merchant(session, actor, merchant_id)
    sent = set(data.model_fields_set)
    admin = actor.role == Role.admin
    if not admin:
        _require_owner(actor, merchant)
        if sent - OWNER_EDITABLE:
            # Lock the row (PostgreSQL), so a resubmission cannot slip in between the check of
            # the status and the edit of the application.
            await session.refresh(merchant, with_for_update=True)
        editable = (
            APPLICATION_FIELDS if merchant.status == MerchantStatus.rejected else OWNER_EDITABLE
        )
        refused = sorted(sent - editable)
        if refused:
            raise Forbidden(
                "An owner may change only contact_phone, address and bank_account (every field "
                f"while the merchant is rejected); ask an admin to change: {', '.join(refused)}.",
                extra={"fields": refused},
            )

    changed: list[str] = []
    if data.uscc is not None:
        code = _checked_uscc(data.uscc)
        if code != merchant.uscc:
            await _ensure_uscc_free(session, code)
            merchant.uscc = code
            changed.append("uscc")
    for field in _PLAIN_FIELDS:
        value = getattr(data, field)
        if value is not None and value != getattr(merchant, field):
            setattr(merchant, field, value)
            changed.append(field)
    if data.linked_households is not None:
        h = data.linked_households
        new = (h.households, h.poverty_alleviated, h.monitored)
        old = (
            merchant.households,
            merchant.poverty_alleviated_households,
            merchant.monitored_households,
        )
        if new != old:
            (
                merchant.households,
                merchant.poverty_alleviated_households,
                merchant.monitored_households,
            ) = new
            changed.append("linked_households")
    if data.bank_account is not None and await _change_bank_account(
        session, actor, merchant, data.bank_account, hold=not admin
    ):
        changed.append("bank_account")

    if changed:
        merchant.updated_at = utcnow()
        await _flush_guarding_uscc(session, merchant)
        if admin or merchant.status == MerchantStatus.rejected:
            await record(
                session,
                actor_id=actor.id,
                action="merchant.updated",
                subject_type=SUBJECT,
                subject_id=merchant.id,
                detail={"fields": sorted(changed)},
            )
    return merchant


_BANK_FIELDS = (
    ("bank_name", "bank_name"),
    ("account_name", "bank_account_name"),
    ("account_no", "bank_account_no"),
)


async def _change_bank_account(
    session: AsyncSession, actor: User, merchant: Merchant, new: BankAccountIn, *, hold: bool
) -> bool:
    """Replace the payout bank account; False if nothing changed.

    A change is audited as `merchant.bank_account_changed`, naming the changed parts and the old
    and new numbers masked (never the numbers). A change by the owner (`hold`) puts payouts on
    hold until an admin verifies the account; an admin's own change does not (the admin is the
    one who checks), and neither clears a hold already set."""
    changed = [
        name for name, column in _BANK_FIELDS if getattr(new, name) != getattr(merchant, column)
    ]
    if not changed:
        return False
    before = mask_account_no(merchant.bank_account_no)
    merchant.bank_name, merchant.bank_account_name, merchant.bank_account_no = (
        new.bank_name,
        new.account_name,
        new.account_no,
    )
    if hold:
        merchant.payouts_on_hold = True
    await record(
        session,
        actor_id=actor.id,
        action="merchant.bank_account_changed",
        subject_type=SUBJECT,
        subject_id=merchant.id,
        detail={
            "changed": changed,
            "account_no_masked": mask_account_no(new.account_no),
            "previous_account_no_masked": before,
            "payouts_on_hold": merchant.payouts_on_hold,
        },
    )
    return True


async def verify_bank_account(
    session: AsyncSession, actor: User, merchant_id: uuid.UUID
) -> Merchant:
    """An admin has checked the payout bank account: clear `payouts_on_hold`.

    Idempotent: the conditional UPDATE (`WHERE payouts_on_hold`) clears a hold once and audits
    that (`merchant.bank_account_verified`); verifying an account with no hold changes nothing
    and records nothing. Others: 404 for a merchant they may not see, 403 otherwise."""
    merchant = await _visible_merchant(session, actor, merchant_id)
    if actor.role != Role.admin:
        raise Forbidden("Only an admin verifies a merchant's bank account.")
    cleared = await session.scalar(
        update(Merchant)
        .where(Merchant.id == merchant.id, Merchant.payouts_on_hold.is_(True))
        .values(payouts_on_hold=False, updated_at=utcnow())
        .returning(Merchant.id)
    )
    await session.refresh(merchant)
    if cleared is not None:
        await record(
            session,
            actor_id=actor.id,
            action="merchant.bank_account_verified",
            subject_type=SUBJECT,
            subject_id=merchant.id,
            detail={"account_no_masked": mask_account_no(merchant.bank_account_no)},
        )
    return merchant
