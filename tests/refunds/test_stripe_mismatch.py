"""Stripe's word is checked: a succeeded intent marks a payment paid only when its amount and
currency are the payment's, and an intent found by its metadata binds only to a payment with no
other intent. A mismatch is recorded on the stored event, audited, logged at error level, and
not applied."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from app.models import Payment, StripeEvent
from tests.fixtures.factories import auth
from tests.fixtures.orders import API, audit_actions, balance, get_order, place
from tests.fixtures.stripe import closed_port, deliver, event, gateway, open_payment


def _intent(localstripe, amount: int, payment_id: uuid.UUID, currency: str = "cny") -> str:
    """An intent made at Stripe by someone else than our checkout, naming our payment."""
    intent = localstripe._request(
        "POST",
        "/v1/payment_intents",
        {"amount": str(amount), "currency": currency, "metadata[payment_id]": str(payment_id)},
    )
    return str(intent["id"])


async def _payment(session, order_id: str) -> Payment:
    payment = await session.scalar(
        select(Payment)
        .where(Payment.order_id == uuid.UUID(order_id))
        .execution_options(populate_existing=True)
    )
    assert payment is not None
    return payment


async def _rejected(session, event_id: str) -> str | None:
    stored = await session.get(StripeEvent, event_id, populate_existing=True)
    assert stored is not None
    return stored.rejected_reason


async def _unsaved_payment(client, app, shop, session) -> tuple[dict, Payment]:
    """A card order whose payment row exists but whose intent id we never saved."""
    order = await place(client, app, shop.buyer, [(shop.product, 2)], method="stripe")
    app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    await open_payment(client, app, shop.buyer, order["id"], expect=503)
    payment = await _payment(session, order["id"])
    assert payment.provider_reference is None
    return order, payment


async def test_an_intent_for_another_amount_does_not_pay(
    stripe_client, stripe_app, shop, localstripe, session, caplog
):
    order, payment = await _unsaved_payment(stripe_client, stripe_app, shop, session)
    stripe_app.state.stripe = gateway(localstripe.url)
    cheap = localstripe.pay(_intent(localstripe, 1, payment.id))
    evt = event("payment_intent.succeeded", cheap)
    with caplog.at_level(logging.ERROR, logger="shanhai.webhooks"):
        r = await deliver(stripe_client, evt)
    assert r.status_code == 200, r.text

    assert (await get_order(stripe_client, stripe_app, shop.buyer, order["id"]))["status"] == (
        "pending_payment"
    )
    stored = await _payment(session, order["id"])
    assert (stored.status, stored.provider_reference) == ("pending", None)
    assert "1 CNY" in (await _rejected(session, evt["id"]) or "")
    [audited] = await audit_actions(
        stripe_client, stripe_app, shop.admin, "payment.provider_mismatch", str(payment.id)
    )
    assert audited["detail"]["intent"] == cheap["id"]
    assert any(rec.levelno == logging.ERROR for rec in caplog.records)
    assert await balance(session, "platform_cash") == 0

    # the same intent in the right amount is the crash-recovery path, and pays
    right = localstripe.pay(_intent(localstripe, order["total_fen"], payment.id))
    evt = event("payment_intent.succeeded", right)
    assert (await deliver(stripe_client, evt)).status_code == 200
    assert await _rejected(session, evt["id"]) is None
    assert (await get_order(stripe_client, stripe_app, shop.buyer, order["id"]))["status"] == "paid"


async def test_an_intent_in_another_currency_does_not_pay(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, payment = await _unsaved_payment(stripe_client, stripe_app, shop, session)
    stripe_app.state.stripe = gateway(localstripe.url)
    usd = localstripe.pay(_intent(localstripe, order["total_fen"], payment.id, "usd"))
    evt = event("payment_intent.succeeded", usd)
    assert (await deliver(stripe_client, evt)).status_code == 200
    assert "USD" in (await _rejected(session, evt["id"]) or "")
    assert (await _payment(session, order["id"])).status == "pending"


async def test_an_intent_naming_a_payment_of_another_intent_does_not_pay(
    stripe_client, stripe_app, shop, localstripe, session
):
    order = await place(stripe_client, stripe_app, shop.buyer, [(shop.product, 1)], method="stripe")
    ours = (await open_payment(stripe_client, stripe_app, shop.buyer, order["id"])).json()
    payment = await _payment(session, order["id"])
    foreign = localstripe.pay(_intent(localstripe, order["total_fen"], payment.id))
    evt = event("payment_intent.succeeded", foreign)
    assert (await deliver(stripe_client, evt)).status_code == 200

    stored = await _payment(session, order["id"])
    assert (stored.status, stored.provider_reference) == ("pending", ours["provider_reference"])
    assert ours["provider_reference"] in (await _rejected(session, evt["id"]) or "")
    r = await stripe_client.get(f"{API}/orders/{order['id']}", headers=auth(stripe_app, shop.buyer))
    assert r.json()["status"] == "pending_payment"
    assert await balance(session, "platform_cash") == 0
