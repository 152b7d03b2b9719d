"""Engines and the one-transaction-per-request session.

A request gets one `AsyncSession` whose transaction is committed after the endpoint returns and
before the response is sent (FastAPI's `scope="function"`), so a failed commit is a 5xx, never a
silent 2xx. Services only `flush`.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.liveness import Liveness


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take SQLite's write lock when the transaction starts: a read-then-write transaction can
    # then never fail with "database is locked" half way, it waits its turn (busy_timeout).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_no_autobegin(dbapi_connection: Any, _: Any) -> None:
    # Let SQLAlchemy, not the driver, emit BEGIN (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None


def connect_args(url: str, connect_timeout: float | None) -> dict[str, Any]:
    """The driver's own arguments: on PostgreSQL, how long asyncpg may take to open a connection
    (its default is a minute, far longer than a client waits)."""
    if url.startswith("sqlite") or connect_timeout is None:
        return {}
    return {"timeout": connect_timeout}


def create_engine(
    url: str, *, for_writes: bool = True, connect_timeout: float | None = None, **kwargs: Any
) -> AsyncEngine:
    """An engine for `url`. On SQLite, a write engine starts every transaction with BEGIN
    IMMEDIATE; a read engine (`for_writes=False`) leaves transactions to the driver, which runs
    SELECTs outside any transaction, so readers never hold the write lock. `connect_timeout`
    bounds the opening of a PostgreSQL connection (seconds)."""
    # Never write statement parameters (e-mails, password hashes, phone and account numbers)
    # into an error message or a log line.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.pop("pool_size", None)
        kwargs.pop("max_overflow", None)
        if make_url(url).database in (None, "", ":memory:"):
            kwargs.pop("pool_timeout", None)  # one connection (StaticPool): nothing to wait for
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if for_writes:
            event.listen(engine.sync_engine, "connect", _sqlite_no_autobegin)
            event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 0)
    if extra := connect_args(url, connect_timeout):
        kwargs["connect_args"] = {**extra, **kwargs.get("connect_args", {})}
    return create_async_engine(url, **kwargs)


# SQLSTATEs that mean "the server cannot be reached or is not taking work right now": connection
# exceptions (class 08), the server shutting down or starting (57P01-57P03), no free connection
# slot (53300).
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _raised_by_driver(exc: BaseException) -> bool:
    return any(
        str(frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES):
        return True
    if isinstance(exc, asyncpg.InterfaceError | sa_exc.InterfaceError):
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    # Refused, reset or timed out while connecting or talking to the server.
    return isinstance(exc, OSError) and _raised_by_driver(exc)


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps, or what it was raised while handling) says the database
    could not be reached: a refused or lost connection, a connect or pool timeout, a server
    shutting down. Such a request can succeed later, so it is a 503, never a 500."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        err = pending.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if _unreachable(err):
            return True
        for linked in (getattr(err, "orig", None), err.__cause__, err.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return False


def _read_engine(url: str, engine_kwargs: dict[str, Any]) -> AsyncEngine:
    """An engine for single-statement reads: autocommit on PostgreSQL, driver-managed on
    SQLite."""
    if url.startswith("sqlite"):
        return create_engine(url, for_writes=False)
    return create_engine(url, **engine_kwargs).execution_options(isolation_level="AUTOCOMMIT")


class Database:
    """The engine, a session factory, and an autocommit engine for single-statement reads."""

    def __init__(self, url: str, *, replica_url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.serialises_writes = url.startswith("sqlite")
        """One write transaction at a time (SQLite: BEGIN IMMEDIATE takes the database's write
        lock), so a duplicate request waits for the first to finish instead of racing it."""
        self.engine = create_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # One statement, one round trip: no BEGIN/COMMIT around the public catalogue reads.
        self.read_engine: AsyncEngine = (
            create_engine(url, for_writes=False)
            if self.serialises_writes
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # Reads that may lag the primary a little (public catalogue, statistics): on the read
        # replica when there is one, else the same as `read_engine`.
        self.replica_engine: AsyncEngine = (
            _read_engine(replica_url, engine_kwargs) if replica_url else self.read_engine
        )
        # Whether the process behind an idempotency claim still lives (app.core.liveness).
        self.liveness = Liveness(
            url, connect_args=connect_args(url, engine_kwargs.get("connect_timeout"))
        )

    async def dispose(self) -> None:
        await self.liveness.aclose()
        await self.engine.dispose()
        if self.read_engine.sync_engine is not self.engine.sync_engine:
            await self.read_engine.dispose()
        if self.replica_engine is not self.read_engine:
            await self.replica_engine.dispose()


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_database(request)
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def _read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    db = get_database(request)
    async with db.read_engine.connect() as conn:
        yield conn


async def _replica_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    db = get_database(request)
    async with db.replica_engine.connect() as conn:
        yield conn


Session = Annotated[AsyncSession, Depends(_session, scope="function")]
"""The request's session; committed before the response is sent, rolled back on any error."""

ReadConnection = Annotated[AsyncConnection, Depends(_read_connection, scope="function")]
"""A connection for read-only endpoints: autocommit on PostgreSQL, no transaction overhead."""

ReplicaConnection = Annotated[AsyncConnection, Depends(_replica_connection, scope="function")]
"""Like `ReadConnection`, on the read replica when `DATABASE_REPLICA_URL` is set: for reads that
need not see the caller's own writes at once (public catalogue, statistics)."""
