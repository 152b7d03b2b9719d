"""Is the process that claimed an idempotency key still alive?

Every API process picks a random key when it starts and writes it on each claim it makes
(`idempotency_keys.claimant`). Whether that process still lives is then asked of the database:

- **PostgreSQL**: the process holds a session advisory lock on `(NAMESPACE, key)` on a connection
  of its own, opened with its first claim and kept for its lifetime. When the process dies, even
  by kill -9, PostgreSQL sees the connection close and releases the lock. Another request tests it
  with `pg_try_advisory_xact_lock` from its own transaction: taken means the claimant is dead (the
  test lock is released at that transaction's end).
- **SQLite**: one machine, one serving process: a claim made before this process started, by
  another key, was made by a process that is gone.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.time import utcnow

# The first half of every advisory lock key used here ('SH' in ASCII): our own key space.
NAMESPACE = 0x5348
_LOCK = text("SELECT pg_advisory_lock(:ns, :key)")
_TRY = text("SELECT pg_try_advisory_xact_lock(:ns, :key)")


class Liveness:
    """This process's claimant key, and the test of another one's."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = secrets.randbelow(2**31 - 1) + 1
        self.started_at = utcnow()
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._ready = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def claimant(self) -> int:
        """The key to write on a claim; on PostgreSQL, the lock is held before it is used."""
        if not self.is_sqlite and self._conn is None:
            async with self._ready:
                if self._conn is None:
                    self._engine = create_async_engine(
                        self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
                    )
                    conn = await self._engine.connect()
                    await conn.execute(_LOCK, {"ns": NAMESPACE, "key": self.key})
                    self._conn = conn
        return self.key

    async def is_dead(
        self, conn: AsyncConnection, claimant: int | None, claimed_at: datetime
    ) -> bool:
        """Whether the process that made a claim is known to be gone (False when unknown)."""
        if claimant is None or claimant == self.key:
            return False
        if self.is_sqlite:
            return claimed_at < self.started_at
        return bool(await conn.scalar(_TRY, {"ns": NAMESPACE, "key": claimant}))

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
