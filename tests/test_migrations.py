"""Migrations: one head, a clean round trip on this backend, and no drift from the models."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from app.core.db import create_engine
from app.core.migrations import alembic_config, downgrade, upgrade
from app.models import Base
from tests.conftest import _pg, _pg_admin_dsn


def test_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def _scratch_database() -> tuple[str, object]:
    server = os.environ.get("TEST_DATABASE_URL", "")
    if server.startswith("postgresql"):
        name = f"shanhai_mig_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin_dsn(server)
        asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        return url, lambda: asyncio.run(_pg(admin, f'DROP DATABASE "{name}" WITH (FORCE)'))
    tmp = tempfile.TemporaryDirectory()
    return f"sqlite+aiosqlite:///{Path(tmp.name) / 'm.db'}", tmp.cleanup


async def _inspect(url: str, fn):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_round_trip_and_no_drift():
    url, cleanup = _scratch_database()
    try:
        upgrade(url)
        assert asyncio.run(_inspect(url, _tables)) == set(Base.metadata.tables)
        assert asyncio.run(_inspect(url, _diff)) == []
        categories = asyncio.run(
            _inspect(url, lambda c: c.execute(text("SELECT count(*) FROM categories")).scalar())
        )
        assert categories == 7
        downgrade(url, "base")
        assert asyncio.run(_inspect(url, _tables)) == set()
        upgrade(url)
        assert asyncio.run(_inspect(url, _tables)) == set(Base.metadata.tables)
    finally:
        cleanup()  # type: ignore[operator]
