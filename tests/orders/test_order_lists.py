"""Reading orders: `GET /orders` (a buyer's own, an admin's all), `GET /orders/{id}`, and a
merchant's parts (`GET /merchants/{id}/orders`), with keyset pagination."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    ADDRESS,
    API,
    make_staff,
    part_of,
    pay_by_bank,
    place,
)


@pytest.fixture
async def cast(session):
    m1, owner1 = await make_merchant(session)
    m2, owner2 = await make_merchant(session)
    return {
        "m1": m1,
        "m2": m2,
        "owner1": owner1,
        "owner2": owner2,
        "p1": await make_product(session, m1, price_fen=4500, stock=100),
        "p2": await make_product(session, m2, price_fen=21000, stock=100),
        "alice": await make_user(session),
        "bob": await make_user(session),
        "admin": await make_user(session, role=Role.admin),
        "official": await make_user(session, role=Role.official),
    }


async def _pages(client, app, user, path, limit, **params):
    """Every item of a list, page by page; the number of pages."""
    items, pages, cursor = [], 0, None
    while True:
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        r = await client.get(f"{API}{path}", params=query, headers=auth(app, user))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


async def test_a_buyer_lists_only_its_own_orders_newest_first(client, app, cast):
    mine = [await place(client, app, cast["alice"], [(cast["p1"], 1)]) for _ in range(3)]
    await place(client, app, cast["bob"], [(cast["p2"], 1)])

    r = await client.get(f"{API}/orders", headers=auth(app, cast["alice"]))
    assert r.status_code == 200
    body = r.json()
    assert [o["id"] for o in body["items"]] == [o["id"] for o in reversed(mine)]
    assert body["next_cursor"] is None
    assert body["items"][0]["merchant_orders"][0]["lines"][0]["product_id"] == str(cast["p1"].id)


async def test_an_admin_lists_every_order_and_filters_by_status(client, app, cast):
    a = await place(client, app, cast["alice"], [(cast["p1"], 1)])
    b = await place(client, app, cast["bob"], [(cast["p2"], 1)])
    await pay_by_bank(client, app, cast["bob"], cast["admin"], b)

    r = await client.get(f"{API}/orders", headers=auth(app, cast["admin"]))
    assert [o["id"] for o in r.json()["items"]] == [b["id"], a["id"]]
    r = await client.get(f"{API}/orders?status=paid", headers=auth(app, cast["admin"]))
    assert [o["id"] for o in r.json()["items"]] == [b["id"]]
    r = await client.get(f"{API}/orders?status=pending_payment", headers=auth(app, cast["admin"]))
    assert [o["id"] for o in r.json()["items"]] == [a["id"]]
    r = await client.get(f"{API}/orders?status=shipped", headers=auth(app, cast["admin"]))
    assert r.status_code == 422


async def test_a_buyer_filtering_by_status_still_sees_only_its_own(client, app, cast):
    a = await place(client, app, cast["alice"], [(cast["p1"], 1)])
    await place(client, app, cast["bob"], [(cast["p1"], 1)])
    r = await client.get(f"{API}/orders?status=pending_payment", headers=auth(app, cast["alice"]))
    assert [o["id"] for o in r.json()["items"]] == [a["id"]]


@pytest.mark.parametrize("who", ["owner1", "official"])
async def test_merchants_and_officials_cannot_list_orders(client, app, cast, who):
    await place(client, app, cast["alice"], [(cast["p1"], 1)])
    r = await client.get(f"{API}/orders", headers=auth(app, cast[who]))
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


async def test_anonymous_cannot_read_orders(client, app, cast):
    order = await place(client, app, cast["alice"], [(cast["p1"], 1)])
    assert (await client.get(f"{API}/orders")).status_code == 401
    assert (await client.get(f"{API}/orders/{order['id']}")).status_code == 401


async def test_reading_one_order(client, app, cast):
    order = await place(client, app, cast["alice"], [(cast["p1"], 1)])
    r = await client.get(f"{API}/orders/{order['id']}", headers=auth(app, cast["alice"]))
    assert r.status_code == 200
    assert r.json()["order_no"] == order["order_no"]
    r = await client.get(f"{API}/orders/{order['id']}", headers=auth(app, cast["admin"]))
    assert r.status_code == 200
    # Another buyer's order does not exist for bob.
    r = await client.get(f"{API}/orders/{order['id']}", headers=auth(app, cast["bob"]))
    assert r.status_code == 404
    assert r.json()["code"] == "order_not_found"
    for who in ("owner1", "official"):
        r = await client.get(f"{API}/orders/{order['id']}", headers=auth(app, cast[who]))
        assert r.status_code == 403
    r = await client.get(
        f"{API}/orders/00000000-0000-4000-8000-000000000000", headers=auth(app, cast["alice"])
    )
    assert r.status_code == 404
    r = await client.get(f"{API}/orders/not-a-uuid", headers=auth(app, cast["alice"]))
    assert r.status_code == 422


async def test_orders_are_paged_with_a_cursor(client, app, cast):
    placed = [await place(client, app, cast["alice"], [(cast["p1"], 1)]) for _ in range(5)]
    await place(client, app, cast["bob"], [(cast["p1"], 1)])

    items, pages = await _pages(client, app, cast["alice"], "/orders", 2)
    assert pages == 3
    assert [o["id"] for o in items] == [o["id"] for o in reversed(placed)]

    items, pages = await _pages(client, app, cast["admin"], "/orders", 4, status="pending_payment")
    assert (len(items), pages) == (6, 2)
    assert len({o["id"] for o in items}) == 6


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "garbage!"}, 400, "invalid_cursor"),
        ({"cursor": "WyJvcmRlcnMiXQ"}, 400, "invalid_cursor"),  # ["orders"], no position
        ({"limit": 0}, 422, "validation_error"),
        ({"limit": 101}, 422, "validation_error"),
        ({"limit": 2**64}, 422, "validation_error"),
    ],
)
async def test_bad_list_parameters(client, app, cast, params, status, code):
    r = await client.get(f"{API}/orders", params=params, headers=auth(app, cast["alice"]))
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


async def test_a_cursor_of_another_list_is_refused(client, app, session, cast):
    for _ in range(2):
        order = await place(client, app, cast["alice"], [(cast["p1"], 1)])
        await pay_by_bank(client, app, cast["alice"], cast["admin"], order)
    r = await client.get(
        f"{API}/merchants/{cast['m1'].id}/orders?limit=1", headers=auth(app, cast["owner1"])
    )
    cursor = r.json()["next_cursor"]
    assert cursor
    r = await client.get(
        f"{API}/orders", params={"cursor": cursor}, headers=auth(app, cast["alice"])
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_cursor"


async def test_a_merchant_lists_its_own_parts_to_ship(client, app, session, cast):
    paid = await place(client, app, cast["alice"], [(cast["p1"], 2), (cast["p2"], 1)])
    await pay_by_bank(client, app, cast["alice"], cast["admin"], paid)
    unpaid = await place(client, app, cast["bob"], [(cast["p1"], 1)])
    other_merchant_only = await place(client, app, cast["bob"], [(cast["p2"], 3)])
    await pay_by_bank(client, app, cast["bob"], cast["admin"], other_merchant_only)
    staff = await make_staff(session, cast["m1"])

    for member in (cast["owner1"], staff):
        r = await client.get(
            f"{API}/merchants/{cast['m1'].id}/orders?status=paid", headers=auth(app, member)
        )
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [mo["id"] for mo in items] == [part_of(paid, cast["m1"])["id"]]
        item = items[0]
        assert item["merchant_id"] == str(cast["m1"].id)
        assert item["order_id"] == paid["id"]
        assert item["order_no"] == paid["order_no"]
        assert item["status"] == "paid"
        assert item["subtotal_fen"] == 9000
        assert item["shipping_address"] == {**ADDRESS, "phone": "+86" + ADDRESS["phone"]}
        assert [ln["product_id"] for ln in item["lines"]] == [str(cast["p1"].id)]

    r = await client.get(f"{API}/merchants/{cast['m1'].id}/orders", headers=auth(app, staff))
    assert [mo["order_id"] for mo in r.json()["items"]] == [unpaid["id"], paid["id"]]
    r = await client.get(
        f"{API}/merchants/{cast['m1'].id}/orders?status=pending_payment",
        headers=auth(app, cast["admin"]),
    )
    assert [mo["order_id"] for mo in r.json()["items"]] == [unpaid["id"]]


async def test_only_that_merchants_members_and_admins_list_its_parts(client, app, cast):
    order = await place(client, app, cast["alice"], [(cast["p1"], 1)])
    path = f"{API}/merchants/{cast['m1'].id}/orders"
    for who in ("owner2", "alice", "official"):
        r = await client.get(path, headers=auth(app, cast[who]))
        assert r.status_code == 403, who
        assert r.json()["code"] == "forbidden"
    assert (await client.get(path)).status_code == 401
    r = await client.get(path, headers=auth(app, cast["admin"]))
    assert [mo["order_id"] for mo in r.json()["items"]] == [order["id"]]


async def test_a_merchants_parts_are_paged(client, app, cast):
    placed = [await place(client, app, cast["alice"], [(cast["p1"], 1)]) for _ in range(5)]
    items, pages = await _pages(
        client, app, cast["owner1"], f"/merchants/{cast['m1'].id}/orders", 2
    )
    assert pages == 3
    assert [mo["order_id"] for mo in items] == [o["id"] for o in reversed(placed)]
