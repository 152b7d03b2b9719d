"""Paying by card: a PaymentIntent at localstripe, paid as Stripe.js would, confirmed by a signed
`payment_intent.succeeded` webhook."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from app.core.time import utcnow
from app.jobs.runner import JobContext, run_once
from app.models import Order, Payment, Product
from tests.fixtures.factories import auth, make_user
from tests.fixtures.orders import balance, get_order, idem, ledger_total, place
from tests.fixtures.stripe import deliver, event, open_payment, pay_by_card


async def test_card_payment_opens_an_intent_in_cny(stripe_client, stripe_app, shop, localstripe):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 3)], method="stripe")
    assert order["total_fen"] == 3 * 8800

    r = await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])
    payment = r.json()
    assert payment["provider"] == "stripe"
    assert payment["status"] == "pending"
    assert payment["amount_fen"] == order["total_fen"]
    assert payment["provider_reference"].startswith("pi_")
    assert payment["client_secret"].startswith(payment["provider_reference"] + "_secret_")

    intent = localstripe.intent(payment["provider_reference"])
    assert intent["amount"] == order["total_fen"]
    assert intent["currency"] == "cny"
    assert intent["metadata"]["payment_id"] == payment["payment_id"]
    assert intent["metadata"]["order_no"] == order["order_no"]
    assert intent["status"] == "requires_payment_method"

    # asking again (another key) returns the same open payment and intent
    again = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    assert again["payment_id"] == payment["payment_id"]
    assert again["provider_reference"] == payment["provider_reference"]
    assert again["client_secret"] == payment["client_secret"]


async def test_paid_by_card_then_succeeded_webhook_marks_the_order_paid(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 2)], method="stripe")
    total = order["total_fen"]
    payment, _ = await pay_by_card(stripe_client, stripe_app, localstripe, shop.buyer, order)

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    assert order["paid_at"] is not None
    assert [mo["status"] for mo in order["merchant_orders"]] == ["paid"]
    assert [(p["id"], p["status"]) for p in order["payments"]] == [
        (payment["payment_id"], "succeeded")
    ]
    assert await balance(session, "platform_cash") == total
    assert await balance(session, "merchant_payable", shop.merchant.id) == -total
    assert await ledger_total(session) == 0
    r = await stripe_client.get("/api/v1/ledger/balances", headers=auth(stripe_app, shop.admin))
    assert r.json()["total_fen"] == 0
    sold = await session.scalar(
        select(Product.sold_units)
        .where(Product.id == shop.product.id)
        .execution_options(populate_existing=True)
    )
    assert sold == 2

    # a paid order is not payable again
    r = await open_payment(stripe_client, stripe_app, shop.buyer, order["id"], expect=409)
    assert r.json()["code"] == "order_not_payable"


async def test_only_the_buyer_opens_a_card_payment(stripe_client, stripe_app, shop, session):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    other = await make_user(session)
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/payments", headers={**auth(stripe_app, other), **idem()}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "order_not_found"
    r = await stripe_client.post(f"/api/v1/orders/{order['id']}/payments", headers=idem())
    assert r.status_code == 401
    count = await session.scalar(select(func.count()).select_from(Payment))
    assert count == 0


async def test_without_stripe_configured_card_payments_are_unavailable(client, app, shop, session):
    order = await place(client, app, shop.buyer, [(shop.product, 1)], method="stripe")
    r = await open_payment(client, app, shop.buyer, order["id"], expect=503)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "payment_provider_unavailable"
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0
    order = await get_order(client, app, shop.buyer, order["id"])
    assert order["status"] == "pending_payment"

    # webhooks cannot be verified without a secret either
    r = await deliver(client, event("payment_intent.succeeded", {"id": "pi_x"}))
    assert r.status_code == 503
    assert r.json()["code"] == "payment_provider_unavailable"

    # bank transfers still work
    bank = await place(client, app, shop.buyer, [(shop.product, 1)])
    r = await open_payment(client, app, shop.buyer, bank["id"])
    assert r.json()["provider"] == "bank_transfer"
    assert r.json()["reference"]


async def test_an_expired_card_order_has_its_intent_cancelled_by_the_jobs(
    stripe_client, stripe_app, stripe_settings, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    await session.execute(
        update(Order)
        .where(Order.id == uuid.UUID(order["id"]))
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    await session.commit()

    ctx = JobContext(
        db=stripe_app.state.db, settings=stripe_settings, gateway=stripe_app.state.stripe
    )
    assert (await run_once(ctx))["payment_timeouts"] == 1
    assert localstripe.intent(payment["provider_reference"])["status"] == "canceled"
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_timeout")
    assert [p["status"] for p in order["payments"]] == ["cancelled"]
