"""`Idempotency-Key` on the endpoints that move stock or money: required, replayed, refused when
reused for something else, owned by its caller, freed by a failure, and safe under a race."""

from __future__ import annotations

import asyncio

import pytest

from app.core.db import Database
from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    API,
    counts,
    idem,
    order_body,
    pay_by_bank,
    place,
    stock_of,
)


async def _paid_order(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=1200, stock=10)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    order = await place(client, app, buyer, [(product, 2)])
    await pay_by_bank(client, app, buyer, admin, order)
    return buyer, order, product


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_checkout_without_a_key_is_400(client, app, session, header):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    headers = auth(app, buyer)
    if header is not None:
        headers["Idempotency-Key"] = header
    r = await client.post(f"{API}/orders", json=order_body([(product, 1)]), headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "idempotency_key_required"
    assert (await counts(session))["orders"] == 0
    assert await stock_of(session, product) == 10


async def test_a_key_longer_than_255_characters_is_refused(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    r = await client.post(
        f"{API}/orders",
        json=order_body([(product, 1)]),
        headers={**auth(app, buyer), "Idempotency-Key": "k" * 256},
    )
    assert r.status_code == 422
    assert (await counts(session))["orders"] == 0


async def test_opening_a_payment_without_a_key_is_400(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    order = await place(client, app, buyer, [(product, 1)])
    r = await client.post(f"{API}/orders/{order['id']}/payments", headers=auth(app, buyer))
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_required"
    assert (await counts(session))["payments"] == 0


async def test_asking_for_a_refund_without_a_key_is_400(client, app, session):
    buyer, order, _ = await _paid_order(client, app, session)
    line = order["merchant_orders"][0]["lines"][0]
    r = await client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "坏了"},
        headers=auth(app, buyer),
    )
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_required"
    assert (await counts(session))["refunds"] == 0


async def test_the_same_key_and_body_replays_the_first_checkout(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    headers = {**auth(app, buyer), "Idempotency-Key": "checkout-1"}
    body = order_body([(product, 3)])

    first = await client.post(f"{API}/orders", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # Key order in the JSON does not matter: the parsed request is compared.
    reordered = {key: body[key] for key in reversed(list(body))}
    for _ in range(2):
        again = await client.post(f"{API}/orders", json=reordered, headers=headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    assert (await counts(session))["orders"] == 1
    assert await stock_of(session, product) == 7


async def test_the_same_key_with_another_body_is_409(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    headers = {**auth(app, buyer), "Idempotency-Key": "checkout-2"}

    r = await client.post(f"{API}/orders", json=order_body([(product, 1)]), headers=headers)
    assert r.status_code == 201
    r = await client.post(f"{API}/orders", json=order_body([(product, 2)]), headers=headers)
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused"
    # Nor may the key be reused on another endpoint.
    order_id = (await client.get(f"{API}/orders", headers=auth(app, buyer))).json()["items"][0][
        "id"
    ]
    r = await client.post(f"{API}/orders/{order_id}/payments", headers=headers)
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused"
    assert (await counts(session))["orders"] == 1
    assert (await counts(session))["payments"] == 0
    assert await stock_of(session, product) == 9


async def test_keys_belong_to_their_caller(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    alice, bob = await make_user(session), await make_user(session)
    body = order_body([(product, 1)])

    ra = await client.post(
        f"{API}/orders", json=body, headers={**auth(app, alice), "Idempotency-Key": "same"}
    )
    rb = await client.post(
        f"{API}/orders", json=body, headers={**auth(app, bob), "Idempotency-Key": "same"}
    )
    assert (ra.status_code, rb.status_code) == (201, 201)
    assert "idempotent-replayed" not in rb.headers
    assert ra.json()["id"] != rb.json()["id"]
    assert rb.json()["buyer_id"] == str(bob.id)
    assert (await counts(session))["orders"] == 2
    assert await stock_of(session, product) == 8


async def test_a_failed_request_does_not_burn_its_key(client, app, session):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, stock=1)
    buyer = await make_user(session)
    headers = {**auth(app, buyer), "Idempotency-Key": "after-restock"}
    body = order_body([(product, 3)])

    r = await client.post(f"{API}/orders", json=body, headers=headers)
    assert r.status_code == 409
    assert r.json()["code"] == "insufficient_stock"
    r = await client.post(
        f"{API}/products/{product.id}/stock-adjustments",
        json={"delta": 5, "reason": "新到一批"},
        headers=auth(app, owner),
    )
    assert r.status_code == 201, r.text

    r = await client.post(f"{API}/orders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert await stock_of(session, product) == 3
    r = await client.post(f"{API}/orders", json=body, headers=headers)
    assert r.headers["idempotent-replayed"] == "true"
    assert (await counts(session))["orders"] == 1


async def test_opening_a_payment_twice_with_one_key_replays_it(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    order = await place(client, app, buyer, [(product, 1)])
    headers = {**auth(app, buyer), **idem()}
    first = await client.post(f"{API}/orders/{order['id']}/payments", headers=headers)
    again = await client.post(f"{API}/orders/{order['id']}/payments", headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (await counts(session))["payments"] == 1


async def test_a_refund_request_replayed_is_one_refund(client, app, session):
    buyer, order, _ = await _paid_order(client, app, session)
    line = order["merchant_orders"][0]["lines"][0]
    headers = {**auth(app, buyer), **idem()}
    body = {"lines": [{"order_line_id": line["id"], "quantity": 2}], "reason": "坏了"}
    first = await client.post(f"{API}/orders/{order['id']}/refunds", json=body, headers=headers)
    again = await client.post(f"{API}/orders/{order['id']}/refunds", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert (await counts(session))["refunds"] == 1


async def test_two_identical_checkouts_at_once_through_two_apps(app_with, session, settings):
    """Two API processes get the same request at the same moment: one order, stock taken once.
    On PostgreSQL the other answer is the replay or `409 idempotency_request_in_progress`; SQLite
    serialises the two, so the other is always the replay."""
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    app_a, client_a = await app_with()
    app_b, client_b = await app_with()
    body = order_body([(product, 2)])
    key = {"Idempotency-Key": "the-same-moment"}

    ra, rb = await asyncio.gather(
        client_a.post(f"{API}/orders", json=body, headers={**auth(app_a, buyer), **key}),
        client_b.post(f"{API}/orders", json=body, headers={**auth(app_b, buyer), **key}),
    )
    outcomes = sorted(
        (
            r.status_code,
            r.headers.get("idempotent-replayed") == "true",
            r.json().get("code", "created"),
        )
        for r in (ra, rb)
    )
    created = (201, False, "created")
    replayed = (201, True, "created")
    in_progress = (409, False, "idempotency_request_in_progress")
    if settings.is_sqlite:
        assert outcomes == [created, replayed]
    else:
        assert outcomes in ([created, replayed], [created, in_progress])
    winners = [r for r in (ra, rb) if r.status_code == 201]
    assert len({r.json()["id"] for r in winners}) == 1
    assert (await counts(session))["orders"] == 1
    assert await stock_of(session, product) == 8


async def test_a_checkout_needs_one_pooled_connection_at_a_time(app_with, settings, session):
    """Under a burst every request may hold a pooled connection; one that then waited for a
    second (to claim its key) would starve the pool. With a pool of one connection, checkout,
    its replay and a refused checkout that frees its key all still answer."""
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=3)
    buyer = await make_user(session)
    tiny_app, tiny_client = await app_with()
    await tiny_app.state.db.dispose()
    tiny_app.state.db = Database(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=3)
    headers = {**auth(tiny_app, buyer), "Idempotency-Key": "one-connection"}

    r = await tiny_client.post(f"{API}/orders", json=order_body([(product, 2)]), headers=headers)
    assert r.status_code == 201, r.text
    r = await tiny_client.post(f"{API}/orders", json=order_body([(product, 2)]), headers=headers)
    assert (r.status_code, r.headers.get("idempotent-replayed")) == (201, "true")
    r = await tiny_client.post(
        f"{API}/orders",
        json=order_body([(product, 2)]),
        headers={**auth(tiny_app, buyer), **idem()},
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "insufficient_stock"
    assert (await counts(session))["orders"] == 1
    assert await stock_of(session, product) == 1
