"""Running prebuilt Core statements on the hot paths (checkout, idempotency keys).

One implementation, two ways to execute it. On PostgreSQL, once the session's transaction has
begun on the connection, a statement's SQL — compiled by SQLAlchemy once, for asyncpg — runs as
a prepared statement on the asyncpg connection itself, inside that same transaction (commit and
rollback stay SQLAlchemy's). That skips SQLAlchemy's per-statement execution machinery (about
a tenth of a millisecond each). Everywhere else, and for a transaction's first statement (which
begins it), the statement runs through SQLAlchemy as usual.

Statements given here must be module-level constants (they are compiled once and kept), and
their parameters plain values: UUIDs, aware datetimes, str enums, ints, dates, None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_DIALECT = AsyncpgDialect()  # type: ignore[no-untyped-call]


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


def _compile(statement: Executable, keys: tuple[str, ...] | None) -> _Compiled:
    cache_key = (id(statement), keys)
    found = _compiled.get(cache_key)
    if found is None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=_DIALECT, column_keys=list(keys) if keys is not None else None
        )
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

    def __init__(self, conn: AsyncConnection, driver: Any | None) -> None:
        self.conn = conn
        self._driver = driver

    @classmethod
    async def of(cls, session: AsyncSession) -> Statements:
        conn = await session.connection()
        driver = None
        if conn.dialect.name == "postgresql":
            driver = (await conn.get_raw_connection()).driver_connection
        return cls(conn, driver)

    @property
    def dialect(self) -> str:
        return str(self.conn.dialect.name)

    def _direct(self) -> Any | None:
        driver = self._driver
        return driver if driver is not None and driver.is_in_transaction() else None

    async def first(self, statement: Executable, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        driver = self._direct()
        if driver is not None:
            c = _compile(statement, None)
            record = await driver.fetchrow(c.sql, *c.args(params))
            return dict(record) if record is not None else None
        row = (await self.conn.execute(statement, params)).first()
        return dict(row._mapping) if row is not None else None

    async def scalar(self, statement: Executable, params: dict[str, Any] | None = None) -> Any:
        driver = self._direct()
        if driver is not None:
            c = _compile(statement, None)
            return await driver.fetchval(c.sql, *c.args(params or {}))
        return await self.conn.scalar(statement, params or {})

    async def execute(self, statement: Executable, params: dict[str, Any]) -> None:
        driver = self._direct()
        if driver is not None:
            c = _compile(statement, tuple(params) if _is_insert(statement) else None)
            await driver.execute(c.sql, *c.args(params))
            return
        await self.conn.execute(statement, params)

    async def execute_many(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """One statement for many rows (every row with the same keys)."""
        driver = self._direct()
        if driver is not None:
            c = _compile(statement, tuple(rows[0]))
            await driver.executemany(c.sql, [c.args(row) for row in rows])
            return
        await self.conn.execute(statement, rows)


def _is_insert(statement: Executable) -> bool:
    return bool(getattr(statement, "is_insert", False))
