"""Refunds after settlement, carried-forward statements, and the ledger: what a merchant is owed
equals its unpaid statements plus what is not yet settled."""

from __future__ import annotations

from datetime import timedelta

from app.core.time import shanghai_today
from tests.fixtures.factories import auth
from tests.fixtures.orders import API, ask_refund, balances_by_account
from tests.fixtures.settlement import approve, assert_owed_agrees, ledger_sum, of, run, sell


def day(n: int):
    return shanghai_today() - timedelta(days=n)


async def test_a_late_refund_is_carried_forward_then_deducted(client, app, session, cast):
    admin, m1 = cast["admin"], cast["m1"]
    order = await sell(client, app, session, cast, "m1", 2, days_ago=10)
    first = of(await run(client, app, admin, day(3)), m1.id)
    assert first["net_fen"] == 9000 - 450
    await assert_owed_agrees(session, m1.id)

    # one apple comes back after the statement: 45 yuan less, 2.25 yuan of commission given back
    refund = await ask_refund(client, app, cast["buyer"], order, [(order["line_id"], 1)])
    await approve(client, app, admin, refund["id"])
    await assert_owed_agrees(session, m1.id)

    carried = of(await run(client, app, admin, day(2)), m1.id)
    assert carried["status"] == "carried_forward"
    assert carried["gross_fen"] == 0
    assert carried["merchant_orders"] == []
    (adj,) = carried["adjustments"]
    assert adj["kind"] == "late_refund"
    assert adj["merchant_order_id"] == order["mo"]["id"]
    assert (adj["refunds_fen"], adj["commission_fen"], adj["amount_fen"]) == (4500, -225, 4275)
    assert carried["net_fen"] == -4275
    await assert_owed_agrees(session, m1.id)

    # nothing new, nothing to deduct it from: no statement
    assert (await run(client, app, admin, day(1)))["settlements"] == []

    await sell(client, app, session, cast, "m1", 2, days_ago=9)
    nxt = of(await run(client, app, admin, shanghai_today()), m1.id)
    assert nxt["status"] == "pending_payout"
    assert nxt["adjustments_fen"] == 4275
    assert [a["kind"] for a in nxt["adjustments"]] == ["carried_forward"]
    assert nxt["adjustments"][0]["source_settlement_id"] == carried["id"]
    assert nxt["net_fen"] == 9000 - 450 - 4275
    await assert_owed_agrees(session, m1.id)

    r = await client.get(f"{API}/settlements/{carried['id']}", headers=auth(app, admin))
    assert r.json()["carried_into_id"] == nxt["id"]
    # the statements' nets add up to what the merchant kept of both orders, to the fen
    assert first["net_fen"] + nxt["net_fen"] == (9000 - 4500 - 225) + (9000 - 450)


async def test_a_late_refund_smaller_than_new_sales_is_deducted_at_once(client, app, session, cast):
    admin, m1 = cast["admin"], cast["m1"]
    order = await sell(client, app, session, cast, "m1", 3, days_ago=12)
    await run(client, app, admin, day(5))
    refund = await ask_refund(client, app, cast["buyer"], order, [(order["line_id"], 1)])
    await approve(client, app, admin, refund["id"])
    await sell(client, app, session, cast, "m1", 4, days_ago=8)

    s = of(await run(client, app, admin, day(1)), m1.id)

    assert s["gross_fen"] == 4 * 4500
    assert s["commission_fen"] == 900
    assert s["adjustments_fen"] == 4500 - 225
    assert s["net_fen"] == 18000 - 900 - 4275
    assert s["status"] == "pending_payout"
    await assert_owed_agrees(session, m1.id)


async def test_statements_agree_with_the_ledgers_commission(client, app, session, cast):
    admin = cast["admin"]
    order = await sell(client, app, session, cast, "m1", 3, days_ago=10)
    refund = await ask_refund(client, app, cast["buyer"], order, [(order["line_id"], 1)])
    await approve(client, app, admin, refund["id"])
    await sell(client, app, session, cast, "m2", 7, days_ago=10)

    result = await run(client, app, admin, day(1))

    for merchant in (cast["m1"], cast["m2"]):
        s = of(result, merchant.id)
        assert s["commission_fen"] == -await ledger_sum(session, "platform_commission", merchant.id)


async def test_the_ledger_shows_payouts_due_and_totals_zero(client, app, session, cast):
    admin, m1, m2 = cast["admin"], cast["m1"], cast["m2"]
    await sell(client, app, session, cast, "m1", 2, days_ago=10)
    await sell(client, app, session, cast, "m2", 1, days_ago=10)
    await sell(client, app, session, cast, "m1", 1, days_ago=2)  # not settleable yet
    result = await run(client, app, admin, day(1))

    balances = await balances_by_account(client, app, admin)

    assert balances[("payouts", str(m1.id))] == -of(result, m1.id)["net_fen"]
    assert balances[("payouts", str(m2.id))] == -of(result, m2.id)["net_fen"]
    assert balances[("merchant_payable", str(m1.id))] == -(4500 - 225)  # the unsettled order
    assert balances[("merchant_payable", str(m2.id))] == 0
    for merchant in (m1, m2):
        await assert_owed_agrees(session, merchant.id)
