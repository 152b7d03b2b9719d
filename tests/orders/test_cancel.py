"""The buyer cancels an order before anything shipped: stock back, open payment cancelled, and a
paid order refunded in full."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_user
from tests.fixtures.orders import (
    API,
    audit_actions,
    balances_by_account,
    counts,
    get_order,
    open_payment,
    part_of,
    pay_back,
    pay_by_bank,
    place_two_lines,
    ship,
    stock_of,
)


async def _cancel(client, app, user, order_id, **kwargs):
    return await client.post(f"{API}/orders/{order_id}/cancel", headers=auth(app, user), **kwargs)


async def test_cancelling_an_unpaid_order_returns_stock_and_cancels_the_payment(
    client, app, session, cast
):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    assert await stock_of(session, cast["p1"]) == 8

    r = await _cancel(client, app, cast["buyer"], order["id"], json={})
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "buyer_cancelled"
    assert cancelled["cancelled_at"] is not None
    assert {mo["status"] for mo in cancelled["merchant_orders"]} == {"cancelled"}
    assert [(p["id"], p["status"]) for p in cancelled["payments"]] == [
        (payment["payment_id"], "cancelled")
    ]
    assert cancelled["refunds"] == []
    assert await stock_of(session, cast["p1"]) == 10
    assert await stock_of(session, cast["p2"]) == 5
    assert (await counts(session))["ledger_entries"] == 0
    assert await get_order(client, app, cast["buyer"], order["id"]) == cancelled


async def test_cancelling_a_paid_order_refunds_it_in_full(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)

    r = await _cancel(client, app, cast["buyer"], order["id"])
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "cancelled"
    assert {mo["status"] for mo in cancelled["merchant_orders"]} == {"cancelled"}
    assert [(f["kind"], f["status"], f["amount_fen"]) for f in cancelled["refunds"]] == [
        ("cancellation", "approved", 30000)  # owed back until the admin pays it
    ]
    assert cancelled["refunded_fen"] == 30000
    assert cancelled["payments"][0]["status"] == "succeeded"
    assert await stock_of(session, cast["p1"]) == 10
    assert await stock_of(session, cast["p2"]) == 5
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("refunds_in_transit", None)] == -30000
    assert balances[("merchant_payable", str(cast["m1"].id))] == 0
    await pay_back(client, app, cast["admin"], cancelled["refunds"][0]["id"])

    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("platform_cash", None)] == 0
    assert balances[("merchant_payable", str(cast["m1"].id))] == 0
    assert balances[("merchant_payable", str(cast["m2"].id))] == 0
    assert balances.get(("refunds_in_transit", None), 0) == 0
    events = await audit_actions(client, app, cast["admin"], "order.cancelled", order["id"])
    assert [e["detail"]["refund_fen"] for e in events] == [30000]


async def test_a_paid_order_with_a_partial_refund_refunds_the_rest(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    line = part_of(order, cast["m1"])["lines"][0]
    r = await client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "少了一个"},
        headers={**auth(app, cast["buyer"]), "Idempotency-Key": "partial"},
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/refunds/{r.json()['id']}/approve", headers=auth(app, cast["owner1"])
    )
    assert r.json()["status"] == "approved"
    await pay_back(client, app, cast["admin"], r.json()["id"])
    assert await stock_of(session, cast["p1"]) == 9

    r = await _cancel(client, app, cast["buyer"], order["id"])
    assert r.status_code == 200, r.text
    refunds = sorted((f["kind"], f["amount_fen"], f["status"]) for f in r.json()["refunds"])
    assert refunds == [
        ("cancellation", 30000 - 4500, "approved"),
        ("requested", 4500, "succeeded"),
    ]
    for refund in r.json()["refunds"]:
        if refund["status"] == "approved":
            await pay_back(client, app, cast["admin"], refund["id"])
    assert r.json()["refunded_fen"] == 30000
    assert await stock_of(session, cast["p1"]) == 10
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("platform_cash", None)] == 0
    assert all(v == 0 for (acct, _), v in balances.items() if acct == "merchant_payable")


async def test_a_pending_refund_request_is_closed_by_the_cancellation(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    line = part_of(order, cast["m2"])["lines"][0]
    r = await client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "不要了"},
        headers={**auth(app, cast["buyer"]), "Idempotency-Key": "pending"},
    )
    assert r.status_code == 201
    request_id = r.json()["id"]

    r = await _cancel(client, app, cast["buyer"], order["id"])
    assert r.status_code == 200, r.text
    request = next(f for f in r.json()["refunds"] if f["id"] == request_id)
    assert request["status"] == "rejected"
    # Approving it afterwards cannot refund the money twice.
    r = await client.post(f"{API}/refunds/{request_id}/approve", headers=auth(app, cast["owner2"]))
    assert r.status_code == 409
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["refunded_fen"] == 30000
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("refunds_in_transit", None)] == -30000  # owed once, awaiting the transfer
    assert balances[("platform_cash", None)] == 30000


async def test_nothing_is_cancelled_once_a_part_has_shipped(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    await ship(client, app, cast["owner1"], part_of(order, cast["m1"])["id"])
    before = await counts(session)

    r = await _cancel(client, app, cast["buyer"], order["id"])
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "paid"
    assert sorted(mo["status"] for mo in stored["merchant_orders"]) == ["paid", "shipped"]
    assert stored["refunds"] == []
    assert await counts(session) == before
    assert await stock_of(session, cast["p1"]) == 8
    assert await stock_of(session, cast["p2"]) == 4


async def test_another_buyers_order_is_404(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    stranger = await make_user(session)
    r = await _cancel(client, app, stranger, order["id"])
    assert r.status_code == 404
    assert r.json()["code"] == "order_not_found"
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "pending_payment"
    assert await stock_of(session, cast["p1"]) == 8


@pytest.mark.parametrize("role", ["merchant", "admin", "official"])
async def test_only_the_buyer_cancels(client, app, session, cast, role):
    order = await place_two_lines(client, app, cast)
    caller = {
        "merchant": cast["owner1"],
        "admin": cast["admin"],
        "official": await make_user(session, role=Role.official),
    }[role]
    r = await _cancel(client, app, caller, order["id"])
    # A member of one of its merchants and an admin see the order: 403; an official may do
    # nothing outside statistics: 403 too (API.md, roles).
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    r = await client.post(f"{API}/orders/{order['id']}/cancel")
    assert r.status_code == 401
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "pending_payment"


async def test_cancelling_twice_is_409(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    assert (await _cancel(client, app, cast["buyer"], order["id"])).status_code == 200
    before = await counts(session)

    r = await _cancel(client, app, cast["buyer"], order["id"])
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert await counts(session) == before
    assert await stock_of(session, cast["p1"]) == 10


async def test_an_unknown_order_or_a_body_with_fields_is_refused(client, app, cast):
    r = await _cancel(client, app, cast["buyer"], "00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404
    order = await place_two_lines(client, app, cast)
    r = await _cancel(client, app, cast["buyer"], order["id"], json={"reason": "x"})
    assert r.status_code == 422
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "pending_payment"
