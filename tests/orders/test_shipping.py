"""Shipping a merchant order and the buyer confirming receipt; the order completes with its last
part."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    API,
    get_order,
    make_staff,
    part_of,
    pay_by_bank,
    place,
    ship,
)


@pytest.fixture
async def paid(client, app, session):
    """A paid order with one part from each of two merchants."""
    m1, owner1 = await make_merchant(session)
    m2, owner2 = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    order = await place(client, app, buyer, [(p1, 2), (p2, 1)])
    await pay_by_bank(client, app, buyer, admin, order)
    return {
        "order": order,
        "m1": m1,
        "m2": m2,
        "owner1": owner1,
        "owner2": owner2,
        "staff1": await make_staff(session, m1),
        "buyer": buyer,
        "admin": admin,
        "mo1": part_of(order, m1)["id"],
        "mo2": part_of(order, m2)["id"],
    }


def _ship_body(tracking_no="SF1234567890"):
    return {"carrier": "顺丰速运", "tracking_no": tracking_no}


async def _receive(client, app, user, mo_id):
    return await client.post(
        f"{API}/merchant-orders/{mo_id}/confirm-receipt", headers=auth(app, user)
    )


async def test_a_member_ships_its_part(client, app, paid):
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/ship",
        json={"carrier": " 中国邮政 ", "tracking_no": "9876543210123"},
        headers=auth(app, paid["staff1"]),
    )
    assert r.status_code == 200, r.text
    shipped = r.json()
    assert shipped["id"] == paid["mo1"]
    assert shipped["status"] == "shipped"
    assert (shipped["carrier"], shipped["tracking_no"]) == ("中国邮政", "9876543210123")
    assert shipped["shipped_at"] is not None
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "paid"
    assert part_of(order, paid["m1"])["status"] == "shipped"
    assert part_of(order, paid["m2"])["status"] == "paid"


async def test_another_merchants_member_cannot_ship_it(client, app, session, paid):
    _, outsider_owner = await make_merchant(session)
    for member in (paid["owner2"], outsider_owner):
        r = await client.post(
            f"{API}/merchant-orders/{paid['mo1']}/ship",
            json=_ship_body(),
            headers=auth(app, member),
        )
        assert r.status_code == 404
        assert r.json()["code"] == "merchant_order_not_found"
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["status"] == "paid"


@pytest.mark.parametrize("role", ["buyer", "official", "admin"])
async def test_only_merchant_members_ship(client, app, session, paid, role):
    caller = paid["buyer"] if role == "buyer" else await make_user(session, role=Role(role))
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/ship", json=_ship_body(), headers=auth(app, caller)
    )
    # Its buyer and an admin see the merchant order (403); an official may do nothing outside
    # statistics (403, API.md roles).
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    r = await client.post(f"{API}/merchant-orders/{paid['mo1']}/ship", json=_ship_body())
    assert r.status_code == 401
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["status"] == "paid"


@pytest.mark.parametrize(
    "body",
    [
        {"carrier": "顺丰"},
        {"tracking_no": "SF1"},
        {"carrier": "", "tracking_no": "SF1"},
        {"carrier": "顺丰", "tracking_no": "SF 1"},
        {"carrier": "顺丰", "tracking_no": "X" * 61},
        {"carrier": "顺" * 41, "tracking_no": "SF1"},
        {"carrier": "顺丰", "tracking_no": "SF1", "shipped_at": "2026-01-01"},
    ],
)
async def test_bad_shipping_details_are_422(client, app, paid, body):
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/ship", json=body, headers=auth(app, paid["owner1"])
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["status"] == "paid"


async def test_an_unpaid_part_does_not_ship(client, app, session):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    order = await place(client, app, buyer, [(product, 1)])
    r = await client.post(
        f"{API}/merchant-orders/{order['merchant_orders'][0]['id']}/ship",
        json=_ship_body(),
        headers=auth(app, owner),
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    stored = await get_order(client, app, buyer, order["id"])
    assert stored["merchant_orders"][0]["status"] == "pending_payment"
    assert stored["merchant_orders"][0]["tracking_no"] is None


async def test_a_part_ships_once(client, app, paid):
    await ship(client, app, paid["owner1"], paid["mo1"])
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo1']}/ship",
        json=_ship_body("OTHER999"),
        headers=auth(app, paid["owner1"]),
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["tracking_no"] == "SF1234567890"


async def test_an_unknown_merchant_order_is_404(client, app, paid):
    r = await client.post(
        f"{API}/merchant-orders/00000000-0000-4000-8000-000000000000/ship",
        json=_ship_body(),
        headers=auth(app, paid["owner1"]),
    )
    assert r.status_code == 404


async def test_the_order_completes_when_the_buyer_received_every_part(client, app, paid):
    await ship(client, app, paid["owner1"], paid["mo1"])
    await ship(client, app, paid["owner2"], paid["mo2"])

    r = await _receive(client, app, paid["buyer"], paid["mo1"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert r.json()["completed_at"] is not None
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "paid"
    assert order["completed_at"] is None

    r = await _receive(client, app, paid["buyer"], paid["mo2"])
    assert r.status_code == 200, r.text
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert order["status"] == "completed"
    assert order["completed_at"] is not None
    assert {mo["status"] for mo in order["merchant_orders"]} == {"completed"}


async def test_receipt_is_confirmed_once_and_only_after_shipping(client, app, paid):
    r = await _receive(client, app, paid["buyer"], paid["mo1"])
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    await ship(client, app, paid["owner1"], paid["mo1"])
    assert (await _receive(client, app, paid["buyer"], paid["mo1"])).status_code == 200
    r = await _receive(client, app, paid["buyer"], paid["mo1"])
    assert r.status_code == 409


async def test_only_the_buyer_confirms_receipt(client, app, session, paid):
    await ship(client, app, paid["owner1"], paid["mo1"])
    stranger = await make_user(session)
    r = await _receive(client, app, stranger, paid["mo1"])
    assert r.status_code == 404
    assert r.json()["code"] == "merchant_order_not_found"
    official = await make_user(session, role=Role.official)
    r = await _receive(client, app, official, paid["mo1"])
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    for caller in (paid["owner1"], paid["admin"]):
        r = await _receive(client, app, caller, paid["mo1"])
        assert r.status_code == 403
    r = await client.post(f"{API}/merchant-orders/{paid['mo1']}/confirm-receipt")
    assert r.status_code == 401
    order = await get_order(client, app, paid["buyer"], paid["order"]["id"])
    assert part_of(order, paid["m1"])["status"] == "shipped"


async def test_a_suspended_merchant_still_ships_and_completes_its_open_orders(
    client, app, session, paid
):
    r = await client.post(
        f"{API}/merchants/{paid['m1'].id}/suspend",
        json={"reason": "资质复核"},
        headers=auth(app, paid["admin"]),
    )
    assert r.status_code == 200, r.text
    await ship(client, app, paid["owner1"], paid["mo1"])
    r = await _receive(client, app, paid["buyer"], paid["mo1"])
    assert r.status_code == 200
    assert r.json()["status"] == "completed"
