"""SQL that differs between PostgreSQL and SQLite, written once as SQLAlchemy constructs compiled
per dialect (Prefect's way), so that services never ask which database they run on.

Statistics constructs (`stats_*` names here; other domains add their own below):
- `upsert_add(table, keys, adds)`: a multi-row INSERT that, on a primary-key conflict, ADDS the
  new values to the stored ones (`SET c = t.c + excluded.c`), with RETURNING when asked;
  `upsert_set(table, keys, columns)` replaces them instead.
- `shanghai_date(ts)` / `shanghai_day_text(ts)`: the Asia/Shanghai calendar day of a UTC
  timestamp, as a date or as `YYYY-MM-DD` text.
- `uuid_text(col)`: a UUID column as its canonical hyphenated text (`str(uuid)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Date, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.functions import FunctionElement


class upsert_add(Insert):
    """`INSERT … ON CONFLICT (keys) DO UPDATE SET c = table.c + excluded.c` for each of `adds`.

    Both databases lock (PostgreSQL) or serialise (SQLite) the conflicting row, so concurrent
    upserts never lose an addition; with `.returning(...)` each row reports its new values.
    Rows should be given in primary-key order so that concurrent writers lock in one order."""

    inherit_cache = False
    adds = True

    def __init__(self, table: Any, keys: Sequence[str], adds: Sequence[str]) -> None:
        super().__init__(table)
        self.conflict_keys = tuple(keys)
        self.add_columns = tuple(adds)


class upsert_set(upsert_add):
    """`INSERT … ON CONFLICT (keys) DO UPDATE SET c = excluded.c`: create or replace a row."""

    inherit_cache = False
    adds = False


def _upsert_add_sql(element: upsert_add, compiler: SQLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_insert(element, **kw)  # type: ignore[no-untyped-call]
    table = compiler.preparer.format_table(element.table)
    q = compiler.preparer.quote
    sets = [
        f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}"
        if element.adds
        else f"{q(c)} = excluded.{q(c)}"
        for c in element.add_columns
    ]
    keys = ", ".join(q(k) for k in element.conflict_keys)
    conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
    head, sep, tail = sql.rpartition(" RETURNING ")
    return f"{head}{conflict}{sep}{tail}" if sep else sql + conflict


@compiles(upsert_set, "postgresql")
@compiles(upsert_add, "postgresql")
def _upsert_add_postgresql(element: upsert_add, compiler: SQLCompiler, **kw: Any) -> str:
    return _upsert_add_sql(element, compiler, **kw)


@compiles(upsert_set, "sqlite")
@compiles(upsert_add, "sqlite")
def _upsert_add_sqlite(element: upsert_add, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite ≥ 3.35 takes PostgreSQL's upsert and RETURNING syntax word for word.
    return _upsert_add_sql(element, compiler, **kw)


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
