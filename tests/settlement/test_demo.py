"""The demo year's settlement history: weekly statements, most paid, the latest pending, one
carried forward, and a ledger that agrees."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from app.models import LedgerEntry, Settlement, SettlementStatus
from app.seed.demo import seed_demo
from tests.fixtures.settlement import assert_owed_agrees


async def test_the_demo_year_has_a_living_settlement_history(session, settings):
    first = await seed_demo(session, settings)
    await session.commit()
    statements = list(await session.scalars(select(Settlement)))
    await session.commit()

    assert first.added["settlements"] == len(statements) > 50
    latest = max(s.period_end for s in statements)
    weeks = sorted({s.period_end for s in statements})
    assert all((b - a).days % 7 == 0 for a, b in itertools.pairwise(weeks))
    assert all(d.isoweekday() == 7 for d in weeks)  # SETTLEMENT_WEEKDAY 1: periods end on Sunday
    older = [s for s in statements if s.period_end < latest]
    assert {s.status for s in older} == {SettlementStatus.paid}
    newest = [s for s in statements if s.period_end == latest]
    assert SettlementStatus.pending_payout in {s.status for s in newest}
    assert [s.status for s in statements].count(SettlementStatus.carried_forward) == 1

    assert await session.scalar(select(func.sum(LedgerEntry.amount_fen))) == 0
    for merchant_id in {s.merchant_id for s in statements}:
        await assert_owed_agrees(session, merchant_id)

    second = await seed_demo(session, settings)
    await session.commit()
    assert second.added["settlements"] == 0
