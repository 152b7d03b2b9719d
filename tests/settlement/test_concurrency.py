"""Two settlement runs at the same moment (two machines): no merchant order is settled twice,
on PostgreSQL (row locks, SKIP LOCKED) as on SQLite (one writer at a time)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from app.core.time import shanghai_today, utcnow
from app.models import MerchantOrder, SettlementLine
from app.settlement.service import run_settlement
from tests.fixtures.settlement import run, sell


async def _run_in_own_transaction(app, period_end, *, hold: asyncio.Event | None = None):
    async with app.state.db.sessionmaker() as s:
        result = await run_settlement(
            s, period_end=period_end, now=utcnow(), refund_window_days=7, actor_id=None
        )
        if hold is not None:
            await hold.wait()
        await s.commit()
    return result


async def _lines(session) -> tuple[int, int, int]:
    total = await session.scalar(select(func.count()).select_from(SettlementLine))
    distinct = await session.scalar(
        select(func.count(func.distinct(SettlementLine.merchant_order_id)))
    )
    gross = await session.scalar(select(func.coalesce(func.sum(SettlementLine.gross_fen), 0)))
    await session.commit()
    return int(total or 0), int(distinct or 0), int(gross or 0)


async def test_two_concurrent_runs_settle_each_merchant_order_once(client, app, session, cast):
    for merchant in ("m1", "m2", "m1", "m2", "m1"):
        await sell(client, app, session, cast, merchant, 1, days_ago=10)
    expected = await session.scalar(select(func.sum(MerchantOrder.subtotal_fen)))
    await session.commit()

    # different periods, so only the locks and the unique settled merchant order keep them apart
    results = await asyncio.gather(
        _run_in_own_transaction(app, shanghai_today() - timedelta(days=1)),
        _run_in_own_transaction(app, shanghai_today()),
    )

    assert sum(len(r.settlement_ids) for r in results) == 2  # one per merchant in all
    assert await _lines(session) == (5, 5, expected)


async def test_a_run_started_while_another_holds_the_merchants_issues_nothing_twice(
    client, app, session, cast
):
    await sell(client, app, session, cast, "m1", 2, days_ago=10)
    await sell(client, app, session, cast, "m2", 1, days_ago=10)
    hold = asyncio.Event()
    first = asyncio.create_task(
        _run_in_own_transaction(app, shanghai_today() - timedelta(days=1), hold=hold)
    )
    await asyncio.sleep(0.3)  # the first run holds its merchants, uncommitted
    second = asyncio.create_task(_run_in_own_transaction(app, shanghai_today()))
    await asyncio.sleep(0.3)
    hold.set()
    a, b = await asyncio.gather(first, second)

    assert len(a.settlement_ids) == 2
    assert b.settlement_ids == []
    assert await _lines(session) == (2, 2, 9000 + 21000)


async def test_two_concurrent_api_runs(client, app, session, cast):
    for merchant in ("m1", "m2"):
        await sell(client, app, session, cast, merchant, 3, days_ago=10)
    first, second = await asyncio.gather(
        run(client, app, cast["admin"], shanghai_today() - timedelta(days=1)),
        run(client, app, cast["admin"], shanghai_today()),
    )
    assert len(first["settlements"]) + len(second["settlements"]) == 2
    assert await _lines(session) == (2, 2, 3 * 4500 + 3 * 21000)
