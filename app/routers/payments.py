"""HTTP endpoints: payments, Stripe webhooks and the ledger."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, status
from fastapi.responses import Response

from app.accounts.deps import AdminUser, CurrentUser
from app.core.db import Session
from app.core.idempotency import IdempotencyKeyHeader, run_idempotent
from app.ledger.service import balances
from app.payments import service, webhooks
from app.payments.schemas import (
    BankTransferConfirm,
    LedgerBalance,
    LedgerBalances,
    PaymentRead,
)
from app.routers.common import AUTH_RESPONSES, PROVIDER_RESPONSES, NoFields

router = APIRouter(tags=["payments"])


@router.post(
    "/orders/{order_id}/payments",
    response_model=PaymentRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUTH_RESPONSES,
        **PROVIDER_RESPONSES,
        400: {"description": "`idempotency_key_required`."},
        404: {"description": "`order_not_found`."},
        409: {"description": "`order_not_payable`: not awaiting payment, or past its deadline."},
    },
)
async def create_payment(
    request: Request,
    order_id: Annotated[uuid.UUID, Path()],
    session: Session,
    user: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
    body: NoFields = None,
) -> Response:
    """The buyer pays with the order's method. `stripe`: a PaymentIntent in CNY, confirm it
    with `client_secret` in Stripe.js. `bank_transfer`: a `reference` and `instructions`; an
    admin confirms the transfer when it arrives. Asking again returns the same open payment."""
    settings = request.app.state.settings
    gateway = request.app.state.stripe

    async def handler() -> tuple[int, PaymentRead]:
        return 201, await service.open_payment(session, gateway, user, order_id, settings)

    return await run_idempotent(
        request=request,
        session=session,
        user_id=user.id,
        key=idempotency_key,
        body=body,
        handler=handler,
    )


@router.post(
    "/payments/{payment_id}/confirm",
    response_model=PaymentRead,
    responses={
        **AUTH_RESPONSES,
        403: {"description": "`forbidden`: the payment's buyer, who sees it but may not confirm."},
        404: {"description": "`payment_not_found`: no such payment, or not the caller's to see."},
        409: {
            "description": "`amount_mismatch` (not the order total), `bank_reference_used` "
            "(that transfer confirmed another payment) or `invalid_transition` (not an open "
            "bank transfer)."
        },
    },
)
async def confirm_bank_transfer(
    request: Request,
    payment_id: Annotated[uuid.UUID, Path()],
    body: BankTransferConfirm,
    session: Session,
    admin: CurrentUser,
) -> PaymentRead:
    """An admin records a received bank transfer (`amount_fen` must equal the order total;
    `bank_reference` is the bank's reference of that transfer, and one transfer confirms one
    payment). The answer shows the buyer's `reference` beside it. A transfer that arrives after
    the order was cancelled is recorded and owed back in full (a refund awaiting `mark-paid`).
    The payment's own buyer (who sees it on its order) gets 403; anyone else who is not an
    admin gets `404 payment_not_found`."""
    return await service.confirm_bank_transfer(
        session, request.app.state.stripe, admin, payment_id, body, request.app.state.settings
    )


@router.post(
    "/webhooks/stripe",
    responses={
        400: {"description": "`invalid_signature`: missing, wrong or older than 5 minutes."},
        503: {"description": "`payment_provider_unavailable`: Stripe will retry."},
    },
)
async def stripe_webhook(
    request: Request,
    session: Session,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> dict[str, bool]:
    """Stripe's signed events. Each event id takes effect once; events may come late, twice or
    out of order (payment intents are re-read from Stripe). Handles `payment_intent.succeeded`,
    `payment_intent.payment_failed`, `payment_intent.canceled`, `charge.refunded`,
    `refund.updated` and `account.updated`; others are stored and acknowledged."""
    payload = await request.body()
    applied = await webhooks.handle_stripe_event(
        session, request.app.state.stripe, payload, stripe_signature, request.app.state.settings
    )
    return {"received": True, "duplicate": not applied}


@router.get("/ledger/balances", response_model=LedgerBalances, responses=AUTH_RESPONSES)
async def ledger_balances(session: Session, _: AdminUser) -> LedgerBalances:
    """Every ledger account's signed balance (merchant payables per merchant). Positive is held
    by the platform, negative is owed (to merchants, to buyers in `refunds_in_transit`) or earned
    (`platform_commission`). `total_fen` is always 0."""
    rows = await balances(session)
    return LedgerBalances(
        accounts=[
            LedgerBalance(account=b.account, merchant_id=b.merchant_id, balance_fen=b.balance_fen)
            for b in rows
        ],
        total_fen=sum(b.balance_fen for b in rows),
    )
