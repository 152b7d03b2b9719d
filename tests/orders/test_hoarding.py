"""Hoarding stock with unpaid orders, from the hoarder's side and the normal buyer's.

`UNPAID_ORDERS_PER_BUYER` (409 too_many_unpaid_orders), `CHECKOUTS_PER_HOUR_PER_BUYER` and
`SIGNUPS_PER_HOUR_PER_ADDRESS` (429 rate_limited with Retry-After). The suite's settings keep them
high; each test lowers the one it is about on the app's settings.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from fastapi import FastAPI

from tests.fixtures.accounts import client_at, sign_in
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import idem, order_body, stock_of

API = "/api/v1"
HOUR = 3600
# Retry-After counts from the window's first attempt; a loaded CI machine may take a while to
# get from there to the refusal.
SLOW_MACHINE = 120


async def _checkout(client: httpx.AsyncClient, headers: dict[str, str], body: object):
    return await client.post(f"{API}/orders", json=body, headers={**headers, **idem()})


async def test_concurrent_checkouts_cannot_exceed_the_unpaid_limit(client, app, session):
    app.state.settings.unpaid_orders_per_buyer = 3
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=50)
    hoarder, neighbour = await make_user(session), await make_user(session)
    body = order_body([(product, 1)])

    answers = await asyncio.gather(
        *(_checkout(client, auth(app, hoarder), body) for _ in range(10))
    )
    assert Counter(r.status_code for r in answers) == Counter({201: 3, 409: 7})
    refused = next(r for r in answers if r.status_code == 409)
    assert refused.json()["code"] == "too_many_unpaid_orders"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await stock_of(session, product) == 47  # refused checkouts hold nothing

    # Another buyer is not affected; the hoarder may order again once one order is cancelled.
    assert (await _checkout(client, auth(app, neighbour), body)).status_code == 201
    assert (await _checkout(client, auth(app, hoarder), body)).status_code == 409
    first = next(r for r in answers if r.status_code == 201).json()
    cancel = await client.post(f"{API}/orders/{first['id']}/cancel", headers=auth(app, hoarder))
    assert cancel.status_code == 200, cancel.text
    assert (await _checkout(client, auth(app, hoarder), body)).status_code == 201


async def test_checkouts_per_hour(client, app, session):
    app.state.settings.checkouts_per_hour_per_buyer = 3
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=50)
    busy, other = await make_user(session), await make_user(session)
    body = order_body([(product, 1)])
    for _ in range(3):
        assert (await _checkout(client, auth(app, busy), body)).status_code == 201
    r = await _checkout(client, auth(app, busy), body)
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert HOUR - SLOW_MACHINE <= int(r.headers["retry-after"]) <= HOUR
    assert await stock_of(session, product) == 47
    assert (await _checkout(client, auth(app, other), body)).status_code == 201


async def test_no_limit_when_set_to_zero(client, app, session):
    app.state.settings.unpaid_orders_per_buyer = 0
    app.state.settings.checkouts_per_hour_per_buyer = 0
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=50)
    buyer = await make_user(session)
    for _ in range(7):
        r = await _checkout(client, auth(app, buyer), order_body([(product, 1)]))
        assert r.status_code == 201, r.text


def _signup(email: str) -> dict[str, str]:
    return {
        "email": email,
        "password": "a long enough password",
        "display_name": "囤货",
        "region_code": "330127",
    }


async def _sign_up_and_sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str] | None:
    r = await client.post(f"{API}/auth/register", json=_signup(email))
    if r.status_code == 429:
        assert r.json()["code"] == "rate_limited"
        assert HOUR - SLOW_MACHINE <= int(r.headers["retry-after"]) <= HOUR
        return None
    assert r.status_code == 201, r.text
    token = await sign_in(client, email, "a long enough password")
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_a_hoarding_script_is_stopped_and_a_normal_buyer_is_not(app: FastAPI, session):
    """One address signs up fresh accounts and has each hold as many orders as it can of the
    one scarce product; a buyer elsewhere still finds it in stock."""
    app.state.settings.signups_per_hour_per_address = 3
    app.state.settings.unpaid_orders_per_buyer = 2
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=40)
    body = order_body([(product, 5)])

    async with client_at(app, "198.51.100.66") as script:
        accounts = [await _sign_up_and_sign_in(script, f"bot{i}@example.cn") for i in range(6)]
        created = [headers for headers in accounts if headers is not None]
        assert len(created) == 3
        for headers in created:
            codes = [(await _checkout(script, headers, body)).status_code for _ in range(4)]
            assert codes == [201, 201, 409, 409]
    assert await stock_of(session, product) == 10

    async with client_at(app, "203.0.113.50") as shopper:
        headers = await _sign_up_and_sign_in(shopper, "li.na@example.cn")
        assert headers is not None
        r = await _checkout(shopper, headers, order_body([(product, 10)]))
        assert r.status_code == 201, r.text
