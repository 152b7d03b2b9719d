"""Paying a statement: a Stripe Connect transfer, or a bank transfer recorded with `mark-paid`.

A Stripe payout commits that a transfer was asked for (`transfer_attempted_at`) before calling
Stripe, so no row lock is held across the network, and asks with the idempotency key
`transfer-<statement id>`: however often it is retried, Stripe makes one transfer. A refusal
(Stripe answered with an error) clears the attempt and answers 502, the statement stays
`pending_payout`; an outage (no answer) keeps the attempt and answers 503, and only a Stripe
retry may finish it: `mark-paid` is refused meanwhile (`409 payout_in_progress`), since the
transfer may have been made.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.time import utcnow
from app.integrations.stripe import PaymentProviderError, PaymentProviderUnavailable, StripeGateway
from app.ledger.service import Leg, post
from app.models import (
    LedgerAccount,
    LedgerKind,
    Merchant,
    PayoutMethod,
    Settlement,
    SettlementStatus,
    User,
)
from app.settlement.errors import (
    PayoutInProgress,
    PayoutsNotEnabled,
    PayoutsOnHold,
    SettlementAlreadyPaid,
    SettlementNotFound,
    SettlementNotPayable,
)


async def lock_statement(session: AsyncSession, settlement_id: uuid.UUID) -> Settlement:
    """The statement, locked for this transaction (FOR UPDATE on PostgreSQL)."""
    statement = await session.scalar(
        select(Settlement)
        .where(Settlement.id == settlement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if statement is None:
        raise SettlementNotFound("No such settlement.")
    return statement


async def _payable(session: AsyncSession, statement: Settlement) -> Merchant:
    """The statement's merchant, if the statement may be paid now; else the 409 that says why."""
    if statement.status == SettlementStatus.paid:
        raise SettlementAlreadyPaid("This statement is paid already.")
    if statement.status == SettlementStatus.carried_forward:
        raise SettlementNotPayable(
            "A carried-forward statement is never paid: its negative net is deducted from the "
            "merchant's next statement."
        )
    merchant = await session.get(Merchant, statement.merchant_id, populate_existing=True)
    assert merchant is not None
    if merchant.payouts_on_hold:
        raise PayoutsOnHold(
            "This merchant's payouts are on hold until an admin verifies its bank account."
        )
    return merchant


async def _mark_paid(
    session: AsyncSession,
    statement: Settlement,
    user: User,
    method: PayoutMethod,
    reference: str,
) -> None:
    """pending_payout → paid (the caller holds the statement's lock): the ledger and the audit."""
    statement.status = SettlementStatus.paid
    statement.payout_method = method
    statement.payout_reference = reference
    statement.paid_at = utcnow()
    statement.paid_by = user.id
    await post(
        session,
        LedgerKind.payout_paid,
        [
            Leg(LedgerAccount.payouts, statement.net_fen, statement.merchant_id),
            Leg(LedgerAccount.platform_cash, -statement.net_fen, statement.merchant_id),
        ],
    )
    await session.flush()
    await record(
        session,
        actor_id=user.id,
        action="settlement.paid",
        subject_type="settlement",
        subject_id=statement.id,
        detail={
            "merchant_id": str(statement.merchant_id),
            "method": str(method),
            "reference": reference,
            "net_fen": statement.net_fen,
        },
    )


async def mark_paid(
    session: AsyncSession, user: User, settlement_id: uuid.UUID, bank_reference: str
) -> Settlement:
    """Record the bank transfer that paid a statement. Locks the statement.

    409: `settlement_already_paid` (twice), `settlement_not_payable` (carried forward),
    `payouts_on_hold`, `payout_in_progress` (a Stripe transfer's outcome is unknown)."""
    statement = await lock_statement(session, settlement_id)
    await _payable(session, statement)
    if statement.transfer_attempted_at is not None:
        raise PayoutInProgress(
            "A Stripe transfer was asked for and its outcome is unknown: retry the payout."
        )
    await _mark_paid(session, statement, user, PayoutMethod.bank, bank_reference)
    return statement


async def payout_by_stripe(
    session: AsyncSession, gateway: StripeGateway | None, user: User, settlement_id: uuid.UUID
) -> Settlement:
    """Pay a statement by a Stripe transfer to the merchant's connected account; commits.

    Idempotent: the transfer's key is derived from the statement id, and a statement paid by a
    concurrent retry is returned as it is. 409 as `mark_paid`, and `payouts_not_enabled`; 502
    when Stripe refuses (the statement stays `pending_payout`), 503 when it cannot be reached.
    """
    statement = await lock_statement(session, settlement_id)
    merchant = await _payable(session, statement)
    if merchant.stripe_account_id is None or not merchant.payouts_enabled:
        raise PayoutsNotEnabled(
            "This merchant has no Stripe connected account with payouts enabled; pay it by "
            "bank and record it with mark-paid."
        )
    if gateway is None:
        raise PaymentProviderUnavailable("Stripe is not configured here.")
    destination = merchant.stripe_account_id
    amount = statement.net_fen
    statement.transfer_attempted_at = statement.transfer_attempted_at or utcnow()
    await session.commit()  # no lock is held across the network call
    try:
        transfer = await gateway.create_transfer(
            settlement_id=settlement_id, amount_fen=amount, destination=destination
        )
    except PaymentProviderError:
        statement = await lock_statement(session, settlement_id)
        if statement.status == SettlementStatus.pending_payout:
            statement.transfer_attempted_at = None  # refused: nothing was transferred
        await session.commit()
        raise
    statement = await lock_statement(session, settlement_id)
    if statement.status == SettlementStatus.pending_payout:
        await _mark_paid(session, statement, user, PayoutMethod.stripe, transfer.id)
    return statement
