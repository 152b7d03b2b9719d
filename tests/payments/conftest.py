"""The app with Stripe configured against localstripe, and the data most Stripe tests need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.models import Merchant, Product, Role, User
from tests.conftest import clean_and_dispose
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET


@pytest.fixture
def stripe_settings(settings: Settings, localstripe: LocalStripe) -> Settings:
    return settings.model_copy(
        update={
            "stripe_api_key": API_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": localstripe.url,
            "stripe_timeout_seconds": 2,
        }
    )


@pytest.fixture
async def stripe_app(stripe_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(stripe_settings)
    try:
        yield application
    finally:
        await clean_and_dispose(application)


@pytest.fixture
async def stripe_client(stripe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=stripe_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Shop:
    merchant: Merchant
    owner: User
    product: Product
    buyer: User
    admin: User


@pytest.fixture
async def shop(session: AsyncSession) -> Shop:
    """An approved Batang merchant with a product (88.00 元, 50 in stock), a buyer, an admin."""
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=8800, stock=50)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    return Shop(merchant, owner, product, buyer, admin)
