"""Refunds: the buyer asks for lines of one merchant's part back, the merchant (or an admin)
approves or rejects; stock, statuses and the ledger follow."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    API,
    ask_refund,
    audit_actions,
    balances_by_account,
    counts,
    get_order,
    idem,
    make_staff,
    part_of,
    pay_back,
    pay_by_bank,
    place,
    ship,
    stock_of,
)


@pytest.fixture
async def paid(client, app, session):
    """A paid order: two products of merchant 1 (2 × 45.00, 3 × 8.00), one of merchant 2."""
    m1, owner1 = await make_merchant(session)
    m2, owner2 = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p1b = await make_product(session, m1, price_fen=800, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    order = await place(client, app, buyer, [(p1, 2), (p1b, 3), (p2, 1)])
    await pay_by_bank(client, app, buyer, admin, order)
    mo1, mo2 = part_of(order, m1), part_of(order, m2)
    return {
        "order": order,
        "m1": m1,
        "m2": m2,
        "owner1": owner1,
        "owner2": owner2,
        "staff1": await make_staff(session, m1),
        "p1": p1,
        "p1b": p1b,
        "p2": p2,
        "buyer": buyer,
        "admin": admin,
        "mo1": mo1["id"],
        "mo2": mo2["id"],
        "l1": mo1["lines"][0]["id"],
        "l1b": mo1["lines"][1]["id"],
        "l2": mo2["lines"][0]["id"],
    }


async def _decide(client, app, user, refund_id, verb, **kwargs):
    return await client.post(f"{API}/refunds/{refund_id}/{verb}", headers=auth(app, user), **kwargs)


async def test_a_refund_request_is_201_requested_with_its_amount(client, app, paid):
    refund = await ask_refund(
        client, app, paid["buyer"], paid["order"], [(paid["l1"], 1), (paid["l1b"], 2)]
    )
    assert refund["status"] == "requested"
    assert refund["kind"] == "requested"
    assert refund["amount_fen"] == 4500 + 2 * 800
    assert refund["currency"] == "CNY"
    assert refund["merchant_order_id"] == paid["mo1"]
    assert refund["reason"] == "包装破损"
    assert sorted(
        (ln["order_line_id"], ln["quantity"], ln["amount_fen"]) for ln in refund["lines"]
    ) == sorted([(paid["l1"], 1, 4500), (paid["l1b"], 2, 1600)])
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert [r["id"] for r in order["refunds"]] == [refund["id"]]
    assert order["refunded_fen"] == 0  # nothing moves before a decision


async def test_the_same_line_twice_in_a_request_counts_once_each(client, app, paid):
    refund = await ask_refund(
        client, app, paid["buyer"], paid["order"], [(paid["l1b"], 1), (paid["l1b"], 2)]
    )
    assert refund["amount_fen"] == 3 * 800
    assert [(ln["quantity"], ln["amount_fen"]) for ln in refund["lines"]] == [(3, 2400)]
    await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1b"], 1)], expect=409)


async def test_more_than_bought_is_409(client, app, session, paid):
    r = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 3)], expect=409)
    assert r["code"] == "refund_exceeds_purchase"
    assert r["order_line_id"] == paid["l1"]
    assert r["refundable_quantity"] == 2
    assert (await counts(session))["refunds"] == 0


async def test_requests_awaiting_a_decision_count(client, app, session, paid):
    first = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 2)])
    r = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 2)], expect=409)
    assert r["code"] == "refund_exceeds_purchase"
    assert r["refundable_quantity"] == 0
    # Once rejected, the units may be asked for again.
    r = await _decide(client, app, paid["owner1"], first["id"], "reject", json={"reason": "已签收"})
    assert r.status_code == 200
    second = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 2)])
    assert (await _decide(client, app, paid["owner1"], second["id"], "approve")).status_code == 200
    # Once approved, they are refunded and cannot be asked for a third time.
    r = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)], expect=409)
    assert r["code"] == "refund_exceeds_purchase"
    assert (await counts(session))["refunds"] == 2


async def test_a_line_of_another_order_is_422(client, app, session, paid):
    other = await place(client, app, paid["buyer"], [(paid["p1"], 1)])
    await pay_by_bank(client, app, paid["buyer"], paid["admin"], other)
    foreign_line = other["merchant_orders"][0]["lines"][0]["id"]
    for line_id in (foreign_line, "00000000-0000-4000-8000-000000000000"):
        r = await ask_refund(
            client, app, paid["buyer"], paid["order"], [(paid["l1"], 1), (line_id, 1)], expect=422
        )
        assert r["code"] == "invalid_refund_line"
        assert r["order_line_id"] == line_id
    assert (await counts(session))["refunds"] == 0


async def test_lines_of_two_merchants_are_422(client, app, session, paid):
    r = await ask_refund(
        client, app, paid["buyer"], paid["order"], [(paid["l1"], 1), (paid["l2"], 1)], expect=422
    )
    assert r["code"] == "refund_spans_merchants"
    assert (await counts(session))["refunds"] == 0


async def test_an_unpaid_order_is_not_refundable(client, app, session, paid):
    order = await place(client, app, paid["buyer"], [(paid["p1"], 1)])
    line = order["merchant_orders"][0]["lines"][0]["id"]
    r = await ask_refund(client, app, paid["buyer"], order, [(line, 1)], expect=409)
    assert r["code"] == "order_not_refundable"
    r = await client.post(f"{API}/orders/{order['id']}/cancel", headers=auth(app, paid["buyer"]))
    assert r.status_code == 200
    r = await ask_refund(client, app, paid["buyer"], order, [(line, 1)], expect=409)
    assert r["code"] == "order_not_refundable"
    assert (await counts(session))["refunds"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"lines": [], "reason": "x"},
        {"lines": [{"order_line_id": "L1", "quantity": 0}], "reason": "x"},
        {"lines": [{"order_line_id": "L1", "quantity": -1}], "reason": "x"},
        {"lines": [{"order_line_id": "L1", "quantity": 2**64}], "reason": "x"},
        {"lines": [{"order_line_id": "L1", "quantity": 1}]},
        {"lines": [{"order_line_id": "L1", "quantity": 1}], "reason": " "},
        {"lines": [{"order_line_id": "L1", "quantity": 1}], "reason": "x" * 501},
        {"lines": [{"order_line_id": "L1", "quantity": 1}], "reason": "x", "amount_fen": 1},
        {"lines": [{"order_line_id": "not-a-uuid", "quantity": 1}], "reason": "x"},
    ],
)
async def test_a_bad_refund_request_is_422(client, app, session, paid, body):
    for line in body["lines"]:
        if line["order_line_id"] == "L1":
            line["order_line_id"] = paid["l1"]
    r = await client.post(
        f"{API}/orders/{paid['order']['id']}/refunds",
        json=body,
        headers={**auth(app, paid["buyer"]), **idem()},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert (await counts(session))["refunds"] == 0


async def test_only_the_buyer_asks_for_a_refund(client, app, session, paid):
    stranger = await make_user(session)
    r = await ask_refund(client, app, stranger, paid["order"], [(paid["l1"], 1)], expect=404)
    assert r["code"] == "order_not_found"
    for caller in (paid["owner1"], paid["admin"]):
        r = await ask_refund(client, app, caller, paid["order"], [(paid["l1"], 1)], expect=403)
        assert r["code"] == "forbidden"
    assert (await counts(session))["refunds"] == 0


async def test_approval_returns_unshipped_units_to_stock(client, app, session, paid):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)])
    r = await _decide(client, app, paid["staff1"], refund["id"], "approve", json={})
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved"  # a bank refund: paid when the admin sends it
    assert approved["decided_at"] is not None and approved["succeeded_at"] is None
    await pay_back(client, app, paid["admin"], refund["id"])
    assert await stock_of(session, paid["p1"]) == 9
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "paid"
    assert order["refunded_fen"] == 4500
    mo1 = part_of(order, paid["m1"])
    assert mo1["refunded_fen"] == 4500
    assert mo1["status"] == "paid"
    assert mo1["lines"][0]["refunded_quantity"] == 1

    events = await audit_actions(client, app, paid["admin"], "refund.approved", refund["id"])
    assert [(e["actor_id"], e["detail"]["amount_fen"]) for e in events] == [
        (str(paid["staff1"].id), 4500)
    ]
    balances = await balances_by_account(client, app, paid["admin"])
    assert balances[("platform_cash", None)] == paid["order"]["total_fen"] - 4500
    assert balances[("merchant_payable", str(paid["m1"].id))] == -(9000 + 2400 - 4500)
    assert balances.get(("refunds_in_transit", None), 0) == 0


async def test_shipped_units_do_not_return_to_stock(client, app, session, paid):
    await ship(client, app, paid["owner1"], paid["mo1"])
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 2)])
    r = await _decide(client, app, paid["owner1"], refund["id"], "approve")
    assert r.status_code == 200
    assert r.json()["status"] == "approved"
    assert await stock_of(session, paid["p1"]) == 8
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["status"] == "shipped"


async def test_a_completed_order_can_still_be_refunded(client, app, session, paid):
    for member, mo in ((paid["owner1"], paid["mo1"]), (paid["owner2"], paid["mo2"])):
        await ship(client, app, member, mo)
        r = await client.post(
            f"{API}/merchant-orders/{mo}/confirm-receipt", headers=auth(app, paid["buyer"])
        )
        assert r.status_code == 200
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)])
    r = await _decide(client, app, paid["owner2"], refund["id"], "approve")
    assert r.json()["status"] == "approved"
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "completed"
    assert order["refunded_fen"] == 21000
    assert await stock_of(session, paid["p2"]) == 4


async def test_another_merchant_cannot_decide(client, app, session, paid):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)])
    for verb, kwargs in (("approve", {}), ("reject", {"json": {"reason": "不行"}})):
        r = await _decide(client, app, paid["owner2"], refund["id"], verb, **kwargs)
        assert r.status_code == 404
        assert r.json()["code"] == "refund_not_found"
    for caller in (paid["buyer"], await make_user(session, role=Role.official)):
        r = await _decide(client, app, caller, refund["id"], "approve")
        assert r.status_code == 403
        assert r.json()["code"] == "forbidden"
    r = await client.post(f"{API}/refunds/{refund['id']}/approve")
    assert r.status_code == 401
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["refunds"][0]["status"] == "requested"
    assert await stock_of(session, paid["p1"]) == 8


async def test_an_admin_may_decide(client, app, paid):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)])
    r = await _decide(client, app, paid["admin"], refund["id"], "approve")
    assert r.status_code == 200
    assert r.json()["status"] == "approved"


async def test_a_rejection_moves_nothing(client, app, session, paid):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 2)])
    before = await counts(session)
    balances_before = await balances_by_account(client, app, paid["admin"])

    r = await _decide(
        client, app, paid["owner1"], refund["id"], "reject", json={"reason": "商品已拆封"}
    )
    assert r.status_code == 200, r.text
    rejected = r.json()
    assert rejected["status"] == "rejected"
    assert rejected["reject_reason"] == "商品已拆封"
    assert rejected["decided_at"] is not None
    assert await stock_of(session, paid["p1"]) == 8
    assert await counts(session) == before
    assert await balances_by_account(client, app, paid["admin"]) == balances_before
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["refunded_fen"] == 0
    assert part_of(order, paid["m1"])["lines"][0]["refunded_quantity"] == 0
    events = await audit_actions(client, app, paid["admin"], "refund.rejected", refund["id"])
    assert [(e["actor_id"], e["detail"]["reason"]) for e in events] == [
        (str(paid["owner1"].id), "商品已拆封")
    ]


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "x" * 501}])
async def test_a_rejection_needs_a_reason(client, app, paid, body):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)])
    r = await _decide(client, app, paid["owner1"], refund["id"], "reject", json=body)
    assert r.status_code == 422
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["refunds"][0]["status"] == "requested"


async def test_a_decided_refund_is_decided_for_good(client, app, session, paid):
    rejected = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)])
    await _decide(client, app, paid["owner1"], rejected["id"], "reject", json={"reason": "不"})
    r = await _decide(client, app, paid["owner1"], rejected["id"], "approve")
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    r = await _decide(client, app, paid["owner1"], rejected["id"], "reject", json={"reason": "不"})
    assert r.status_code == 409

    approved = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l1"], 1)])
    assert (
        await _decide(client, app, paid["owner1"], approved["id"], "approve")
    ).status_code == 200
    before = await counts(session)
    r = await _decide(client, app, paid["owner1"], approved["id"], "approve")
    assert r.status_code == 409
    r = await _decide(client, app, paid["owner1"], approved["id"], "reject", json={"reason": "x"})
    assert r.status_code == 409
    assert await counts(session) == before
    assert await stock_of(session, paid["p1"]) == 9
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["refunded_fen"] == 4500


async def test_refunding_everything_makes_the_order_refunded(client, app, session, paid):
    first = await ask_refund(
        client, app, paid["buyer"], paid["order"], [(paid["l1"], 2), (paid["l1b"], 3)]
    )
    second = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)])
    assert (await _decide(client, app, paid["owner1"], first["id"], "approve")).status_code == 200
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "paid"
    assert (await _decide(client, app, paid["owner2"], second["id"], "approve")).status_code == 200

    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "refunded"
    assert order["refunded_fen"] == order["total_fen"]
    assert {mo["status"] for mo in order["merchant_orders"]} == {"cancelled"}
    assert [await stock_of(session, p) for p in (paid["p1"], paid["p1b"], paid["p2"])] == [
        10,
        10,
        5,
    ]
    balances = await balances_by_account(client, app, paid["admin"])
    assert balances[("refunds_in_transit", None)] == -order["total_fen"]
    for refund in (first, second):
        await pay_back(client, app, paid["admin"], refund["id"])
    balances = await balances_by_account(client, app, paid["admin"])
    assert balances[("platform_cash", None)] == 0
    assert all(v == 0 for (acct, _), v in balances.items() if acct == "merchant_payable")
    # Nothing is left to ask for, and a refunded order is not cancelled.
    r = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)], expect=409)
    assert r["code"] == "order_not_refundable"
    r = await client.post(
        f"{API}/orders/{paid['order']['id']}/cancel", headers=auth(app, paid["buyer"])
    )
    assert r.status_code == 409


async def test_a_part_refunded_before_shipping_is_cancelled_and_the_rest_completes(
    client, app, session, paid
):
    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)])
    assert (await _decide(client, app, paid["owner2"], refund["id"], "approve")).status_code == 200
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m2"])["status"] == "cancelled"
    assert order["status"] == "paid"
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo2']}/ship",
        json={"carrier": "顺丰", "tracking_no": "SF1"},
        headers=auth(app, paid["owner2"]),
    )
    assert r.status_code == 409
    r = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)], expect=409)

    await ship(client, app, paid["owner1"], paid["mo1"])
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/confirm-receipt", headers=auth(app, paid["buyer"])
    )
    assert r.status_code == 200
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "completed"
    assert order["refunded_fen"] == 21000
    balances = await balances_by_account(client, app, paid["admin"])
    assert balances[("merchant_payable", str(paid["m2"].id))] == 0
    assert balances[("merchant_payable", str(paid["m1"].id))] == -(9000 + 2400)
    assert balances[("refunds_in_transit", None)] == -21000  # owed until the admin pays it
    assert balances[("platform_cash", None)] == 9000 + 2400 + 21000


async def test_an_unknown_refund_is_404(client, app, paid):
    r = await _decide(client, app, paid["admin"], "00000000-0000-4000-8000-000000000000", "approve")
    assert r.status_code == 404
    assert r.json()["code"] == "refund_not_found"


async def test_the_order_completes_when_the_last_open_part_is_refunded_before_shipping(
    client, app, paid
):
    await ship(client, app, paid["owner1"], paid["mo1"])
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/confirm-receipt", headers=auth(app, paid["buyer"])
    )
    assert r.status_code == 200
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "paid"  # merchant 2 has not shipped

    refund = await ask_refund(client, app, paid["buyer"], paid["order"], [(paid["l2"], 1)])
    assert (await _decide(client, app, paid["owner2"], refund["id"], "approve")).status_code == 200
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m2"])["status"] == "cancelled"
    assert order["status"] == "completed"
    assert order["completed_at"] is not None
