"""HTTP endpoints: a merchant's payout account (Stripe Connect)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from app.accounts.deps import CurrentUser
from app.core.db import Session
from app.merchants import payouts

router = APIRouter(prefix="/merchants", tags=["merchants"])


class PayoutAccountRead(BaseModel):
    method: Literal["bank_transfer", "stripe"]
    account_id: str | None
    payouts_enabled: bool


class OnboardingRead(BaseModel):
    onboarding_url: str
    expires_at: datetime


MerchantId = Annotated[uuid.UUID, Path(description="The merchant's id.")]


@router.post(
    "/{merchant_id}/payout-account",
    response_model=OnboardingRead,
    responses={
        403: {
            "description": "`forbidden`: only the owner; given to whoever sees the merchant "
            "(anyone, for an approved one; its staff and admins, in any status)."
        },
        404: {"description": "`merchant_not_found`: none, or not approved and not the caller's."},
        503: {"description": "`payment_provider_unavailable`: Stripe not configured or down."},
    },
)
async def start_payout_onboarding(
    request: Request, merchant_id: MerchantId, session: Session, user: CurrentUser
) -> OnboardingRead:
    """The owner opens Stripe onboarding for payouts: the connected account is created if there
    is none, and a fresh onboarding link is returned (links expire; ask again for a new one)."""
    onboarding = await payouts.start_onboarding(
        session, request.app.state.stripe, user, merchant_id, request.app.state.settings
    )
    return OnboardingRead(
        onboarding_url=onboarding.onboarding_url, expires_at=onboarding.expires_at
    )


@router.get(
    "/{merchant_id}/payout-account",
    response_model=PayoutAccountRead,
    responses={
        403: {
            "description": "`forbidden`: not a member or an admin, on a merchant the caller sees "
            "(an approved one is public)."
        },
        404: {"description": "`merchant_not_found`: none, or not approved and not the caller's."},
    },
)
async def get_payout_account(
    merchant_id: MerchantId, session: Session, user: CurrentUser
) -> PayoutAccountRead:
    """How the merchant is paid: `bank_transfer` (the default) or `stripe` with its connected
    account and whether Stripe has enabled payouts (kept current by `account.updated`)."""
    account = await payouts.get_payout_account(session, user, merchant_id)
    return PayoutAccountRead(
        method="stripe" if account.method == "stripe" else "bank_transfer",
        account_id=account.account_id,
        payouts_enabled=account.payouts_enabled,
    )
