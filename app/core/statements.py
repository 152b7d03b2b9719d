"""Running prebuilt Core statements on the hot paths (checkout, idempotency keys).

One implementation, two ways to execute it. On PostgreSQL, once the session's transaction has
begun on the connection, a statement's SQL — compiled by SQLAlchemy once, for asyncpg — runs as
a prepared statement on the asyncpg connection itself, inside that same transaction (commit and
rollback stay SQLAlchemy's). That skips SQLAlchemy's per-statement execution machinery (about
a tenth of a millisecond each). Everywhere else, and for a transaction's first statement (which
begins it), the statement runs through SQLAlchemy as usual.

Two more shortcuts on PostgreSQL. `first_alone` runs a statement that needs no transaction
(reading the caller, claiming an idempotency key) on its own, committed as it runs, while the
session has not yet begun its transaction on the connection: no BEGIN and no COMMIT round trip.
`begin` begins the session's transaction on the connection at once, so that its first statement
too runs on the driver.

Statements given here must be module-level constants (they are compiled once and kept), and
their parameters plain values: UUIDs, aware datetimes, str enums, ints, dates, None.

Because the driver path skips SQLAlchemy's execution machinery, it also skips Python-side column
defaults (`default=`, `onupdate=`). So every prebuilt INSERT must give a value for each column
that has no server-side default, and every prebuilt UPDATE for each column with an `onupdate`:
the first use of a statement that does not raises `UnfilledColumns`, on every database, before
anything runs (a nullable column without any default is NULL on both paths, and may be left out).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Executable, Sequence, Table
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.sql import driver_connection

_DIALECT = AsyncpgDialect()  # type: ignore[no-untyped-call]


class UnfilledColumns(Exception):
    """A prebuilt statement leaves columns to Python-side defaults, which the driver path skips."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    statement: Executable  # kept alive: the cache is keyed by its id
    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [
            _plain(params[name] if name in params else self.constants[name]) for name in self.names
        ]


_compiled: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _check_filled(statement: Executable, compiled: Any) -> None:
    """Raise `UnfilledColumns` for the columns an INSERT or UPDATE leaves to Python."""
    # Columns whose Python-side default or onupdate SQLAlchemy would compute before executing.
    unfilled: list[Any] = [*compiled.insert_prefetch, *compiled.update_prefetch]
    if compiled.isinsert:
        table: Table = statement.table  # type: ignore[attr-defined]
        # named by a bound parameter of the same name, or given a value (an expression or a
        # parameter of another name) by `.values(...)`
        explicit = getattr(statement, "_values", None) or {}
        named = {getattr(k, "key", k) for k in explicit}
        given = (set(compiled.params) | named) - {c.key for c in unfilled}
        unfilled += [c for c in table.columns if c.key not in given and _needs_value(c)]
    if unfilled:
        names = ", ".join(sorted({str(c.key) for c in unfilled}))
        raise UnfilledColumns(
            f"A prebuilt statement on {statement.table.name} gives no value for {names}: "  # type: ignore[attr-defined]
            "Python-side defaults are skipped on the driver path; pass a value for each "
            "(or give the column a server_default)."
        )


def _needs_value(column: Column[Any]) -> bool:
    """Whether an INSERT must name `column`: NOT NULL and nothing on the server fills it."""
    generated = (
        column.server_default is not None
        or column.computed is not None
        or column.identity is not None
        or isinstance(column.default, Sequence)
        or column is column.table.autoincrement_column
    )
    return not generated and not column.nullable


def _compile(statement: Executable, keys: tuple[str, ...] | None) -> _Compiled:
    """The statement compiled for asyncpg, once; its columns checked (`UnfilledColumns`)."""
    cache_key = (id(statement), keys)
    found = _compiled.get(cache_key)
    if found is None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=_DIALECT, column_keys=list(keys) if keys is not None else None
        )
        _check_filled(statement, compiled)
        found = _Compiled(
            statement=statement,
            sql=str(compiled),
            names=tuple(compiled.positiontup or ()),
            constants={k: v for k, v in compiled.params.items() if v is not None},
        )
        _compiled[cache_key] = found
    return found


class Statements:
    """Executes prebuilt statements in the session's current transaction."""

    def __init__(self, conn: AsyncConnection, driver: Any | None, adapter: Any = None) -> None:
        self.conn = conn
        self._driver = driver
        self._adapter = adapter

    @classmethod
    async def of(cls, session: AsyncSession) -> Statements:
        conn = await session.connection()
        driver = await driver_connection(conn)
        adapter = (await conn.get_raw_connection()).dbapi_connection if driver else None
        return cls(conn, driver, adapter)

    @property
    def on_driver(self) -> bool:
        """Whether statements can run on the asyncpg connection itself (PostgreSQL)."""
        return self._driver is not None

    def _direct(self) -> Any | None:
        driver = self._driver
        return driver if driver is not None and driver.is_in_transaction() else None

    def _alone(self) -> Any | None:
        """The asyncpg connection if neither it nor SQLAlchemy's adapter has begun a transaction."""
        driver = self._driver
        if driver is None or driver.is_in_transaction():
            return None
        if getattr(self._adapter, "_transaction", True) is not None:
            return None
        return driver

    @property
    def began(self) -> bool:
        """Whether the session's transaction may have begun on the connection (always, but on
        PostgreSQL before anything ran in it)."""
        return self._alone() is None

    async def begin(self) -> None:
        """Begin the session's transaction on the connection now, if it has not begun (BEGIN is
        sent as SQLAlchemy's asyncpg adapter sends it, and its commit and rollback end it)."""
        if self._alone() is not None:
            start = getattr(self._adapter, "_start_transaction", None)
            if start is not None:
                await start()

    async def first_alone(
        self, statement: Executable, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        """As `first`, for a statement that needs no transaction: on PostgreSQL, before the
        session's transaction has begun, it runs on its own and is committed at once."""
        driver = self._alone()
        if driver is None:
            return await self.first(statement, params)
        c = _prepared(statement, params)
        record = await driver.fetchrow(c.sql, *c.args(params))
        return dict(record) if record is not None else None

    async def fetchrows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of PostgreSQL-only SQL (asyncpg placeholders), run in the session's transaction
        (begun here if need be). Only where `on_driver`."""
        await self.begin()
        driver = self._direct()
        assert driver is not None, "fetchrows runs on PostgreSQL, in the session's transaction"
        return [dict(r) for r in await driver.fetch(sql, *args)]

    async def first(self, statement: Executable, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        c = _prepared(statement, params)
        driver = self._direct()
        if driver is not None:
            record = await driver.fetchrow(c.sql, *c.args(params))
            return dict(record) if record is not None else None
        row = (await self.conn.execute(statement, params)).first()
        return dict(row._mapping) if row is not None else None

    async def scalar(self, statement: Executable, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        c = _prepared(statement, params)
        driver = self._direct()
        if driver is not None:
            return await driver.fetchval(c.sql, *c.args(params))
        return await self.conn.scalar(statement, params)

    async def execute(self, statement: Executable, params: dict[str, Any]) -> None:
        c = _prepared(statement, params)
        driver = self._direct()
        if driver is not None:
            await driver.execute(c.sql, *c.args(params))
            return
        await self.conn.execute(statement, params)

    async def execute_many(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """One statement for many rows (every row with the same keys)."""
        c = _prepared(statement, rows[0])
        driver = self._direct()
        if driver is not None:
            await driver.executemany(c.sql, [c.args(row) for row in rows])
            return
        await self.conn.execute(statement, rows)


def check_insert(statement: Executable, keys: tuple[str, ...]) -> None:
    """Raise `UnfilledColumns` unless rows with these keys fill every column the prebuilt INSERT
    `statement` must be given (for SQL of our own that inserts such rows)."""
    _compile(statement, keys)


def _prepared(statement: Executable, params: dict[str, Any]) -> _Compiled:
    """The compiled form for these parameters; its first use checks the columns on every
    database (the SQLAlchemy path would fill Python defaults that the driver path skips)."""
    return _compile(statement, tuple(params) if _is_insert(statement) else None)


def _is_insert(statement: Executable) -> bool:
    return bool(getattr(statement, "is_insert", False))
