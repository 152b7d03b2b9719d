"""Test harness: a real database built by Alembic (SQLite by default, PostgreSQL when
`TEST_DATABASE_URL` names a server), the real app over httpx's ASGI transport, and a clean
database for every test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.migrations import upgrade
from app.main import create_app
from app.models import Base
from tests.fixtures.localstripe import localstripe  # noqa: F401 (one server for the session)

KEEP_TABLES = {"categories", "catalog_version"}  # seeded by a migration

# One localstripe server per session for every test folder that needs it (its aiohttp app can
# run once per process).
pytest_plugins = ["tests.fixtures.localstripe"]


def _pg_admin_dsn(url: str) -> str:
    u = make_url(url)
    user, host = u.username or "postgres", u.host or "127.0.0.1"
    return f"postgresql://{user}@{host}:{u.port or 5432}/{u.database or 'postgres'}"


async def _pg(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    server = os.environ.get("TEST_DATABASE_URL", "")
    if server.startswith("postgresql"):
        name = f"shanhai_test_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin_dsn(server)
        asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            upgrade(url)
            yield url
        finally:
            asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'test.db'}"
            upgrade(url)
            yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        # The abuse limits stay on (their checks run in every checkout and sign-up) but high
        # enough never to refuse a test that is not about them (tests/abuse/ lowers them).
        unpaid_orders_per_buyer=1000,
        checkouts_per_hour_per_buyer=100_000,
        signups_per_hour_per_address=100_000,
    )


async def clean_and_dispose(application: FastAPI) -> None:
    """Empty every table the tests write (not the seeded ones) and close the app's engines."""
    db: Database = application.state.db
    async with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEEP_TABLES:
                await conn.execute(delete(table))
    await db.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    try:
        yield application
    finally:
        await clean_and_dispose(application)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def session(app: FastAPI, database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on the app's database for arranging and inspecting data; commit what the app
    should see. Its own engine lets the driver manage transactions, so on SQLite its reads hold
    no lock and never see a stale snapshot while the app writes."""
    engine = create_engine(database_url, for_writes=False)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            yield s
    finally:
        await engine.dispose()
