"""Stripe down, slow or failing: a clean 503 problem+json, the order still payable, and nothing
lost once Stripe is back (a retry with the same Idempotency-Key resumes the same payment)."""

from __future__ import annotations

import time
import uuid

import httpx
from sqlalchemy import func, select

from app.main import create_app
from app.models import Payment, StripeEvent
from tests.conftest import clean_and_dispose
from tests.fixtures.factories import auth
from tests.fixtures.orders import balance, get_order, place
from tests.fixtures.stripe import (
    closed_port,
    deliver,
    event,
    failing_server,
    gateway,
    open_payment,
    silent_server,
)


async def _payments(session) -> list[Payment]:
    return list(await session.scalars(select(Payment).execution_options(populate_existing=True)))


async def _refused_then_resumed(client, app, shop, localstripe, session, order, key) -> None:
    """After a 503: the order is payable, and with Stripe back the same key pays it."""
    order = await get_order(client, app, shop.buyer, order["id"])
    assert order["status"] == "pending_payment"
    [created] = await _payments(session)  # the payment row is kept for the retry
    assert created.provider_reference is None

    app.state.stripe = gateway(localstripe.url)
    r = await open_payment(client, app, shop.buyer, order["id"], key=key)
    payment = r.json()
    assert r.headers.get("Idempotent-Replayed") is None
    assert payment["payment_id"] == str(created.id)
    assert payment["provider_reference"].startswith("pi_")
    intent = localstripe.intent(payment["provider_reference"])
    assert intent["metadata"]["payment_id"] == str(created.id)
    assert intent["amount"] == order["total_fen"]
    # the same key now replays the answer
    again = await open_payment(client, app, shop.buyer, order["id"], key=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == payment

    paid = localstripe.pay(payment["provider_reference"])
    r = await deliver(client, event("payment_intent.succeeded", paid))
    assert r.status_code == 200
    order = await get_order(client, app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    assert await balance(session, "platform_cash") == order["total_fen"]
    assert len(await _payments(session)) == 1


def _assert_unavailable(r) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "payment_provider_unavailable"
    assert body["status"] == 503
    assert "Traceback" not in r.text
    assert r.headers["Retry-After"] == "5"


async def test_stripe_unreachable(stripe_client, stripe_app, shop, localstripe, session):
    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    key = uuid.uuid4().hex
    r = await open_payment(stripe_client, stripe_app, shop.buyer, order["id"], key=key, expect=None)
    _assert_unavailable(r)
    await _refused_then_resumed(stripe_client, stripe_app, shop, localstripe, session, order, key)


async def test_stripe_unreachable_with_the_settings_pointing_nowhere(
    stripe_settings, shop, localstripe, session
):
    """The app built from settings whose STRIPE_API_BASE refuses connections."""
    settings = stripe_settings.model_copy(
        update={"stripe_api_base": f"http://127.0.0.1:{closed_port()}"}
    )
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            order = await place(client, app, shop.buyer, [(shop.product, 1)], method="stripe")
            key = uuid.uuid4().hex
            r = await open_payment(client, app, shop.buyer, order["id"], key=key, expect=None)
            _assert_unavailable(r)
            await _refused_then_resumed(client, app, shop, localstripe, session, order, key)
    finally:
        await clean_and_dispose(app)


async def test_stripe_slow(stripe_client, stripe_app, shop, localstripe, session):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    key = uuid.uuid4().hex
    async with silent_server() as url:
        stripe_app.state.stripe = gateway(url, timeout_seconds=1)
        started = time.monotonic()
        r = await open_payment(
            stripe_client, stripe_app, shop.buyer, order["id"], key=key, expect=None
        )
        elapsed = time.monotonic() - started
    _assert_unavailable(r)
    # one timeout and one retry (about 2.5 s), never a hung request; slack for a busy machine
    assert elapsed < 6, elapsed
    await _refused_then_resumed(stripe_client, stripe_app, shop, localstripe, session, order, key)


async def test_stripe_failing_with_500(stripe_client, stripe_app, shop, localstripe, session):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    key = uuid.uuid4().hex
    async with failing_server(500) as stripe_down:
        stripe_app.state.stripe = gateway(stripe_down.url)
        r = await open_payment(
            stripe_client, stripe_app, shop.buyer, order["id"], key=key, expect=None
        )
    # documented: Stripe failing (5xx) is 503 like unreachable; 502 is kept for Stripe refusing
    _assert_unavailable(r)
    assert stripe_down.requests
    assert all(line.startswith("POST /v1/payment_intents ") for line in stripe_down.requests)
    await _refused_then_resumed(stripe_client, stripe_app, shop, localstripe, session, order, key)


async def test_a_webhook_while_stripe_is_down_is_not_lost(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    evt = event("payment_intent.succeeded", localstripe.pay(payment["provider_reference"]))

    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    r = await deliver(stripe_client, evt)
    _assert_unavailable(r)  # Stripe retries the delivery later
    assert await session.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert (await get_order(stripe_client, stripe_app, shop.buyer, order["id"]))[
        "status"
    ] == "pending_payment"

    stripe_app.state.stripe = gateway(localstripe.url)
    r = await deliver(stripe_client, evt)
    assert r.json() == {"received": True, "duplicate": False}
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"


async def test_cancelling_while_stripe_is_down_then_the_buyer_pays_anyway(
    stripe_client, stripe_app, shop, localstripe, session
):
    """The intent could not be cancelled at Stripe; when it is paid, the money goes back."""
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    pi = payment["provider_reference"]
    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={}, headers=auth(stripe_app, shop.buyer)
    )
    assert r.status_code == 200, r.text
    assert localstripe.intent(pi)["status"] == "requires_payment_method"

    stripe_app.state.stripe = gateway(localstripe.url)
    r = await deliver(stripe_client, event("payment_intent.succeeded", localstripe.pay(pi)))
    assert r.status_code == 200
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "cancelled"
    assert [(r["kind"], r["status"]) for r in order["refunds"]] == [("late_payment", "succeeded")]
    assert [r["amount"] for r in localstripe.refunds(pi)] == [order["total_fen"]]
    assert await balance(session, "platform_cash") == 0
