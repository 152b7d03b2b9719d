"""Refunds of card payments go back through Stripe (localstripe), also when Stripe was down."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from app.core.time import utcnow
from app.jobs.runner import JobContext, run_once
from app.models import OrderLine, Refund
from tests.fixtures.factories import auth
from tests.fixtures.orders import balance, get_order, idem, ledger_total, place, stock_of
from tests.fixtures.stripe import closed_port, failing_server, gateway, pay_by_card


async def _paid_card_order(client, app, shop, localstripe, quantity: int = 3):
    order = await place(client, app, shop.buyer, [(shop.product, quantity)], method="stripe")
    payment, _ = await pay_by_card(client, app, localstripe, shop.buyer, order)
    order = await get_order(client, app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    return order, payment["provider_reference"]


async def _request_refund(client, app, shop, order, quantity: int) -> dict:
    line = order["merchant_orders"][0]["lines"][0]
    r = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": quantity}], "reason": "碰伤了"},
        headers={**auth(app, shop.buyer), **idem()},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_partial_refund_goes_back_through_stripe(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    total = order["total_fen"]
    refund = await _request_refund(stripe_client, stripe_app, shop, order, 1)
    assert refund["status"] == "requested"
    assert refund["amount_fen"] == 8800
    assert localstripe.refunds(pi) == []

    r = await stripe_client.post(
        f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert r.json()["succeeded_at"] is not None

    [at_stripe] = localstripe.refunds(pi)
    assert at_stripe["amount"] == 8800
    assert at_stripe["payment_intent"] == pi
    assert at_stripe["metadata"] == {"refund_id": refund["id"]}
    assert at_stripe["status"] == "succeeded"

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "paid"
    assert order["refunded_fen"] == 8800
    assert order["merchant_orders"][0]["lines"][0]["refunded_quantity"] == 1
    assert await stock_of(session, shop.product) == 50 - 3 + 1  # not shipped: back in stock
    assert await balance(session, "platform_cash") == total - 8800
    assert await balance(session, "refunds_in_transit") == 0
    assert await balance(session, "merchant_payable", shop.merchant.id) == -(total - 8800)
    assert await ledger_total(session) == 0

    # approving again changes nothing and refunds nothing twice
    r = await stripe_client.post(
        f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert len(localstripe.refunds(pi)) == 1


async def test_cancelling_a_paid_card_order_refunds_it_in_full(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe, 2)
    r = await stripe_client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={}, headers=auth(stripe_app, shop.buyer)
    )
    assert r.status_code == 200, r.text

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["status"] == "cancelled"
    [refund] = order["refunds"]
    assert (refund["kind"], refund["status"]) == ("cancellation", "succeeded")
    assert refund["amount_fen"] == order["total_fen"]
    assert [(r["amount"], r["metadata"]["refund_id"]) for r in localstripe.refunds(pi)] == [
        (order["total_fen"], refund["id"])
    ]
    assert await stock_of(session, shop.product) == 50
    assert await balance(session, "platform_cash") == 0
    assert await balance(session, "refunds_in_transit") == 0
    assert await balance(session, "merchant_payable", shop.merchant.id) == 0


async def test_a_refund_approved_while_stripe_is_down_is_sent_by_the_jobs(
    stripe_client, stripe_app, stripe_settings, shop, localstripe, session
):
    order, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    total = order["total_fen"]
    refund = await _request_refund(stripe_client, stripe_app, shop, order, 2)

    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    r = await stripe_client.post(
        f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "payment_provider_unavailable"
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    [shown] = order["refunds"]
    assert shown["status"] == "approved"  # decided; the money is not on its way yet
    assert await balance(session, "refunds_in_transit") == -2 * 8800
    assert await balance(session, "platform_cash") == total
    assert await ledger_total(session) == 0
    assert localstripe.refunds(pi) == []

    ctx = JobContext(
        db=stripe_app.state.db, settings=stripe_settings, gateway=gateway(localstripe.url)
    )
    # too recent: the jobs leave it to the request that may still be retrying
    assert (await run_once(ctx))["refund_retries"] == 0
    assert localstripe.refunds(pi) == []

    await session.execute(
        update(Refund)
        .where(Refund.id == uuid.UUID(refund["id"]))
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()
    # still down for the jobs: the refund waits for the next run
    down = JobContext(
        db=stripe_app.state.db,
        settings=stripe_settings,
        gateway=gateway(f"http://127.0.0.1:{closed_port()}"),
    )
    assert (await run_once(down))["refund_retries"] == 0
    # the attempt was counted and the next one put off (backoff); make it due again
    assert (await run_once(ctx))["refund_retries"] == 0
    await session.execute(
        update(Refund)
        .where(Refund.id == uuid.UUID(refund["id"]))
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()

    assert (await run_once(ctx))["refund_retries"] == 1
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["refunds"][0]["status"] == "succeeded"
    assert [r["amount"] for r in localstripe.refunds(pi)] == [2 * 8800]
    assert await balance(session, "refunds_in_transit") == 0
    assert await balance(session, "platform_cash") == total - 2 * 8800

    # running the jobs again sends nothing twice
    assert (await run_once(ctx))["refund_retries"] == 0
    assert len(localstripe.refunds(pi)) == 1


async def test_approving_again_once_stripe_is_back_sends_the_refund(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    refund = await _request_refund(stripe_client, stripe_app, shop, order, 1)
    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    r = await stripe_client.post(
        f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 503

    stripe_app.state.stripe = gateway(localstripe.url)
    r = await stripe_client.post(
        f"/api/v1/refunds/{refund['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert [r["amount"] for r in localstripe.refunds(pi)] == [8800]
    # approved once: the stock came back once
    assert await stock_of(session, shop.product) == 50 - 3 + 1


async def test_a_refund_stripe_refuses_fails_and_stays_owed_to_the_buyer(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, _ = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    total = order["total_fen"]
    refund = await _request_refund(stripe_client, stripe_app, shop, order, 1)
    async with failing_server(400) as refusing:
        stripe_app.state.stripe = gateway(refusing.url)
        r = await stripe_client.post(
            f"/api/v1/refunds/{refund['id']}/approve",
            json={},
            headers=auth(stripe_app, shop.owner),
        )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert r.json()["failure_message"]
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["refunded_fen"] == 8800  # the approval stands
    line = await session.scalar(
        select(OrderLine)
        .where(OrderLine.order_id == uuid.UUID(order["id"]))
        .execution_options(populate_existing=True)
    )
    assert line is not None
    assert line.refunded_quantity == 1
    assert await balance(session, "platform_cash") == total
    assert await balance(session, "refunds_in_transit") == -8800
    assert await balance(session, "merchant_payable", shop.merchant.id) == -(total - 8800)
    assert await ledger_total(session) == 0
