"""Returning an approved refund's money: through Stripe, or by a bank transfer an admin records.

After approval (`app.refunds.service`) the money is owed to the buyer and sits in
`refunds_in_transit` until it is paid (`refund_paid` posting, status `succeeded`). Nothing here
ever gives it back to the merchant:

- Stripe: each attempt is claimed and committed first (`attempts`, `next_attempt_at`), then Stripe
  is asked with no lock held. The idempotency key is `refund-<id>` while Stripe has never refused,
  `refund-<id>-<refusals>` after: asking again after silence replays the same request (never two
  refunds), asking again after a refusal is a new request. A refusal makes the refund `failed`:
  still owed, retried by the jobs with backoff, by an admin (`retry`), or paid by bank
  (`mark-paid`).
- Bank transfers: the refund stays `approved` until an admin records the outgoing transfer with
  its bank reference (`mark-paid`, once; a reference pays one refund).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.time import utcnow
from app.integrations.stripe import PaymentProviderError, PaymentProviderUnavailable, StripeGateway
from app.ledger.service import Leg, post
from app.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentMethod,
    Refund,
    RefundStatus,
    User,
)
from app.orders.errors import InvalidTransition
from app.orders.lifecycle import lock_order
from app.payments.errors import BankReferenceUsed
from app.refunds.errors import RefundNotFound
from app.refunds.service import load_refund_for_decision

logger = logging.getLogger("shanhai.refunds")

RETRY_BACKOFF_BASE = timedelta(minutes=1)
RETRY_BACKOFF_CAP = timedelta(hours=6)
AUTOMATIC_ATTEMPTS = 12
"""After this many attempts the jobs stop (`next_attempt_at` null); an admin retries or pays."""


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """Backoff after `attempts` attempts: 1, 2, 4 … minutes, at most 6 hours; None at the end."""
    if attempts >= AUTOMATIC_ATTEMPTS:
        return None
    delay: timedelta = min(RETRY_BACKOFF_BASE * (2 ** max(attempts - 1, 0)), RETRY_BACKOFF_CAP)
    return now + delay


def idempotency_key(refund: Refund) -> str:
    base = f"refund-{refund.id}"
    return base if refund.refusals == 0 else f"{base}-{refund.refusals}"


async def _mark_succeeded(session: AsyncSession, refund: Refund) -> None:
    refund.status = RefundStatus.succeeded
    refund.succeeded_at = utcnow()
    refund.next_attempt_at = None
    await post(
        session,
        LedgerKind.refund_paid,
        [
            Leg(LedgerAccount.refunds_in_transit, refund.amount_fen),
            Leg(LedgerAccount.platform_cash, -refund.amount_fen),
        ],
        order_id=refund.order_id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
    )
    await session.flush()


async def _mark_failed(session: AsyncSession, refund: Refund, message: str) -> None:
    """The provider refused. The approval stands (quantities, `refunded_fen`, the money in
    `refunds_in_transit`): the refund is still owed to the buyer, and is retried."""
    refund.status = RefundStatus.failed
    refund.failure_message = message[:500]
    refund.refusals += 1
    refund.next_attempt_at = next_attempt(refund.attempts, utcnow())
    await session.flush()
    logger.error(
        "refund refused by the provider",
        extra={"refund_id": str(refund.id), "attempts": refund.attempts, "error": message[:200]},
    )


async def _claim_attempt(
    session: AsyncSession, refund_id: uuid.UUID, *, retry_failed: bool, can_send: bool
) -> tuple[Refund, Payment] | None:
    """Lock the refund's order and, if the refund is to be sent, count the attempt and push
    `next_attempt_at` (a lease the jobs respect). None when there is nothing to send; raises
    PaymentProviderUnavailable, changing nothing, when Stripe is not configured."""
    refund = await session.get(Refund, refund_id, populate_existing=True)
    if refund is None:
        raise RefundNotFound("No such refund.")
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    sendable = refund.status == RefundStatus.approved or (
        retry_failed and refund.status == RefundStatus.failed
    )
    if not sendable:
        return None
    payment = await session.get(Payment, refund.payment_id)
    assert payment is not None
    if payment.provider == PaymentMethod.bank_transfer:
        refund.next_attempt_at = None  # paid when an admin records the transfer
        await session.flush()
        return None
    if not can_send or payment.provider_reference is None:
        raise PaymentProviderUnavailable("Stripe is not configured; the refund will be retried.")
    refund.status = RefundStatus.approved  # a failed one is on its way again
    refund.attempts += 1
    refund.next_attempt_at = next_attempt(refund.attempts, utcnow())
    await session.flush()
    return refund, payment


async def settle_with_provider(
    session: AsyncSession,
    gateway: StripeGateway | None,
    refund_id: uuid.UUID,
    *,
    retry_failed: bool = False,
) -> Refund:
    """Send an approved refund (and, with `retry_failed`, a failed one) to Stripe; commits
    before calling out. A bank refund is left `approved` for `mark-paid`.

    Raises PaymentProviderUnavailable when Stripe is not reached (the refund stays `approved`,
    and the jobs retry it at `next_attempt_at`).
    """
    await session.commit()
    claimed = await _claim_attempt(
        session, refund_id, retry_failed=retry_failed, can_send=gateway is not None
    )
    await session.commit()  # the attempt is counted even if the call never returns
    refund = await session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    if claimed is None:
        return refund
    _, payment = claimed
    assert gateway is not None and payment.provider_reference is not None
    key = idempotency_key(refund)
    try:
        result = await gateway.create_refund(
            refund_id=refund.id,
            intent_id=payment.provider_reference,
            amount_fen=refund.amount_fen,
            idempotency_key=key,
        )
    except PaymentProviderError as exc:
        await lock_order(session, refund.order_id)
        await session.refresh(refund)
        if refund.status == RefundStatus.approved and idempotency_key(refund) == key:
            await _mark_failed(session, refund, exc.detail)
        return refund
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    if refund.status != RefundStatus.approved:
        return refund
    refund.provider_reference = result.id
    if result.status == "succeeded":
        await _mark_succeeded(session, refund)
    elif result.status in ("failed", "canceled"):
        await _mark_failed(session, refund, f"Stripe refund {result.status}")
    await session.flush()
    return refund


async def apply_provider_refund_status(
    session: AsyncSession,
    provider_reference: str,
    status: str,
    message: str | None = None,
    *,
    refund_id: str | None = None,
) -> None:
    """A refund's final status reported by Stripe (charge.refunded / refund events).

    `refund_id` is our id from the Stripe refund's metadata: it finds a refund whose creation
    reached Stripe while its answer never reached us (we hold no provider reference for it).
    """
    refund = await session.scalar(
        select(Refund).where(Refund.provider_reference == provider_reference)
    )
    if refund is None and refund_id:
        try:
            ours = await session.get(Refund, uuid.UUID(refund_id))
        except ValueError:
            ours = None
        if ours is not None and ours.provider_reference is None:
            refund = ours
    if refund is None:
        logger.info("refund unknown to us", extra={"provider_reference": provider_reference})
        return
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    if refund.status != RefundStatus.approved:
        return
    if refund.provider_reference is None:
        refund.provider_reference = provider_reference
    elif refund.provider_reference != provider_reference:
        return  # about an earlier attempt, refused before this one was sent
    if status == "succeeded":
        await _mark_succeeded(session, refund)
    elif status in ("failed", "canceled"):
        await _mark_failed(session, refund, message or f"Stripe refund {status}")
    await session.flush()


async def _reversed_before(session: AsyncSession, refund: Refund) -> bool:
    """A refund that failed before failed refunds stayed owed had its approval reversed in the
    ledger (`refund_failed`): it is no longer owed there, so it cannot be paid or retried."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    LedgerEntry.refund_id == refund.id,
                    LedgerEntry.kind == LedgerKind.refund_failed,
                )
            )
        )
    )


async def retry_refund(
    session: AsyncSession, gateway: StripeGateway | None, admin: User, refund_id: uuid.UUID
) -> Refund:
    """An admin asks Stripe again for a `failed` refund (a new request after the refusal).
    A `succeeded` refund is returned unchanged; any other status is `409 invalid_transition`."""
    refund = await load_refund_for_decision(session, admin, refund_id, admins_only=True)
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    if refund.status == RefundStatus.succeeded:
        return refund
    if refund.status != RefundStatus.failed or await _reversed_before(session, refund):
        raise InvalidTransition(f"A refund that is {refund.status} cannot be retried.")
    await record(
        session,
        actor_id=admin.id,
        action="refund.retried",
        subject_type="refund",
        subject_id=refund.id,
        detail={"order_id": str(refund.order_id), "attempts": refund.attempts},
    )
    return await settle_with_provider(session, gateway, refund.id, retry_failed=True)


async def mark_refund_paid(
    session: AsyncSession, admin: User, refund_id: uuid.UUID, bank_reference: str
) -> Refund:
    """An admin records the bank transfer that paid a refund back: a bank refund that is
    `approved`, or any `failed` refund. Once: `409 invalid_transition` afterwards, and for a
    Stripe refund still on its way (Stripe may pay it). A bank reference pays one refund
    (`409 bank_reference_used`)."""
    refund = await load_refund_for_decision(session, admin, refund_id, admins_only=True)
    await lock_order(session, refund.order_id)
    await session.refresh(refund)
    payment = await session.get(Payment, refund.payment_id)
    assert payment is not None
    by_bank = payment.provider == PaymentMethod.bank_transfer
    payable = refund.status == RefundStatus.failed or (
        refund.status == RefundStatus.approved and by_bank
    )
    if not payable or await _reversed_before(session, refund):
        raise InvalidTransition(f"A refund that is {refund.status} cannot be marked paid.")
    used = await session.scalar(select(Refund.id).where(Refund.bank_reference == bank_reference))
    if used is not None:
        raise BankReferenceUsed("This bank reference already paid another refund.")
    refund.bank_reference = bank_reference
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same reference recorded by a concurrent request
        raise BankReferenceUsed("This bank reference already paid another refund.") from None
    await _mark_succeeded(session, refund)
    await record(
        session,
        actor_id=admin.id,
        action="refund.paid_by_bank",
        subject_type="refund",
        subject_id=refund.id,
        detail={
            "order_id": str(refund.order_id),
            "amount_fen": refund.amount_fen,
            "bank_reference": bank_reference,
        },
    )
    return refund
