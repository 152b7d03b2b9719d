"""Throwaway tables for the tests of `app/core`: defined in a MetaData of their own (never the
models'), created on the test database, and dropped after the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData


class Scratch:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.metadata = MetaData()
        self._suffix = uuid.uuid4().hex[:8]

    def name(self, base: str) -> str:
        """A table name no other test uses."""
        return f"scratch_{base}_{self._suffix}"

    async def create(self) -> None:
        async with self.app.state.db.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    async def drop(self) -> None:
        async with self.app.state.db.engine.begin() as conn:
            await conn.run_sync(self.metadata.drop_all)


@pytest.fixture
async def scratch(app: FastAPI) -> AsyncIterator[Scratch]:
    tables = Scratch(app)
    try:
        yield tables
    finally:
        await tables.drop()
