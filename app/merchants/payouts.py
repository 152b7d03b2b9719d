"""Payout accounts: bank transfer by default, or a Stripe connected account (Stripe Connect).

The connected account is created once (idempotency key from the merchant id, so two concurrent
requests get the same account); its `payouts_enabled` is kept current by `account.updated`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Forbidden
from app.integrations.stripe import PaymentProviderUnavailable, StripeGateway
from app.merchants.errors import InvalidTransition
from app.merchants.service import get_merchant, is_member, sees_private
from app.models import Merchant, MerchantRole, MerchantStatus, User


@dataclass(frozen=True, slots=True)
class PayoutAccount:
    method: str
    account_id: str | None
    payouts_enabled: bool


@dataclass(frozen=True, slots=True)
class Onboarding:
    onboarding_url: str
    expires_at: datetime


async def get_payout_account(
    session: AsyncSession, user: User, merchant_id: uuid.UUID
) -> PayoutAccount:
    """For the merchant's members and admins. Anyone else who sees the merchant (an approved
    one is public) gets 403; a merchant it may not see is 404."""
    merchant, _ = await get_merchant(session, user, merchant_id)
    if not sees_private(user, merchant_id):
        raise Forbidden("Only the merchant's members and admins see its payout account.")
    return PayoutAccount(
        method="stripe" if merchant.stripe_account_id else "bank_transfer",
        account_id=merchant.stripe_account_id,
        payouts_enabled=merchant.payouts_enabled,
    )


async def start_onboarding(
    session: AsyncSession,
    gateway: StripeGateway | None,
    user: User,
    merchant_id: uuid.UUID,
    settings: Settings,
) -> Onboarding:
    """The owner gets a Stripe onboarding link; the connected account is created if there is
    none. Commits before calling Stripe (no lock is held across the network)."""
    merchant: Merchant | None
    merchant, _ = await get_merchant(session, user, merchant_id)
    if not (is_member(user, merchant_id) and user.merchant_role == MerchantRole.owner):
        raise Forbidden("Only the merchant's owner sets up payouts.")
    if merchant.status == MerchantStatus.rejected:
        raise InvalidTransition("A rejected merchant cannot set up payouts.")
    if gateway is None:
        raise PaymentProviderUnavailable(
            "Stripe is not configured here: payouts go by bank transfer."
        )
    account_id = merchant.stripe_account_id
    await session.commit()
    if account_id is None:
        account = await gateway.create_connected_account(merchant_id=merchant_id)
        merchant = await session.get(Merchant, merchant_id, populate_existing=True)
        assert merchant is not None
        if merchant.stripe_account_id is None:
            merchant.stripe_account_id = account.id
            merchant.payouts_enabled = account.payouts_enabled
        account_id = merchant.stripe_account_id
        await session.commit()
    base = settings.public_base_url.rstrip("/")
    link = await gateway.create_account_link(
        account_id=account_id,
        refresh_url=f"{base}/api/v1/merchants/{merchant_id}/payout-account?refresh=1",
        return_url=f"{base}/api/v1/merchants/{merchant_id}/payout-account",
    )
    return Onboarding(onboarding_url=link.url, expires_at=link.expires_at)
