"""Stripe webhooks: verified, stored once in the inbox, and applied from Stripe's current truth.

Events may arrive late, twice or out of order. Each event id is inserted into `stripe_events` in
the same transaction as its effects, so it takes effect once (a concurrent duplicate waits on the
unique id and then sees it). Payment intents and accounts are re-read from Stripe before any
lock is taken, and we act on their current state, not on the event's snapshot: a stale
`payment_failed` after a success changes nothing. A succeeded intent marks a payment paid only if
its amount and currency are the payment's; otherwise the event is recorded as not applied
(`stripe_events.rejected_reason`), audited (`payment.provider_mismatch`) and logged at error level.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.core.money import CURRENCY
from app.core.time import utcnow
from app.integrations.stripe import (
    ConnectedAccount,
    Intent,
    PaymentProviderUnavailable,
    ProviderRefund,
    StripeGateway,
)
from app.models import (
    Merchant,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    StripeEvent,
)
from app.orders.lifecycle import lock_order, mark_paid
from app.refunds.provider import apply_provider_refund_status, settle_with_provider
from app.refunds.service import refund_whole_payment

logger = logging.getLogger("shanhai.webhooks")


async def handle_stripe_event(
    session: AsyncSession,
    gateway: StripeGateway | None,
    payload: bytes,
    signature: str | None,
    settings: Settings,
) -> bool:
    """Verify and apply one delivery. Returns False for an event id seen before."""
    if gateway is None:
        raise PaymentProviderUnavailable("Stripe is not configured here.")
    event = gateway.parse_event(payload, signature)
    event_id, event_type = str(event["id"]), str(event["type"])
    if await session.get(StripeEvent, event_id) is not None:
        return False
    data = event.get("data")
    obj: dict[str, Any] = data.get("object", {}) if isinstance(data, dict) else {}
    if not isinstance(obj, dict):
        obj = {}
    object_id = str(obj.get("id") or "")

    # Read Stripe's current truth first: no lock is held across the network.
    intent: Intent | None = None
    account: ConnectedAccount | None = None
    refunds: list[ProviderRefund] = []
    if event_type.startswith("payment_intent.") and object_id:
        intent = await gateway.retrieve_payment_intent(object_id)
    elif event_type == "account.updated" and object_id:
        account = await gateway.retrieve_account(object_id)
    elif event_type in ("charge.refunded", "charge.refund.updated", "refund.updated"):
        refunds = await _current_refunds(session, gateway, event_type, obj)

    try:
        async with session.begin_nested():
            session.add(StripeEvent(id=event_id, type=event_type, payload=event))
    except IntegrityError:
        return False

    late_refund: uuid.UUID | None = None
    if intent is not None:
        late_refund = await _apply_intent(session, event_id, intent, obj, settings)
    elif account is not None:
        await session.execute(
            update(Merchant)
            .where(Merchant.stripe_account_id == account.id)
            .values(payouts_enabled=account.payouts_enabled, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    for refund in refunds:
        await apply_provider_refund_status(
            session, refund.id, refund.status, refund_id=refund.refund_id
        )
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(processed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if late_refund is not None:
        try:
            await settle_with_provider(session, gateway, late_refund)
        except PaymentProviderUnavailable:
            logger.warning("late-payment refund left for retry", extra={"refund": str(late_refund)})
    return True


async def _current_refunds(
    session: AsyncSession, gateway: StripeGateway, event_type: str, obj: dict[str, Any]
) -> list[ProviderRefund]:
    ids: set[str] = set()
    if event_type == "refund.updated" or str(obj.get("object")) == "refund":
        ids.add(str(obj.get("id")))
    embedded = obj.get("refunds")
    if isinstance(embedded, dict):
        ids |= {str(r["id"]) for r in embedded.get("data", []) if isinstance(r, dict) and "id" in r}
    intent_id = obj.get("payment_intent")
    unsent: set[str] = set()
    if intent_id:
        for refund_id, reference in await session.execute(
            select(Refund.id, Refund.provider_reference)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(
                Payment.provider_reference == str(intent_id),
                Refund.status == RefundStatus.approved,
            )
        ):
            if reference is None:
                unsent.add(str(refund_id))
            else:
                ids.add(reference)
    ids.discard("None")
    refunds = [await gateway.retrieve_refund(refund_id) for refund_id in sorted(ids)]
    if unsent:
        # Approved, but Stripe's answer to our request never came: look for it at Stripe by
        # the refund id we put in its metadata.
        known = {r.id for r in refunds}
        refunds += [
            r
            for r in await gateway.list_refunds(str(intent_id))
            if r.refund_id in unsent and r.id not in known
        ]
    return refunds


async def _find_payment(session: AsyncSession, intent: Intent) -> tuple[Payment | None, str | None]:
    """The payment of this intent, and why it must not be applied (None: it may). An intent we
    never saved is found by the payment id in its metadata (we crashed before saving it), and
    bound only to a payment that has no other intent."""
    payment = await session.scalar(select(Payment).where(Payment.provider_reference == intent.id))
    if payment is not None or not intent.metadata.get("payment_id"):
        return payment, None
    try:
        payment = await session.get(Payment, uuid.UUID(intent.metadata["payment_id"]))
    except ValueError:
        return None, None
    if payment is None:
        return None, None
    if payment.provider_reference is not None:
        return payment, (
            f"intent {intent.id} names payment {payment.id} in its metadata, which belongs to "
            f"intent {payment.provider_reference}"
        )
    return payment, None


def _amount_mismatch(payment: Payment, intent: Intent) -> str | None:
    if intent.amount == payment.amount_fen and intent.currency.lower() == CURRENCY.lower():
        return None
    return (
        f"intent {intent.id} is for {intent.amount} {intent.currency.upper()}, the payment for "
        f"{payment.amount_fen} {CURRENCY}"
    )


async def _reject_intent(
    session: AsyncSession, event_id: str, payment: Payment, intent: Intent, reason: str
) -> None:
    """Stripe's word does not match ours: recorded on the stored event, audited and logged at
    error level (an alert), and not applied."""
    await session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(rejected_reason=reason[:500])
        .execution_options(synchronize_session=False)
    )
    await record(
        session,
        actor_id=None,
        action="payment.provider_mismatch",
        subject_type="payment",
        subject_id=payment.id,
        detail={
            "event_id": event_id,
            "intent": intent.id,
            "intent_amount": intent.amount,
            "intent_currency": intent.currency,
            "payment_amount_fen": payment.amount_fen,
            "reason": reason,
        },
    )
    logger.error(
        "stripe event not applied: it does not match our payment",
        extra={"event_id": event_id, "payment_id": str(payment.id), "reason": reason},
    )


async def _apply_intent(
    session: AsyncSession, event_id: str, intent: Intent, obj: dict[str, Any], settings: Settings
) -> uuid.UUID | None:
    payment, refused = await _find_payment(session, intent)
    if payment is None or payment.provider != PaymentMethod.stripe:
        logger.info("payment intent unknown to us", extra={"intent": intent.id})
        return None
    if refused is None and (intent.status == "succeeded" or payment.provider_reference is None):
        refused = _amount_mismatch(payment, intent)
    if refused is not None:
        await _reject_intent(session, event_id, payment, intent, refused)
        return None
    if payment.provider_reference is None:
        payment.provider_reference = intent.id  # we crashed before saving it
    order = await lock_order(session, payment.order_id)
    await session.refresh(payment)
    if intent.status == "succeeded":
        if payment.status == PaymentStatus.succeeded:
            return None
        payment.status = PaymentStatus.succeeded
        payment.succeeded_at = utcnow()
        payment.failure_message = None
        await session.flush()
        if await mark_paid(session, order, payment, settings):
            return None
        refund = await refund_whole_payment(
            session, order, payment, "Payment succeeded after the order was cancelled"
        )
        return refund.id
    if payment.status == PaymentStatus.pending and intent.status in (
        "requires_payment_method",
        "canceled",
    ):
        error = obj.get("last_payment_error")
        message = error.get("message") if isinstance(error, dict) else None
        payment.status = (
            PaymentStatus.cancelled if intent.status == "canceled" else PaymentStatus.failed
        )
        payment.failure_message = (str(message) if message else intent.status)[:500]
        await session.flush()
    return None
