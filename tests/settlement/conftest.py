"""Settlement tests: the ledger balances after every test; a cast of two merchants with a
product each, a buyer and an admin, on an app whose commission is 5% and refund window 7 days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.models import Role
from tests.conftest import clean_and_dispose
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.stripe import FakeConnect
from tests.orders.conftest import ledger_balances  # noqa: F401 (the same after-test ledger check)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        commission_rate_bps=500,
        refund_window_days=7,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with Stripe Connect replaced by the recording fake (`app.state.stripe`)."""
    application = create_app(settings)
    application.state.stripe = FakeConnect("http://127.0.0.1:9")
    try:
        yield application
    finally:
        await clean_and_dispose(application)


@pytest.fixture
async def cast(session: Any) -> dict[str, Any]:
    """Two merchants with a product each (45 and 210 yuan), a buyer and an admin."""
    m1, owner1 = await make_merchant(session)
    m2, owner2 = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=1000)
    p2 = await make_product(session, m2, price_fen=21000, stock=1000)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    return {
        "m1": m1,
        "m2": m2,
        "owner1": owner1,
        "owner2": owner2,
        "p1": p1,
        "p2": p2,
        "buyer": buyer,
        "admin": admin,
    }


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
