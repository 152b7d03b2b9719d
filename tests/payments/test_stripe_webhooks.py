"""Stripe webhooks: signed, applied once, in any order, from Stripe's current state."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import func, select

from app.integrations.stripe import sign_payload
from app.models import Payment, Product, StripeEvent
from tests.fixtures.factories import auth
from tests.fixtures.orders import balance, get_order, idem, ledger_total, place
from tests.fixtures.stripe import (
    WEBHOOK_SECRET,
    answer_lost_server,
    deliver,
    event,
    gateway,
    open_payment,
    pay_by_card,
)

DECLINED = "4000000000000341"


async def _events(session) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(StripeEvent.id, StripeEvent.type).execution_options(populate_existing=True)
    )
    return [(i, t) for i, t in rows]


async def _sold_units(session, product) -> int:
    return int(
        await session.scalar(
            select(Product.sold_units)
            .where(Product.id == product.id)
            .execution_options(populate_existing=True)
        )
    )


async def test_the_same_event_twice_takes_effect_once(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 2)], method="stripe")
    _, evt = await pay_by_card(stripe_client, stripe_app, localstripe, shop.buyer, order)

    r = await deliver(stripe_client, evt)
    assert r.status_code == 200
    assert r.json() == {"received": True, "duplicate": True}

    assert await balance(session, "platform_cash") == order["total_fen"]
    assert await balance(session, "merchant_payable", shop.merchant.id) == -order["total_fen"]
    assert await ledger_total(session) == 0
    assert await _sold_units(session, shop.product) == 2
    assert await _events(session) == [(evt["id"], "payment_intent.succeeded")]


async def test_a_success_delivered_again_under_a_new_event_id_changes_nothing(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    _, evt = await pay_by_card(stripe_client, stripe_app, localstripe, shop.buyer, order)
    r = await deliver(
        stripe_client,
        event("payment_intent.succeeded", localstripe.intent(evt["data"]["object"]["id"])),
    )
    assert r.json() == {"received": True, "duplicate": False}
    assert await balance(session, "platform_cash") == order["total_fen"]
    assert await _sold_units(session, shop.product) == 1


async def test_a_stale_payment_failed_after_success_leaves_the_order_paid(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    pi = payment["provider_reference"]
    # a first attempt was declined (the event's snapshot), then the buyer paid; localstripe
    # cannot retry a declined intent, so the failed snapshot is built from the paid one
    intent = localstripe.pay(pi)
    assert intent["status"] == "succeeded"
    declined = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
    }
    r = await deliver(stripe_client, event("payment_intent.succeeded", intent))
    assert r.status_code == 200
    # ...and the failure of the first attempt arrives last
    r = await deliver(stripe_client, event("payment_intent.payment_failed", declined))
    assert r.status_code == 200
    assert r.json() == {"received": True, "duplicate": False}

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    assert [p["status"] for p in order["payments"]] == ["succeeded"]
    assert await balance(session, "platform_cash") == order["total_fen"]


async def test_a_declined_card_fails_the_payment_and_the_order_stays_payable(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    first = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    declined = localstripe.pay(first["provider_reference"], card=DECLINED)
    assert declined["status"] == "requires_payment_method"
    assert declined["last_payment_error"]["code"] == "card_declined"

    r = await deliver(stripe_client, event("payment_intent.payment_failed", declined))
    assert r.status_code == 200

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "pending_payment"
    assert [(p["id"], p["status"]) for p in order["payments"]] == [(first["payment_id"], "failed")]
    failed = await session.get(Payment, uuid.UUID(first["payment_id"]), populate_existing=True)
    assert failed is not None
    assert failed.failure_message == "Your card was declined."
    assert await ledger_total(session) == 0
    assert await balance(session, "platform_cash") == 0

    # the buyer tries again: a new payment with a new intent, and this one succeeds
    second = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    assert second["payment_id"] != first["payment_id"]
    assert second["provider_reference"] != first["provider_reference"]
    assert second["status"] == "pending"
    intent = localstripe.pay(second["provider_reference"])
    r = await deliver(stripe_client, event("payment_intent.succeeded", intent))
    assert r.status_code == 200
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    assert await balance(session, "platform_cash") == order["total_fen"]


def _signed(evt: dict, secret: str, timestamp: int) -> tuple[str, str]:
    payload = json.dumps(evt)
    return payload, sign_payload(payload, secret, timestamp)


async def test_bad_signatures_are_refused_and_nothing_is_stored(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    evt = event("payment_intent.succeeded", localstripe.pay(payment["provider_reference"]))
    now = int(time.time())

    forged = await deliver(stripe_client, evt, secret="whsec_someone_else")
    missing = await deliver(stripe_client, evt, signed=False)
    stale = await deliver(stripe_client, evt, timestamp=now - 301)
    garbage = await deliver(stripe_client, evt, signature="t=1,v1=00")
    # a signature over another body (the payload was tampered with after signing)
    _, signature = _signed({**evt, "type": "account.updated"}, WEBHOOK_SECRET, now)
    tampered = await deliver(stripe_client, evt, signature=signature)
    for r in (forged, missing, stale, garbage, tampered):
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid_signature"

    assert await _events(session) == []
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "pending_payment"
    assert await balance(session, "platform_cash") == 0

    # the genuine delivery still works afterwards
    r = await deliver(stripe_client, evt, timestamp=now - 60)
    assert r.status_code == 200
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"


async def test_a_signed_body_that_is_not_an_event_is_refused(stripe_client, session):
    payload = json.dumps({"hello": "world"})
    r = await stripe_client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET, int(time.time()))},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_signature"
    assert await _events(session) == []


async def test_an_unknown_event_type_is_acknowledged_and_stored(stripe_client, session):
    evt = event("customer.created", {"id": "cus_123", "object": "customer"})
    r = await deliver(stripe_client, evt)
    assert r.status_code == 200
    assert r.json() == {"received": True, "duplicate": False}
    assert await _events(session) == [(evt["id"], "customer.created")]
    stored = await session.get(StripeEvent, evt["id"])
    assert stored is not None
    assert stored.payload["data"]["object"]["id"] == "cus_123"
    assert stored.processed_at is not None
    r = await deliver(stripe_client, evt)
    assert r.json() == {"received": True, "duplicate": True}


async def test_an_intent_we_never_made_is_acknowledged(stripe_client, localstripe, session):
    intent = localstripe._request(
        "POST", "/v1/payment_intents", {"amount": "100", "currency": "cny"}
    )
    r = await deliver(stripe_client, event("payment_intent.succeeded", intent))
    assert r.status_code == 200
    assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_payment_after_cancellation_is_refunded_in_full(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 2)], method="stripe")
    total = order["total_fen"]
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    pi = payment["provider_reference"]
    # the buyer pays in one tab and cancels in another before the webhook arrives
    intent = localstripe.pay(pi)
    assert intent["status"] == "succeeded"
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={}, headers=auth(stripe_app, shop.buyer)
    )
    assert r.status_code == 200, r.text
    assert await _sold_units(session, shop.product) == 0

    r = await deliver(stripe_client, event("payment_intent.succeeded", intent))
    assert r.status_code == 200

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "cancelled"
    assert [p["status"] for p in order["payments"]] == ["succeeded"]
    [refund] = order["refunds"]
    assert refund["kind"] == "late_payment"
    assert refund["status"] == "succeeded"
    assert refund["amount_fen"] == total
    [provider_refund] = localstripe.refunds(pi)
    assert provider_refund["amount"] == total
    assert provider_refund["metadata"]["refund_id"] == refund["id"]
    assert provider_refund["status"] == "succeeded"

    r = await stripe_client.get("/api/v1/ledger/balances", headers=auth(stripe_app, shop.admin))
    assert r.json()["total_fen"] == 0
    assert all(a["balance_fen"] == 0 for a in r.json()["accounts"]), r.json()
    assert await _sold_units(session, shop.product) == 0
    stock = await session.scalar(
        select(Product.stock)
        .where(Product.id == shop.product.id)
        .execution_options(populate_existing=True)
    )
    assert stock == 50

    # the same event again refunds nothing more
    r = await deliver(stripe_client, event("payment_intent.succeeded", localstripe.intent(pi)))
    assert r.status_code == 200
    assert len(localstripe.refunds(pi)) == 1
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert len(order["refunds"]) == 1


async def test_a_cancelled_unpaid_card_order_cancels_its_intent(
    stripe_client, stripe_app, shop, localstripe
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    payment = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={}, headers=auth(stripe_app, shop.buyer)
    )
    assert r.status_code == 200, r.text
    assert localstripe.intent(payment["provider_reference"])["status"] == "canceled"
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert [p["status"] for p in order["payments"]] == ["cancelled"]
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/payments", headers={**auth(stripe_app, shop.buyer), **idem()}
    )
    assert r.status_code == 409


@pytest.mark.parametrize("event_type", ["charge.refunded", "refund.updated"])
async def test_refund_events_settle_a_refund_whose_answer_was_lost(
    stripe_client, stripe_app, shop, localstripe, session, event_type
):
    """Approval sent the refund to Stripe, which made it, but the answer never came back (the
    request timed out): the refund is left `approved` (the provider has not confirmed it to us).
    Stripe's `charge.refunded` (or `refund.updated`) then settles it."""
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 2)], method="stripe")
    payment, _ = await pay_by_card(stripe_client, stripe_app, localstripe, shop.buyer, order)
    pi = payment["provider_reference"]
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    line = order["merchant_orders"][0]["lines"][0]
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "少发了"},
        headers={**auth(stripe_app, shop.buyer), **idem()},
    )
    refund = r.json()

    async with answer_lost_server(localstripe.url) as lossy:
        stripe_app.state.stripe = gateway(lossy, timeout_seconds=0.5)
        r = await stripe_client.post(
            f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
        )
    assert r.status_code == 503, r.text
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["refunds"][0]["status"] == "approved"
    [made] = localstripe.refunds(pi)
    assert made["metadata"]["refund_id"] == refund["id"]
    assert await balance(session, "refunds_in_transit") == -8800

    stripe_app.state.stripe = gateway(localstripe.url)  # Stripe answers again
    charge_id = localstripe.intent(pi)["latest_charge"]
    charge_id = charge_id["id"] if isinstance(charge_id, dict) else charge_id
    charge = localstripe._request("GET", f"/v1/charges/{charge_id}")
    assert charge["payment_intent"] == pi
    charge.pop("refunds", None)  # Stripe's charges no longer embed their refunds
    obj = charge if event_type == "charge.refunded" else made
    r = await deliver(stripe_client, event(event_type, obj))
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "duplicate": False}

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["refunds"][0]["status"] == "succeeded"
    assert await balance(session, "refunds_in_transit") == 0
    assert await balance(session, "platform_cash") == order["total_fen"] - 8800
    assert await ledger_total(session) == 0
    assert len(localstripe.refunds(pi)) == 1
