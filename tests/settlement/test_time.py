"""Time edges: `period_end` is an Asia/Shanghai day (midnight there, not in UTC), the refund
window to the microsecond, and the weekly job on `SETTLEMENT_WEEKDAY`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.time import SHANGHAI, shanghai_day_start, shanghai_today, utcnow
from app.jobs.runner import JobContext, run_once
from app.models import Settlement, SettlementLine
from app.settlement.service import run_settlement
from tests.fixtures.settlement import sell, set_completed_at

PERIOD_END = shanghai_today() - timedelta(days=20)
MIDNIGHT = shanghai_day_start(PERIOD_END + timedelta(days=1))  # 16:00 UTC on PERIOD_END


async def settle(app, period_end, now, window: float = 7):
    async with app.state.db.sessionmaker() as s:
        result = await run_settlement(
            s, period_end=period_end, now=now, refund_window_days=window, actor_id=None
        )
        await s.commit()
    return result


async def settled_mo_ids(session) -> set[str]:
    ids = {str(i) for i in await session.scalars(select(SettlementLine.merchant_order_id))}
    await session.commit()
    return ids


async def test_midnight_in_shanghai_closes_the_period(client, app, session, cast):
    before = await sell(client, app, session, cast, "m1", 1)
    after = await sell(client, app, session, cast, "m1", 1)
    await set_completed_at(session, before["mo"]["id"], MIDNIGHT - timedelta(microseconds=1))
    await set_completed_at(session, after["mo"]["id"], MIDNIGHT)

    await settle(app, PERIOD_END, now=MIDNIGHT + timedelta(days=10))

    # 23:59:59.999999 in Shanghai is on PERIOD_END; 00:00 is the next day, though both are
    # PERIOD_END in UTC
    assert MIDNIGHT.date() == PERIOD_END
    assert await settled_mo_ids(session) == {before["mo"]["id"]}


async def test_a_run_just_after_midnight_settles_yesterday(client, app, session, cast):
    mo = await sell(client, app, session, cast, "m1", 1)
    await set_completed_at(session, mo["mo"]["id"], MIDNIGHT - timedelta(hours=1))
    # The window is 0 days: the run at 00:00:01 Shanghai settles the order of the day before
    result = await settle(app, PERIOD_END, now=MIDNIGHT + timedelta(seconds=1), window=0)
    assert len(result.settlement_ids) == 1
    assert await settled_mo_ids(session) == {mo["mo"]["id"]}


async def test_the_day_itself_is_not_in_the_future_at_midnight(client, app, session, cast):
    await settle(app, PERIOD_END + timedelta(days=1), now=MIDNIGHT)  # no error
    from app.settlement.errors import PeriodEndInFuture

    with pytest.raises(PeriodEndInFuture):
        await settle(app, PERIOD_END + timedelta(days=1), now=MIDNIGHT - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("since_completion", "settled"),
    [
        (timedelta(days=7), True),
        (timedelta(days=7) - timedelta(microseconds=1), False),
        (timedelta(days=7, seconds=1), True),
    ],
)
async def test_the_refund_window_boundary(client, app, session, cast, since_completion, settled):
    mo = await sell(client, app, session, cast, "m1", 1)
    completed = MIDNIGHT - timedelta(hours=5)
    await set_completed_at(session, mo["mo"]["id"], completed)

    await settle(app, PERIOD_END, now=completed + since_completion, window=7)

    assert (mo["mo"]["id"] in await settled_mo_ids(session)) is settled


async def test_a_decimal_refund_window(client, app, session, cast):
    mo = await sell(client, app, session, cast, "m1", 1)
    completed = MIDNIGHT - timedelta(hours=5)
    await set_completed_at(session, mo["mo"]["id"], completed)
    await settle(app, PERIOD_END, now=completed + timedelta(hours=35), window=1.5)
    assert await settled_mo_ids(session) == set()
    await settle(app, PERIOD_END, now=completed + timedelta(hours=36), window=1.5)
    assert await settled_mo_ids(session) == {mo["mo"]["id"]}


def monday_start():
    today = shanghai_today()
    monday = today - timedelta(days=today.isoweekday() - 1)
    return shanghai_day_start(monday)


def ctx(app, at, **settings):
    return JobContext(
        db=app.state.db,
        settings=app.state.settings.model_copy(update=settings),
        gateway=None,
        clock=lambda: at,
    )


async def test_the_weekly_job_settles_the_week_to_sunday(client, app, session, cast):
    monday = monday_start()
    old = await sell(client, app, session, cast, "m1", 1)
    recent = await sell(client, app, session, cast, "m2", 1)
    await set_completed_at(session, old["mo"]["id"], monday - timedelta(days=8))
    await set_completed_at(session, recent["mo"]["id"], monday - timedelta(days=3))

    # Monday 09:00 in Shanghai, on two machines at once, then again in the afternoon
    at = monday + timedelta(hours=9)
    first, second = await asyncio.gather(
        run_once(ctx(app, at)), run_once(ctx(app, at + timedelta(seconds=1)))
    )
    later = await run_once(ctx(app, monday + timedelta(hours=15)))

    assert first["settlement"] + second["settlement"] == 1
    assert later["settlement"] == 0
    statements = list(await session.scalars(select(Settlement)))
    await session.commit()
    (statement,) = statements
    assert statement.merchant_id == cast["m1"].id
    assert statement.period_end == monday.astimezone(SHANGHAI).date() - timedelta(days=1)
    assert statement.period_end.isoweekday() == 7
    assert await settled_mo_ids(session) == {old["mo"]["id"]}


async def test_the_weekly_job_waits_for_its_weekday(client, app, session, cast):
    monday = monday_start()
    mo = await sell(client, app, session, cast, "m1", 1)
    await set_completed_at(session, mo["mo"]["id"], monday - timedelta(days=20))

    # Sunday 23:59 in Shanghai (Sunday 15:59 UTC) is not Monday, whatever UTC says
    sunday_night = monday - timedelta(minutes=1)
    assert (await run_once(ctx(app, sunday_night)))["settlement"] == 0
    tuesday = monday + timedelta(days=1, hours=1)
    assert (await run_once(ctx(app, tuesday)))["settlement"] == 0
    # Tuesday is the day when SETTLEMENT_WEEKDAY=2: the period ends on Monday
    assert (await run_once(ctx(app, tuesday, settlement_weekday=2)))["settlement"] == 1
    period_end = await session.scalar(select(Settlement.period_end))
    count = await session.scalar(select(func.count()).select_from(Settlement))
    await session.commit()
    assert period_end == monday.astimezone(SHANGHAI).date()
    assert count == 1


async def test_merchants_with_a_statement_for_the_period_are_left_alone(client, app, session, cast):
    mo = await sell(client, app, session, cast, "m1", 1)
    await set_completed_at(session, mo["mo"]["id"], MIDNIGHT - timedelta(days=3))
    first = await settle(app, PERIOD_END, now=MIDNIGHT + timedelta(days=8))
    late = await sell(client, app, session, cast, "m1", 1)
    await set_completed_at(session, late["mo"]["id"], MIDNIGHT - timedelta(hours=1))
    second = await settle(app, PERIOD_END, now=utcnow())
    assert len(first.settlement_ids) == 1
    assert second.settlement_ids == []  # one statement per merchant and period
    third = await settle(app, PERIOD_END + timedelta(days=1), now=utcnow())
    assert len(third.settlement_ids) == 1
    assert uuid.UUID(late["mo"]["id"]) in {uuid.UUID(i) for i in await settled_mo_ids(session)}
