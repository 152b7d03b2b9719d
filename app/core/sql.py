"""Where SQLite and PostgreSQL differ: SQL constructs written once and compiled per dialect.

Query code builds statements from these and reads the same on both databases; nothing outside
this module asks which database it runs on (Prefect's `server/utilities/database.py` does the
same with `@compiles(..., "postgresql")` / `"sqlite"`). Each construct is compiled once with its
statement and cached by SQLAlchemy like any other: no work per request.

- `upsert`: INSERT … ON CONFLICT DO NOTHING / DO UPDATE, one statement for both databases;
  `upsert_add` (counters that add) and `upsert_set` (rows that are replaced) are built on it.
- `for_update_skip_locked`: row claims for jobs; SQLite serialises writers, so it is a no-op.
- `next_serial`: an increasing number from a PostgreSQL sequence, or max + 1 on SQLite.
- `shanghai_period`: the Asia/Shanghai day, month, quarter or year of a UTC timestamp, as text.
- `escape_like`: a LIKE pattern that matches a user's text literally.
- `driver_connection`: the asyncpg connection under a SQLAlchemy one, for the hot paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Date,
    Insert,
    Integer,
    Select,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import SyntaxExtension
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

# --- upsert ------------------------------------------------------------------------------------


class OnConflict(SyntaxExtension, ClauseElement):
    """An ON CONFLICT clause holding both dialects' forms; the compiler renders its own."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy reads it from the class)
        ("postgresql", InternalTraversal.dp_clauseelement),
        ("sqlite", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, postgresql: ClauseElement, sqlite: ClauseElement) -> None:
        self.postgresql = postgresql
        self.sqlite = sqlite

    def apply_to_insert(self, insert_stmt: Insert) -> None:
        insert_stmt.apply_syntax_extension_point(self.append_replacing_same_type, "post_values")


@compiles(OnConflict, "postgresql")
def _on_conflict_pg(element: OnConflict, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.postgresql, **kw)


@compiles(OnConflict, "sqlite")
def _on_conflict_sqlite(element: OnConflict, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.sqlite, **kw)


def excluded(table: Table) -> Any:
    """The row that was proposed for insertion, for `upsert(..., update={...})` expressions:
    `{"total_fen": table.c.total_fen + excluded(table).total_fen}`."""
    return table.alias("excluded").c


def upsert(
    table: Table,
    conflict: Sequence[ColumnElement[Any]],
    update: Sequence[str] | Mapping[str, Any] | None = None,
    where: ColumnElement[bool] | None = None,
) -> Insert:
    """`INSERT INTO table … ON CONFLICT (conflict) DO NOTHING`, or `DO UPDATE SET` when `update`
    names columns (each set to the proposed row's value) or maps them to expressions (see
    `excluded`); `where` limits which conflicting rows are updated. Values are given at
    execution, as for any insert; add `.returning(...)` as needed. A row skipped by DO NOTHING
    (or by `where`) returns no row."""
    pg: ClauseElement
    lite: ClauseElement
    if update is None:
        pg = pg_dml.OnConflictDoNothing(index_elements=conflict)
        lite = sqlite_dml.OnConflictDoNothing(index_elements=conflict)
    else:
        proposed = excluded(table)
        set_ = (
            dict(update)
            if isinstance(update, Mapping)
            else {name: proposed[name] for name in update}
        )
        pg = pg_dml.OnConflictDoUpdate(index_elements=conflict, set_=set_, where=where)
        lite = sqlite_dml.OnConflictDoUpdate(index_elements=conflict, set_=set_, where=where)
    return insert(table).ext(OnConflict(pg, lite))


def upsert_add(table: Table, keys: Sequence[str], adds: Sequence[str]) -> Insert:
    """`upsert` that adds: `ON CONFLICT (keys) DO UPDATE SET c = table.c + excluded.c` for each
    of `adds`.

    Both databases lock (PostgreSQL) or serialise (SQLite) the conflicting row, so concurrent
    upserts never lose an addition; with `.returning(...)` each row reports its new values.
    Rows should be given in primary-key order so that concurrent writers lock in one order."""
    proposed = excluded(table)
    return upsert(
        table,
        [table.c[k] for k in keys],
        {c: table.c[c] + proposed[c] for c in adds},
    )


def upsert_set(table: Table, keys: Sequence[str], sets: Sequence[str]) -> Insert:
    """`upsert` that replaces: `ON CONFLICT (keys) DO UPDATE SET c = excluded.c` for each of
    `sets`, creating the row or replacing those columns."""
    return upsert(table, [table.c[k] for k in keys], sets)


# --- row claims --------------------------------------------------------------------------------

_S = TypeVar("_S", bound=Select[Any])


def for_update_skip_locked(query: _S, of: Any = None) -> _S:
    """`query … FOR UPDATE [OF of] SKIP LOCKED` on PostgreSQL: the rows (of `of`'s table only,
    when given) are locked for this transaction and other workers skip them. SQLite renders
    nothing: a write transaction there holds the database's one write lock from its start
    (`app/core/db.py`), so no one else can claim."""
    return query.with_for_update(skip_locked=True, of=of)


# --- increasing numbers ------------------------------------------------------------------------


class NextSerial(ColumnElement[int]):
    """See `next_serial`."""

    inherit_cache = True
    type = Integer()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy reads it from the class)
        ("sequence", InternalTraversal.dp_string),
        ("column", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, sequence: str, column: ColumnElement[int]) -> None:
        self.sequence = sequence
        self.column = column


@compiles(NextSerial, "postgresql")
def _next_serial_pg(element: NextSerial, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(DbSequence(element.sequence).next_value(), **kw)


@compiles(NextSerial, "sqlite")
def _next_serial_sqlite(element: NextSerial, compiler: SQLCompiler, **kw: Any) -> str:
    highest = select(func.coalesce(func.max(element.column), 0) + 1).scalar_subquery()
    return compiler.process(highest, **kw)


def next_serial(sequence: str, column: ColumnElement[int]) -> NextSerial:
    """The next number: `nextval(sequence)` on PostgreSQL (no lock, increasing with time);
    `max(column) + 1` on SQLite, where writers are serialised so two cannot collide."""
    return NextSerial(sequence, column)


# --- the Asia/Shanghai calendar ----------------------------------------------------------------

Period = Literal["day", "month", "quarter", "year"]

# period -> (PostgreSQL to_char format, SQLite strftime format); SQLite has no quarter.
_PERIOD_FORMATS: dict[str, tuple[str, str]] = {
    "day": ("YYYY-MM-DD", "%Y-%m-%d"),
    "month": ("YYYY-MM", "%Y-%m"),
    "quarter": ('YYYY-"Q"Q', "%Y"),
    "year": ("YYYY", "%Y"),
}


class ShanghaiPeriod(ColumnElement[str]):
    """See `shanghai_period`."""

    inherit_cache = True
    type = String()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy reads it from the class)
        ("column", InternalTraversal.dp_clauseelement),
        ("period", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], period: Period) -> None:
        if period not in _PERIOD_FORMATS:
            raise ValueError(f"unknown period {period!r}")
        self.column = column
        self.period = period

    @property
    def _from_objects(self) -> list[Any]:  # the column's table goes into FROM
        return self.column._from_objects


@compiles(ShanghaiPeriod, "postgresql")
def _shanghai_period_pg(element: ShanghaiPeriod, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(element.column, **kw)
    if not getattr(element.column.type, "timezone", False):
        # A timestamp without time zone holding UTC: make it an instant first.
        instant = f"({instant} AT TIME ZONE 'UTC')"
    fmt = _PERIOD_FORMATS[element.period][0]
    return f"to_char({instant} AT TIME ZONE 'Asia/Shanghai', '{fmt}')"


@compiles(ShanghaiPeriod, "sqlite")
def _shanghai_period_sqlite(element: ShanghaiPeriod, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff' (app/models/base.py), and its
    # date functions round that to milliseconds: 15:59:59.9999995 would become the next day.
    # Cut the text to whole seconds first. Asia/Shanghai is UTC+8 all year.
    utc = f"substr({compiler.process(element.column, **kw)}, 1, 19)"
    key = f"strftime('{_PERIOD_FORMATS[element.period][1]}', {utc}, '+8 hours')"
    if element.period == "quarter":
        month = f"CAST(strftime('%m', {utc}, '+8 hours') AS INTEGER)"
        key = f"({key} || '-Q' || (({month} + 2) / 3))"
    return key


def shanghai_period(column: ColumnElement[Any], period: Period) -> ShanghaiPeriod:
    """The Asia/Shanghai `period` of a UTC timestamp column, as text that sorts in time order:
    day `2026-12-04`, month `2026-12`, quarter `2026-Q4`, year `2026`. Group and filter reports
    by it; an instant at 16:00 UTC on 31 December already belongs to the next Shanghai year."""
    return ShanghaiPeriod(column, period)


# --- LIKE --------------------------------------------------------------------------------------


def escape_like(text: str) -> str:
    """`text` as a LIKE pattern matching itself literally (use with `escape="\\\\"`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- the driver under a connection -------------------------------------------------------------


async def driver_connection(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under `conn` (PostgreSQL), on which the hot paths run their
    prebuilt statements directly; None on any other driver, where they go through SQLAlchemy."""
    if conn.dialect.driver != "asyncpg":
        return None
    return (await conn.get_raw_connection()).driver_connection


# --- statistics: Shanghai days, UUIDs as text ----------------------------------------------------


class shanghai_date(FunctionElement[Any]):
    """The Asia/Shanghai calendar date of a UTC timestamp column."""

    type = Date()
    inherit_cache = True


@compiles(shanghai_date, "postgresql")
def _shanghai_date_postgresql(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"CAST(timezone('Asia/Shanghai', {compiler.process(arg, **kw)}) AS DATE)"


@compiles(shanghai_date, "sqlite")
def _shanghai_date_sqlite(element: shanghai_date, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored as naive UTC text; Shanghai keeps no daylight saving time.
    (arg,) = list(element.clauses)
    return f"date({compiler.process(arg, **kw)}, '+8 hours')"


class shanghai_day_text(FunctionElement[Any]):
    """The Asia/Shanghai calendar day of a UTC timestamp column as `YYYY-MM-DD` text."""

    type = String()
    inherit_cache = True


@compiles(shanghai_day_text, "postgresql")
def _shanghai_day_text_postgresql(
    element: shanghai_day_text, compiler: SQLCompiler, **kw: Any
) -> str:
    (arg,) = list(element.clauses)
    return f"to_char(timezone('Asia/Shanghai', {compiler.process(arg, **kw)}), 'YYYY-MM-DD')"


@compiles(shanghai_day_text, "sqlite")
def _shanghai_day_text_sqlite(element: shanghai_day_text, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"date({compiler.process(arg, **kw)}, '+8 hours')"


class uuid_text(FunctionElement[Any]):
    """A UUID column as the text `str(uuid.UUID)` gives (lower case, hyphenated)."""

    type = String()
    inherit_cache = True


@compiles(uuid_text, "postgresql")
def _uuid_text_postgresql(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"CAST({compiler.process(arg, **kw)} AS TEXT)"


@compiles(uuid_text, "sqlite")
def _uuid_text_sqlite(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy's Uuid stores 32 hex digits on SQLite.
    (arg,) = list(element.clauses)
    c = f"lower({compiler.process(arg, **kw)})"
    parts = [(1, 8), (9, 4), (13, 4), (17, 4), (21, 12)]
    return " || '-' || ".join(f"substr({c}, {s}, {n})" for s, n in parts)
