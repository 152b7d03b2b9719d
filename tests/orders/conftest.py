"""Order tests: the ledger must balance after every test, and apps with other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from app.models import LedgerEntry, Role
from tests.fixtures.factories import make_merchant, make_product, make_user

AppFactory = Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture(autouse=True)
async def ledger_balances(app: FastAPI, database_url: str) -> AsyncIterator[None]:
    """After each test (before its data is deleted): the ledger sums to 0 and so does every
    transaction (`txn_id`)."""
    yield
    engine = create_engine(database_url, for_writes=False)
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)))
            unbalanced = (
                await conn.execute(
                    select(LedgerEntry.txn_id, func.sum(LedgerEntry.amount_fen))
                    .group_by(LedgerEntry.txn_id)
                    .having(func.sum(LedgerEntry.amount_fen) != 0)
                )
            ).all()
    finally:
        await engine.dispose()
    assert total == 0, f"the ledger sums to {total}"
    assert unbalanced == [], f"unbalanced transactions: {unbalanced}"


@pytest.fixture
async def app_with(settings: Settings) -> AsyncIterator[AppFactory]:
    """Build another app on the same database with some settings changed, and a client for it:
    `other_app, other_client = await app_with(payment_timeout_minutes=45.5)`."""
    made: list[tuple[FastAPI, httpx.AsyncClient]] = []

    async def factory(**overrides: Any) -> tuple[FastAPI, httpx.AsyncClient]:
        application = create_app(settings.model_copy(update=overrides))
        transport = httpx.ASGITransport(app=application, client=("203.0.113.8", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        made.append((application, client))
        return application, client

    try:
        yield factory
    finally:
        for application, client in made:
            await client.aclose()
            await application.state.db.dispose()


@pytest.fixture
async def cast(session):
    """Two merchants with a product each (45 and 210 yuan), a buyer and an admin."""
    m1, owner1 = await make_merchant(session)
    m2, owner2 = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
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
