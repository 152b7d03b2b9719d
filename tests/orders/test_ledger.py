"""`GET /ledger/balances`: admins only; signed balances that always total 0, and a merchant's
payable equal to what it is owed after payments, refunds and commission."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    API,
    ask_refund,
    balances_by_account,
    get_order,
    part_of,
    pay_back,
    pay_by_bank,
    place,
    ship,
)


async def test_an_empty_ledger_totals_zero(client, app, session):
    admin = await make_user(session, role=Role.admin)
    r = await client.get(f"{API}/ledger/balances", headers=auth(app, admin))
    assert r.status_code == 200
    assert r.json() == {"accounts": [], "total_fen": 0}


@pytest.mark.parametrize("role", ["buyer", "merchant", "official"])
async def test_only_admins_read_the_ledger(client, app, session, role):
    if role == "merchant":
        _, caller = await make_merchant(session)
    else:
        caller = await make_user(session, role=Role(role))
    r = await client.get(f"{API}/ledger/balances", headers=auth(app, caller))
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


async def test_anonymous_is_401(client):
    r = await client.get(f"{API}/ledger/balances")
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


async def test_a_merchants_payable_is_subtotal_less_refunds_less_commission(
    app_with, client, app, session
):
    m1, owner1 = await make_merchant(session)
    m2, _ = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)

    # Paid while the commission is 5%; the refund is decided after the rate went back to 0:
    # the order keeps the rate it was paid at.
    paying_app, paying_client = await app_with(commission_rate_bps=500)
    order = await place(paying_client, paying_app, buyer, [(p1, 2), (p2, 1)])
    await pay_by_bank(paying_client, paying_app, buyer, admin, order)
    await ship(client, app, owner1, part_of(order, m1)["id"])
    refund = await ask_refund(
        client, app, buyer, order, [(part_of(order, m1)["lines"][0]["id"], 1)]
    )
    r = await client.post(f"{API}/refunds/{refund['id']}/approve", headers=auth(app, owner1))
    assert r.json()["status"] == "approved"
    await pay_back(client, app, admin, refund["id"])

    stored = await get_order(client, app, buyer, order["id"])
    mo1, mo2 = part_of(stored, m1), part_of(stored, m2)
    assert (mo1["subtotal_fen"], mo1["refunded_fen"]) == (9000, 4500)
    assert (mo2["subtotal_fen"], mo2["refunded_fen"]) == (21000, 0)
    commission1 = 225  # 5% of 9000 − 4500
    commission2 = 1050  # 5% of 21000

    r = await client.get(f"{API}/ledger/balances", headers=auth(app, admin))
    assert r.status_code == 200
    body = r.json()
    assert body["total_fen"] == 0
    assert sum(a["balance_fen"] for a in body["accounts"]) == 0
    balances = {(a["account"], a["merchant_id"]): a["balance_fen"] for a in body["accounts"]}
    assert balances[("merchant_payable", str(m1.id))] == -(9000 - 4500 - commission1)
    assert balances[("merchant_payable", str(m2.id))] == -(21000 - 0 - commission2)
    assert balances[("platform_commission", str(m1.id))] == -commission1
    assert balances[("platform_commission", str(m2.id))] == -commission2
    assert balances[("platform_cash", None)] == 30000 - 4500
    assert balances.get(("refunds_in_transit", None), 0) == 0


async def test_commission_is_rounded_half_up_to_the_fen(app_with, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=333, stock=10)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    other_app, other_client = await app_with(commission_rate_bps=500)
    order = await place(other_client, other_app, buyer, [(product, 1)])
    await pay_by_bank(other_client, other_app, buyer, admin, order)

    balances = await balances_by_account(other_client, other_app, admin)
    assert balances[("platform_commission", str(merchant.id))] == -17  # 16.65 → 17
    assert balances[("merchant_payable", str(merchant.id))] == -(333 - 17)


async def test_a_full_cancellation_with_commission_leaves_nothing_owed(app_with, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=9999, stock=10)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    other_app, other_client = await app_with(commission_rate_bps=750)
    order = await place(other_client, other_app, buyer, [(product, 3)])
    await pay_by_bank(other_client, other_app, buyer, admin, order)
    r = await other_client.post(
        f"{API}/orders/{order['id']}/cancel", headers=auth(other_app, buyer)
    )
    assert r.status_code == 200, r.text
    await pay_back(other_client, other_app, admin, r.json()["refunds"][0]["id"])

    balances = await balances_by_account(other_client, other_app, admin)
    assert {k: v for k, v in balances.items() if v != 0} == {}
