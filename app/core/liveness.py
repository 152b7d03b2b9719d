"""Is the process that claimed an idempotency key still alive?

Every API process picks a random key when it starts and writes it on each claim it makes
(`idempotency_keys.claimant`). Whether that process still lives is then asked of the database:

- **PostgreSQL**: the process holds a session advisory lock on `(NAMESPACE, key)` on a connection
  of its own, opened with its first claim and kept for its lifetime. When the process dies, even
  by kill -9, PostgreSQL sees the connection close and releases the lock. Another request tests it
  with `pg_try_advisory_xact_lock` from its own transaction: taken means the claimant is dead (the
  test lock is released at that transaction's end). Should that connection be lost (a database
  restart or a network cut), the lock went with it: the next claim opens a new connection and takes
  the lock again before the key is used.
- **SQLite**: one machine, one serving process: a claim made before this process started, by
  another key, was made by a process that is gone.

A claim of this very process is alive while one of its requests runs it (`running`). One that
none runs was left by a request that failed while the database was away: it could neither
complete nor release its claim, and the claim is dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

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

    def __init__(self, url: str, *, connect_args: dict[str, Any] | None = None) -> None:
        self.url = url
        self.connect_args = connect_args or {}
        self.key = secrets.randbelow(2**31 - 1) + 1
        self.started_at = utcnow()
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._ready = asyncio.Lock()
        self._running: set[uuid.UUID] = set()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def claimant(self) -> int:
        """The key to write on a claim; on PostgreSQL, the lock is held before it is used."""
        if not self.is_sqlite and not self._holds_lock():
            async with self._ready:
                if not self._holds_lock():
                    await self._drop_connection()
                    if self._engine is None:
                        self._engine = create_async_engine(
                            self.url,
                            poolclass=NullPool,
                            isolation_level="AUTOCOMMIT",
                            connect_args=self.connect_args,
                        )
                    conn = await self._engine.connect()
                    try:
                        await conn.execute(_LOCK, {"ns": NAMESPACE, "key": self.key})
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await conn.close()
                        raise
                    self._conn = conn
        return self.key

    def _holds_lock(self) -> bool:
        """Whether the connection holding the lock is open (the lock lives as long as it does).
        Asks the driver, which learns of a closed socket as it happens: no round trip."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated or conn.sync_connection is None:
            return False
        driver = conn.sync_connection.connection.driver_connection  # the asyncpg connection
        return driver is not None and not driver.is_closed()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # it is already gone, most likely
                await conn.close()

    @contextlib.contextmanager
    def running(self, claim_id: uuid.UUID | None) -> Iterator[None]:
        """Mark a claim of this process as being run by a request until the block ends. End
        the block only once the request's transaction has ended (committed or failed)."""
        if claim_id is None:
            yield
            return
        self._running.add(claim_id)
        try:
            yield
        finally:
            self._running.discard(claim_id)

    async def is_dead(
        self,
        conn: AsyncConnection,
        claimant: int | None,
        claimed_at: datetime,
        claim_id: uuid.UUID | None = None,
    ) -> bool:
        """Whether the request that made a claim is known to be gone (False when unknown): its
        process is, or it was this process's and none of its requests runs it any more."""
        if claimant is None:
            return False
        if claimant == self.key:
            return claim_id is not None and claim_id not in self._running
        if self.is_sqlite:
            return claimed_at < self.started_at
        return bool(await conn.scalar(_TRY, {"ns": NAMESPACE, "key": claimant}))

    async def aclose(self) -> None:
        await self._drop_connection()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
