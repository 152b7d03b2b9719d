"""Prebuilt statements refuse to leave a column to a Python-side default: the driver path on
PostgreSQL would skip it silently, so the first use fails on every database, before any row
is written."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, String, Table, func, insert, select, text, update

from app.core.statements import Statements, UnfilledColumns, check_insert


def _table(scratch) -> Table:
    return Table(
        scratch.name("prebuilt"),
        scratch.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("label", String(20), nullable=False),
        Column("python_default", Integer, nullable=False, default=7),
        Column("python_onupdate", Integer, nullable=True, onupdate=9),
        Column("server_default", Integer, nullable=False, server_default=text("5")),
        Column("optional", String(20), nullable=True),
    )


async def _rows(app, table: Table) -> list[tuple[int, ...]]:
    async with app.state.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.id, table.c.server_default))).all()
    return [tuple(row) for row in rows]


async def _run(app, call) -> None:
    """Run `call(db)` on a session like a request's, after a first statement (so on PostgreSQL
    the prebuilt statement takes the driver path), and commit."""
    async with app.state.db.sessionmaker() as session:
        await session.execute(select(1))
        await call(await Statements.of(session))
        await session.commit()


async def test_an_insert_that_leaves_a_python_default_fails_before_writing(app, scratch):
    table = _table(scratch)
    await scratch.create()
    statement = insert(table)
    with pytest.raises(UnfilledColumns, match="python_default"):
        await _run(app, lambda db: db.execute(statement, {"id": 1, "label": "a"}))
    with pytest.raises(UnfilledColumns, match="python_default"):
        await _run(app, lambda db: db.execute_many(statement, [{"id": 2, "label": "b"}]))
    assert await _rows(app, table) == []


async def test_an_insert_that_leaves_a_required_column_fails(app, scratch):
    table = _table(scratch)
    await scratch.create()
    statement = insert(table).returning(table.c.id)
    with pytest.raises(UnfilledColumns, match="label"):
        await _run(app, lambda db: db.first(statement, {"id": 1, "python_default": 1}))
    assert await _rows(app, table) == []


async def test_server_defaults_and_nullable_columns_may_be_left_out(app, scratch):
    table = _table(scratch)
    await scratch.create()
    statement = insert(table)
    await _run(app, lambda db: db.execute(statement, {"id": 1, "label": "a", "python_default": 1}))
    assert await _rows(app, table) == [(1, 5)]


async def test_an_update_that_leaves_a_python_onupdate_fails(app, scratch):
    table = _table(scratch)
    await scratch.create()
    await _run(
        app,
        lambda db: db.execute(insert(table), {"id": 1, "label": "a", "python_default": 1}),
    )
    forgetful = update(table).where(table.c.id == 1).values(label=func.upper(table.c.label))
    with pytest.raises(UnfilledColumns, match="python_onupdate"):
        await _run(app, lambda db: db.execute(forgetful, {}))
    complete = update(table).where(table.c.id == 1).values(label="b", python_onupdate=3)
    await _run(app, lambda db: db.execute(complete, {}))
    async with app.state.db.engine.connect() as conn:
        row = (await conn.execute(select(table.c.label, table.c.python_onupdate))).one()
    assert tuple(row) == ("b", 3)


def test_sql_of_our_own_checks_its_rows_as_a_prebuilt_insert_would(scratch):
    """Checkout's PostgreSQL statement inserts row dicts through SQL of its own: the rows' keys
    are checked against the INSERT they stand for, with the same verdict."""
    table = _table(scratch)
    statement = insert(table)
    with pytest.raises(UnfilledColumns, match="python_default"):
        check_insert(statement, ("id", "label"))
    with pytest.raises(UnfilledColumns, match="label"):
        check_insert(statement, ("id", "python_default"))
    check_insert(statement, ("id", "label", "python_default"))


async def test_a_statement_run_alone_commits_as_it_runs_on_postgresql(app, scratch):
    """`first_alone` (the caller's read, the idempotency claim): on PostgreSQL, before the session
    has begun its transaction, the statement commits at once, so a later rollback keeps it; on
    SQLite it belongs to the session's transaction like any other."""
    table = _table(scratch)
    await scratch.create()
    statement = insert(table).returning(table.c.id)
    async with app.state.db.sessionmaker() as session:
        db = await Statements.of(session)
        row = await db.first_alone(statement, {"id": 1, "label": "a", "python_default": 1})
        assert row == {"id": 1}
        await session.rollback()
    on_postgresql = app.state.db.engine.dialect.name == "postgresql"
    assert await _rows(app, table) == ([(1, 5)] if on_postgresql else [])
