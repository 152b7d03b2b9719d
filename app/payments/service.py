"""Opening payments, confirming bank transfers, and cancelling orders with their money.

Use cases here that call Stripe commit the request's transaction before the call, so no row lock
is held across the network, and are written to resume where an earlier attempt stopped: a retry
with the same Idempotency-Key after Stripe was down finds its payment and carries on.
"""

from __future__ import annotations

import logging
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import refuse_official
from app.audit.service import record
from app.core.config import Settings
from app.core.errors import Forbidden
from app.core.time import utcnow
from app.integrations.stripe import (
    PaymentProviderError,
    PaymentProviderUnavailable,
    StripeGateway,
)
from app.models import (
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Role,
    User,
)
from app.orders.errors import InvalidTransition
from app.orders.lifecycle import cancel_order_in_db, lock_order, mark_paid
from app.orders.service import get_order_seen_by, get_visible_order
from app.payments.errors import (
    AmountMismatch,
    BankReferenceUsed,
    OrderNotPayable,
    PaymentNotFound,
)
from app.payments.schemas import BankTransferConfirm, BankTransferInstructions, PaymentRead
from app.refunds.provider import settle_with_provider
from app.refunds.service import apply_refund, refund_whole_payment

logger = logging.getLogger("shanhai.payments")

_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _bank_reference() -> str:
    return "SHP" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def payment_read(payment: Payment, order: Order, settings: Settings) -> PaymentRead:
    instructions = None
    if payment.provider == PaymentMethod.bank_transfer and payment.reference:
        instructions = BankTransferInstructions(
            bank_name=settings.platform_bank_name,
            account_name=settings.platform_bank_account_name,
            account_no=settings.platform_bank_account_no,
            amount_fen=payment.amount_fen,
            reference=payment.reference,
            pay_before=order.expires_at,
            note=(
                f"请转账 {payment.amount_fen / 100:.2f} 元，并在附言中填写 {payment.reference}；"
                "Transfer the exact amount and write the reference in the remark."
            ),
        )
    return PaymentRead(
        payment_id=payment.id,
        order_id=payment.order_id,
        provider=payment.provider,
        status=payment.status,
        amount_fen=payment.amount_fen,
        client_secret=payment.client_secret,
        provider_reference=payment.provider_reference,
        reference=payment.reference,
        instructions=instructions,
        bank_reference=payment.bank_reference,
        created_at=payment.created_at,
        succeeded_at=payment.succeeded_at,
    )


async def open_payment(
    session: AsyncSession,
    gateway: StripeGateway | None,
    buyer: User,
    order_id: uuid.UUID,
    settings: Settings,
) -> PaymentRead:
    """The order's open payment, created if there is none (a Stripe PaymentIntent in CNY, or a
    bank-transfer reference). Commits before calling Stripe; resumable."""
    if buyer.role != Role.buyer:
        raise Forbidden("Only the buyer pays for an order.")
    await get_visible_order(session, buyer, order_id)
    order = await lock_order(session, order_id)
    if order.status != OrderStatus.pending_payment:
        raise OrderNotPayable(f"An order that is {order.status} cannot be paid.")
    if order.expires_at <= utcnow():
        raise OrderNotPayable("The payment deadline of this order has passed.")
    if order.payment_method == PaymentMethod.stripe and gateway is None:
        raise PaymentProviderUnavailable(
            "Card payments are not available here; choose a bank transfer."
        )
    payment = await session.scalar(
        select(Payment).where(Payment.order_id == order.id, Payment.status == PaymentStatus.pending)
    )
    if payment is None:
        payment = Payment(
            order_id=order.id,
            provider=order.payment_method,
            status=PaymentStatus.pending,
            amount_fen=order.total_fen,
            reference=_bank_reference()
            if order.payment_method == PaymentMethod.bank_transfer
            else None,
        )
        session.add(payment)
        await session.flush()
    if payment.provider == PaymentMethod.stripe and payment.provider_reference is None:
        assert gateway is not None
        payment_id, order_no = payment.id, order.order_no
        await session.commit()  # the payment row exists before Stripe is asked
        intent = await gateway.create_payment_intent(
            payment_id=payment_id,
            amount_fen=payment.amount_fen,
            order_id=order.id,
            order_no=order_no,
        )
        order = await lock_order(session, order_id)
        payment = await session.get(Payment, payment_id, populate_existing=True)
        assert payment is not None
        payment.provider_reference = intent.id
        payment.client_secret = intent.client_secret
        await session.flush()
    return payment_read(payment, order, settings)


async def confirm_bank_transfer(
    session: AsyncSession,
    gateway: StripeGateway | None,
    admin: User,
    payment_id: uuid.UUID,
    data: BankTransferConfirm,
    settings: Settings,
) -> PaymentRead:
    """An admin records a received bank transfer. The amount must be the order total, and the
    bank's reference must not have confirmed another payment (`409 bank_reference_used`, also
    between two concurrent confirmations: a unique index). A transfer for an order cancelled
    meanwhile is recorded and its refund awaits the admin's transfer back (`mark-paid`)."""
    refuse_official(admin.role)
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound("No such payment.")
    if admin.role != Role.admin:
        # 404 for whoever may not see the payment; its own buyer sees it on its order: 403.
        buyer_id = await session.scalar(select(Order.buyer_id).where(Order.id == payment.order_id))
        if admin.role != Role.buyer or buyer_id != admin.id:
            raise PaymentNotFound("No such payment.")
        raise Forbidden("Only an admin records a received bank transfer.")
    order = await lock_order(session, payment.order_id)
    await session.refresh(payment)
    if payment.provider != PaymentMethod.bank_transfer:
        raise InvalidTransition("Only bank transfers are confirmed by hand.")
    if payment.status not in (PaymentStatus.pending, PaymentStatus.cancelled):
        raise InvalidTransition(f"A payment that is {payment.status} cannot be confirmed.")
    if data.amount_fen != payment.amount_fen:
        raise AmountMismatch(
            f"The order total is {payment.amount_fen} fen, not {data.amount_fen}.",
            extra={"expected_amount_fen": payment.amount_fen},
        )
    used = await session.scalar(
        select(Payment.id).where(Payment.bank_reference == data.bank_reference)
    )
    if used is not None:
        raise BankReferenceUsed(
            "This bank transfer already confirmed another payment.",
            extra={"payment_id": str(used)},
        )
    payment.status = PaymentStatus.succeeded
    payment.succeeded_at = utcnow()
    payment.bank_reference = data.bank_reference
    payment.confirmed_by = admin.id
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a concurrent confirmation with the same reference won
        raise BankReferenceUsed("This bank transfer already confirmed another payment.") from None
    paid = await mark_paid(session, order, payment, settings)
    late_refund: Refund | None = None
    if not paid:
        late_refund = await refund_whole_payment(
            session, order, payment, "Payment received after the order was cancelled"
        )
    await record(
        session,
        actor_id=admin.id,
        action="payment.confirmed",
        subject_type="payment",
        subject_id=payment.id,
        detail={
            "order_id": str(order.id),
            "amount_fen": data.amount_fen,
            "bank_reference": data.bank_reference,
            "reference": payment.reference,
            "refunded_in_full": not paid,
        },
    )
    if late_refund is not None:
        await settle_with_provider(session, gateway, late_refund.id)
    order = await lock_order(session, payment.order_id)
    return payment_read(payment, order, settings)


async def cancel_order(
    session: AsyncSession,
    gateway: StripeGateway | None,
    order_id: uuid.UUID,
    reason: str,
    actor: User | None,
    *,
    only_if_expired: bool = False,
) -> None:
    """Cancel an order that has not shipped: stock back, open payments cancelled (at Stripe
    too, after our commit), and a paid order's remaining money refunded in full."""
    order = await lock_order(session, order_id)
    if only_if_expired and not (
        order.status == OrderStatus.pending_payment and order.expires_at <= utcnow()
    ):
        return
    refund_due = await cancel_order_in_db(session, order, reason)
    open_intents = await _cancel_open_payments(session, order.id)
    for pending in await session.scalars(
        select(Refund).where(Refund.order_id == order.id, Refund.status == RefundStatus.requested)
    ):
        pending.status = RefundStatus.rejected
        pending.reject_reason = "Superseded by the cancellation of the order"
        pending.decided_at = utcnow()
    refund_id: uuid.UUID | None = None
    if refund_due > 0:
        captured = await session.scalar(
            select(Payment).where(
                Payment.order_id == order.id, Payment.status == PaymentStatus.succeeded
            )
        )
        assert captured is not None
        quantities = {
            line_id: quantity - refunded
            for line_id, quantity, refunded in (
                await session.execute(
                    select(OrderLine.id, OrderLine.quantity, OrderLine.refunded_quantity).where(
                        OrderLine.order_id == order.id
                    )
                )
            ).all()
            if quantity > refunded
        }
        refund = Refund(
            order_id=order.id,
            payment_id=captured.id,
            kind=RefundKind.cancellation,
            status=RefundStatus.requested,
            amount_fen=refund_due,
            reason=f"Order cancelled ({reason})",
            requested_by=actor.id if actor else None,
            decided_by=actor.id if actor else None,
        )
        session.add(refund)
        await session.flush()
        await apply_refund(session, order, refund, quantities, restock=False)
        refund_id = refund.id
    await session.flush()
    await record(
        session,
        actor_id=actor.id if actor else None,
        action="order.cancelled",
        subject_type="order",
        subject_id=order.id,
        detail={"reason": reason, "refund_fen": refund_due},
    )
    await session.commit()
    await _cancel_intents(gateway, open_intents)
    if refund_id is not None:
        try:
            await settle_with_provider(session, gateway, refund_id)
        except PaymentProviderUnavailable:
            logger.warning("refund left for retry", extra={"refund_id": str(refund_id)})


async def _cancel_open_payments(session: AsyncSession, order_id: uuid.UUID) -> list[str]:
    """Mark the order's pending payments cancelled; the provider's intents still to cancel."""
    open_intents: list[str] = []
    for payment in await session.scalars(
        select(Payment).where(Payment.order_id == order_id, Payment.status == PaymentStatus.pending)
    ):
        payment.status = PaymentStatus.cancelled
        if payment.provider_reference:
            open_intents.append(payment.provider_reference)
    return open_intents


async def _cancel_intents(gateway: StripeGateway | None, intent_ids: list[str]) -> None:
    """Cancel the intents at Stripe, after our commit; a failure is logged, not raised."""
    for intent_id in intent_ids:
        if gateway is None:
            break
        try:
            await gateway.cancel_payment_intent(intent_id)
        except (PaymentProviderUnavailable, PaymentProviderError) as exc:
            # If the buyer pays it anyway, the succeeded webhook refunds it in full.
            logger.warning(
                "could not cancel payment intent", extra={"intent": intent_id, "error": exc.detail}
            )


async def buyer_cancel(
    session: AsyncSession, gateway: StripeGateway | None, buyer: User, order_id: uuid.UUID
) -> None:
    if buyer.role != Role.buyer:
        # 404 unless the caller sees the order (an admin; a member of one of its merchants).
        await get_order_seen_by(session, buyer, order_id)
        raise Forbidden("Only the buyer cancels an order.")
    await get_visible_order(session, buyer, order_id)
    await cancel_order(session, gateway, order_id, "buyer_cancelled", buyer)
