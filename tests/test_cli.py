"""The `shanhai` command end to end on a fresh SQLite file: migrate, seed-demo twice (the second
adds nothing, orders included), sign in."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.core.config import get_settings
from app.main import create_app
from app.merchants.uscc import is_valid
from app.seed.demo import DEMO_PASSWORD

TABLES = ("merchants", "users", "products", "orders", "ledger_entries")


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.chdir(tmp_path)  # no stray .env or ./shanhai.db from the working tree
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-0123456789abcdef")
    get_settings.cache_clear()
    try:
        yield path
    finally:
        get_settings.cache_clear()


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_migrate_creates_the_schema(db_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "newest revision" in capsys.readouterr().out
    with sqlite3.connect(db_file) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"alembic_version", *TABLES, "categories", "audit_events"} <= tables
        assert conn.execute("SELECT count(*) FROM categories").fetchone()[0] == 7
    # Migrating again is a no-op.
    assert main(["migrate"]) == 0


def test_seed_demo_twice_then_sign_in(db_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["seed-demo"]) == 0
    first_out = capsys.readouterr().out
    first = _counts(db_file)
    assert first["merchants"] >= 10 and first["products"] >= 60
    assert 300 <= first["orders"] <= 400 and first["ledger_entries"] > 0
    assert "admin@shanhai.demo" in first_out and DEMO_PASSWORD in first_out
    assert "orders by status: pending_payment" in first_out

    assert main(["seed-demo"]) == 0
    second_out = capsys.readouterr().out
    assert _counts(db_file) == first
    assert "Nothing was missing" in second_out

    with sqlite3.connect(db_file) as conn:
        merchants = conn.execute("SELECT uscc, region_code, kind FROM merchants").fetchall()
        statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM orders")}
        ledger_total = conn.execute("SELECT sum(amount_fen) FROM ledger_entries").fetchone()[0]
    assert statuses == {"pending_payment", "paid", "completed", "cancelled", "refunded"}
    assert ledger_total == 0
    assert all(is_valid(uscc) for uscc, _, _ in merchants)
    assert sum(region == "513335" for _, region, _ in merchants) >= 10
    assert any(uscc.startswith("N") for uscc, _, kind in merchants if kind == "village_collective")

    assert asyncio.run(_sign_in("admin@shanhai.demo")) == "admin"
    assert asyncio.run(_sign_in("owner1@batang.demo")) == "merchant"


async def _sign_in(email: str) -> str:
    app = create_app(get_settings())
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post(
                "/api/v1/auth/token", data={"username": email, "password": DEMO_PASSWORD}
            )
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            return str(me.json()["role"])
    finally:
        await app.state.db.dispose()
