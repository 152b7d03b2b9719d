"""The per-dialect constructs of `app/core/sql.py`, each run on the test database (SQLite or
PostgreSQL) and compiled for both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.core.sql import (
    escape_like,
    excluded,
    for_update_skip_locked,
    next_serial,
    shanghai_period,
    upsert,
)
from app.core.statements import Statements
from app.models import Order
from app.models.base import UTCDateTime

PG = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
LITE = sqlite.dialect()


def _counters(scratch) -> Table:
    return Table(
        scratch.name("counters"),
        scratch.metadata,
        Column("key", String(20), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("note", String(20), nullable=True),
    )


async def _all(app, table: Table) -> dict[str, tuple[int, str | None]]:
    async with app.state.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.key, table.c.n, table.c.note))).all()
    return {key: (n, note) for key, n, note in rows}


async def _write(app, statement, rows) -> list[str]:
    """Execute and commit; the keys RETURNING gave back."""
    async with app.state.db.engine.begin() as conn:
        returned: list[str] = []
        for row in rows:
            result = await conn.execute(statement, row)
            if result.returns_rows:
                returned += [r[0] for r in result]
    return returned


# --- upsert ---


async def test_upsert_do_nothing_keeps_the_first_row_and_returns_only_new_ones(app, scratch):
    table = _counters(scratch)
    await scratch.create()
    statement = upsert(table, conflict=[table.c.key]).returning(table.c.key)
    first = await _write(app, statement, [{"key": "a", "n": 1, "note": "first"}])
    again = await _write(app, statement, [{"key": "a", "n": 2, "note": "second"}])
    other = await _write(app, statement, [{"key": "b", "n": 3, "note": None}])
    assert (first, again, other) == (["a"], [], ["b"])
    assert await _all(app, table) == {"a": (1, "first"), "b": (3, None)}


async def test_upsert_do_update_sets_the_named_columns_from_the_proposed_row(app, scratch):
    table = _counters(scratch)
    await scratch.create()
    statement = upsert(table, conflict=[table.c.key], update=["n"])
    await _write(app, statement, [{"key": "a", "n": 1, "note": "first"}])
    await _write(app, statement, [{"key": "a", "n": 5, "note": "second"}])
    assert await _all(app, table) == {"a": (5, "first")}


async def test_upsert_with_expressions_accumulates(app, scratch):
    table = _counters(scratch)
    await scratch.create()
    statement = upsert(
        table, conflict=[table.c.key], update={"n": table.c.n + excluded(table).n}
    ).returning(table.c.key)
    rows = [{"key": "a", "n": 2, "note": None}, {"key": "a", "n": 3, "note": None}]
    assert await _write(app, statement, rows) == ["a", "a"]
    assert await _all(app, table) == {"a": (5, None)}


async def test_upsert_where_limits_which_conflicts_are_updated(app, scratch):
    table = _counters(scratch)
    await scratch.create()
    proposed = excluded(table)
    keep_highest = upsert(
        table, conflict=[table.c.key], update=["n", "note"], where=proposed.n > table.c.n
    ).returning(table.c.key)
    await _write(app, keep_highest, [{"key": "a", "n": 5, "note": "five"}])
    lower = await _write(app, keep_highest, [{"key": "a", "n": 4, "note": "four"}])
    higher = await _write(app, keep_highest, [{"key": "a", "n": 9, "note": "nine"}])
    assert (lower, higher) == ([], ["a"])
    assert await _all(app, table) == {"a": (9, "nine")}


async def test_upsert_runs_as_a_prebuilt_statement(app, scratch):
    """On PostgreSQL, inside a transaction, prebuilt statements run on the asyncpg connection."""
    table = _counters(scratch)
    await scratch.create()
    statement = upsert(table, conflict=[table.c.key], update=["n"]).returning(table.c.n)
    async with app.state.db.sessionmaker() as session:
        await session.execute(select(1))
        db = await Statements.of(session)
        first = await db.first(statement, {"key": "a", "n": 1, "note": None})
        second = await db.first(statement, {"key": "a", "n": 2, "note": None})
        await session.commit()
    assert (first, second) == ({"n": 1}, {"n": 2})


def test_one_upsert_compiles_for_both_databases():
    table = Table("t", MetaData(), Column("k", Integer, primary_key=True))
    statement = upsert(table, conflict=[table.c.k])
    assert str(statement.compile(dialect=PG)).endswith("ON CONFLICT (k) DO NOTHING")
    assert str(statement.compile(dialect=LITE)).endswith("ON CONFLICT (k) DO NOTHING")


# --- FOR UPDATE SKIP LOCKED ---


def _jobs(scratch) -> Table:
    return Table(
        scratch.name("jobs"),
        scratch.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
    )


def test_skip_locked_is_rendered_on_postgresql_only():
    table = Table("t", MetaData(), Column("id", Integer))
    query = for_update_skip_locked(select(table.c.id))
    assert str(query.compile(dialect=PG)).endswith("FOR UPDATE SKIP LOCKED")
    assert "FOR UPDATE" not in str(query.compile(dialect=LITE))


async def test_a_claimed_row_is_not_claimed_again_while_its_worker_holds_it(app, scratch):
    """Two workers, each in its own transaction. PostgreSQL: the second skips the first's row.
    SQLite: the second's transaction waits for the first's to end (the database's write lock),
    so it can never claim while the first holds its row either."""
    table = _jobs(scratch)
    await scratch.create()
    await _write(app, table.insert(), [{"id": 1}, {"id": 2}])
    claim = for_update_skip_locked(select(table.c.id).order_by(table.c.id).limit(1))
    sessionmaker = app.state.db.sessionmaker
    async with sessionmaker() as first:
        assert await first.scalar(claim) == 1
        async with sessionmaker() as second:
            attempt = asyncio.ensure_future(second.scalar(claim))
            done, _ = await asyncio.wait({attempt}, timeout=1)
            if app.state.db.serialises_writes:
                assert not done  # still waiting for the first worker
                await first.commit()
                assert await attempt == 1  # the first worker has finished with it
            else:
                assert done and attempt.result() == 2
            await second.commit()


# --- increasing numbers ---


def test_next_serial_compiles_per_database():
    number = select(next_serial("order_number_seq", Order.__table__.c.number))
    assert "nextval('order_number_seq')" in str(number.compile(dialect=PG))
    assert "max(orders.number)" in str(number.compile(dialect=LITE))


async def test_next_serial_is_above_every_order_number(app):
    statement = select(next_serial("order_number_seq", Order.__table__.c.number))
    async with app.state.db.engine.begin() as conn:
        first = await conn.scalar(statement)
        highest = await conn.scalar(select(func.coalesce(func.max(Order.number), 0)))
    assert first is not None and first > highest


# --- the Asia/Shanghai calendar ---

INSTANTS = [
    # UTC instant -> Shanghai (day, month, quarter, year)
    (datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), ("2026-03-31", "2026-03", "2026-Q1", "2026")),
    (datetime(2026, 3, 31, 16, 0, tzinfo=UTC), ("2026-04-01", "2026-04", "2026-Q2", "2026")),
    (datetime(2026, 6, 30, 16, 30, tzinfo=UTC), ("2026-07-01", "2026-07", "2026-Q3", "2026")),
    (datetime(2026, 9, 30, 15, 0, tzinfo=UTC), ("2026-09-30", "2026-09", "2026-Q3", "2026")),
    (
        datetime(2026, 12, 31, 15, 59, 59, 999999, tzinfo=UTC),
        ("2026-12-31", "2026-12", "2026-Q4", "2026"),
    ),
    (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), ("2027-01-01", "2027-01", "2027-Q1", "2027")),
    (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), ("2027-01-01", "2027-01", "2027-Q1", "2027")),
]


def _events(scratch) -> Table:
    return Table(
        scratch.name("events"),
        scratch.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("at", UTCDateTime(), nullable=False),  # as every model's timestamps
        Column("naive_utc", DateTime(timezone=False), nullable=False),  # UTC without a zone
    )


@pytest.mark.parametrize("column", ["at", "naive_utc"])
async def test_shanghai_periods_of_utc_instants(app, scratch, column):
    table = _events(scratch)
    await scratch.create()
    rows = [
        {"id": i, "at": at, "naive_utc": at.replace(tzinfo=None)}
        for i, (at, _) in enumerate(INSTANTS)
    ]
    await _write(app, table.insert(), rows)
    ts = table.c[column]
    periods = [shanghai_period(ts, p) for p in ("day", "month", "quarter", "year")]
    async with app.state.db.engine.connect() as conn:
        got = (await conn.execute(select(*periods).order_by(table.c.id))).all()
    assert [tuple(row) for row in got] == [keys for _, keys in INSTANTS]


async def test_group_by_shanghai_quarter(app, scratch):
    table = _events(scratch)
    await scratch.create()
    rows = [
        {"id": i, "at": at, "naive_utc": at.replace(tzinfo=None)}
        for i, (at, _) in enumerate(INSTANTS)
    ]
    await _write(app, table.insert(), rows)
    quarter = shanghai_period(table.c.at, "quarter")
    async with app.state.db.engine.connect() as conn:
        got = (
            await conn.execute(select(quarter, func.count()).group_by(quarter).order_by(quarter))
        ).all()
    assert [tuple(row) for row in got] == [
        ("2026-Q1", 1),
        ("2026-Q2", 1),
        ("2026-Q3", 2),
        ("2026-Q4", 1),
        ("2027-Q1", 2),
    ]


def test_an_unknown_period_is_refused():
    with pytest.raises(ValueError, match="week"):
        shanghai_period(Order.__table__.c.created_at, "week")  # type: ignore[arg-type]


# --- LIKE ---


async def test_escape_like_matches_the_text_literally(app, scratch):
    table = _counters(scratch)
    await scratch.create()
    notes = ["50%_off", "50% off", "50x_off", "a\\b", "ab"]
    await _write(
        app, table.insert(), [{"key": str(i), "n": i, "note": t} for i, t in enumerate(notes)]
    )

    async def matching(text: str) -> list[str]:
        pattern = f"%{escape_like(text)}%"
        async with app.state.db.engine.connect() as conn:
            query = select(table.c.note).where(table.c.note.ilike(pattern, escape="\\"))
            return sorted(await conn.scalars(query))

    assert await matching("50%_") == ["50%_off"]
    assert await matching("a\\b") == ["a\\b"]
    assert await matching("_") == ["50%_off", "50x_off"]
