"""A refund Stripe refuses stays owed to the buyer: never back to the merchant in the ledger,
listed for admins, retried (by an admin or by the jobs with backoff) or paid by bank."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update

from app.core.time import utcnow
from app.jobs.runner import JobContext, run_once
from app.models import Refund
from tests.fixtures.factories import auth
from tests.fixtures.orders import API, balance, get_order, idem, place
from tests.fixtures.stripe import closed_port, failing_server, gateway, pay_by_card


async def _paid_card_order(client, app, shop, localstripe, quantity: int = 3):
    order = await place(client, app, shop.buyer, [(shop.product, quantity)], method="stripe")
    payment, _ = await pay_by_card(client, app, localstripe, shop.buyer, order)
    return await get_order(client, app, shop.buyer, order["id"]), payment["provider_reference"]


async def _refused_refund(client, app, shop, quantity: int = 1) -> dict:
    """Approve a refund of `quantity` units while Stripe refuses every request."""
    order = (await client.get(f"{API}/orders", headers=auth(app, shop.buyer))).json()["items"][0]
    line = order["merchant_orders"][0]["lines"][0]
    r = await client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": quantity}], "reason": "坏了"},
        headers={**auth(app, shop.buyer), **idem()},
    )
    assert r.status_code == 201, r.text
    async with failing_server(400) as refusing:
        app.state.stripe = gateway(refusing.url)
        r = await client.post(
            f"{API}/refunds/{r.json()['id']}/approve", json={}, headers=auth(app, shop.owner)
        )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    return dict(r.json())


async def test_a_refused_refund_stays_owed_to_the_buyer(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, _ = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    total = order["total_fen"]
    refund = await _refused_refund(stripe_client, stripe_app, shop)
    assert refund["failure_message"] and refund["attempts"] == 1
    assert refund["next_attempt_at"] is not None  # the jobs will try again

    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    assert order["refunded_fen"] == 8800  # still counted from its approval
    assert order["merchant_orders"][0]["lines"][0]["refunded_quantity"] == 1
    # the merchant is owed what is left, never the refused refund again
    assert await balance(session, "merchant_payable", shop.merchant.id) == -(total - 8800)
    assert await balance(session, "refunds_in_transit") == -8800
    assert await balance(session, "platform_cash") == total

    # admins find it
    r = await stripe_client.get(
        f"{API}/refunds", params={"status": "failed"}, headers=auth(stripe_app, shop.admin)
    )
    assert [x["id"] for x in r.json()["items"]] == [refund["id"]]


async def test_a_refused_cancellation_refund_is_not_owed_to_the_merchant_again(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, _ = await _paid_card_order(stripe_client, stripe_app, shop, localstripe, 2)
    async with failing_server(400) as refusing:
        stripe_app.state.stripe = gateway(refusing.url)
        r = await stripe_client.post(
            f"{API}/orders/{order['id']}/cancel", json={}, headers=auth(stripe_app, shop.buyer)
        )
    assert r.status_code == 200, r.text
    order = await get_order(stripe_client, stripe_app, shop.buyer, order["id"])
    [refund] = order["refunds"]
    assert (refund["kind"], refund["status"]) == ("cancellation", "failed")
    assert await balance(session, "merchant_payable", shop.merchant.id) == 0
    assert await balance(session, "refunds_in_transit") == -order["total_fen"]


async def test_an_admin_retries_a_refused_refund(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    total = order["total_fen"]
    refund = await _refused_refund(stripe_client, stripe_app, shop)
    assert localstripe.refunds(pi) == []

    stripe_app.state.stripe = gateway(localstripe.url)
    r = await stripe_client.post(
        f"{API}/refunds/{refund['id']}/retry", json={}, headers=auth(stripe_app, shop.admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert r.json()["attempts"] == 2
    [at_stripe] = localstripe.refunds(pi)
    assert (at_stripe["amount"], at_stripe["metadata"]) == (8800, {"refund_id": refund["id"]})
    assert await balance(session, "refunds_in_transit") == 0
    assert await balance(session, "platform_cash") == total - 8800

    # idempotent: retrying a succeeded refund returns it unchanged and sends nothing
    r = await stripe_client.post(
        f"{API}/refunds/{refund['id']}/retry", json={}, headers=auth(stripe_app, shop.admin)
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert r.json()["attempts"] == 2
    assert len(localstripe.refunds(pi)) == 1
    # and it cannot be paid a second time by bank
    r = await stripe_client.post(
        f"{API}/refunds/{refund['id']}/mark-paid",
        json={"bank_reference": "X-1"},
        headers=auth(stripe_app, shop.admin),
    )
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


async def test_the_jobs_retry_a_refused_refund_with_backoff(
    stripe_client, stripe_app, stripe_settings, shop, localstripe, session
):
    _, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    refund = await _refused_refund(stripe_client, stripe_app, shop)
    ctx = JobContext(
        db=stripe_app.state.db, settings=stripe_settings, gateway=gateway(localstripe.url)
    )
    assert (await run_once(ctx))["refund_retries"] == 0  # not due yet
    assert localstripe.refunds(pi) == []

    async def due_now() -> None:
        await session.execute(
            update(Refund)
            .where(Refund.id == uuid.UUID(refund["id"]))
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    await due_now()
    async with failing_server(400) as refusing:  # refused again: the wait grows
        refused = JobContext(
            db=stripe_app.state.db, settings=stripe_settings, gateway=gateway(refusing.url)
        )
        assert (await run_once(refused))["refund_retries"] == 0
    r = await stripe_client.get(
        f"{API}/refunds", params={"status": "failed"}, headers=auth(stripe_app, shop.admin)
    )
    [shown] = r.json()["items"]
    assert shown["attempts"] == 2
    wait = shown["next_attempt_at"]
    assert wait is not None and datetime.fromisoformat(wait) > utcnow()

    await due_now()
    assert (await run_once(ctx))["refund_retries"] == 1
    assert [x["amount"] for x in localstripe.refunds(pi)] == [8800]
    assert await balance(session, "refunds_in_transit") == 0


async def test_a_refused_refund_paid_by_bank(stripe_client, stripe_app, shop, localstripe, session):
    _, pi = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    refund = await _refused_refund(stripe_client, stripe_app, shop)
    r = await stripe_client.post(
        f"{API}/refunds/{refund['id']}/mark-paid",
        json={"bank_reference": "ABC-OUT-77"},
        headers=auth(stripe_app, shop.admin),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["bank_reference"]) == ("succeeded", "ABC-OUT-77")
    assert r.json()["next_attempt_at"] is None
    assert await balance(session, "refunds_in_transit") == 0
    assert localstripe.refunds(pi) == []


async def test_a_card_refund_stripe_may_still_pay_is_not_marked_paid(
    stripe_client, stripe_app, shop, localstripe, session
):
    order, _ = await _paid_card_order(stripe_client, stripe_app, shop, localstripe)
    line = order["merchant_orders"][0]["lines"][0]
    r = await stripe_client.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "坏了"},
        headers={**auth(stripe_app, shop.buyer), **idem()},
    )
    stripe_app.state.stripe = gateway(f"http://127.0.0.1:{closed_port()}")
    r = await stripe_client.post(
        f"{API}/refunds/{r.json()['id']}/approve", json={}, headers=auth(stripe_app, shop.owner)
    )
    assert r.status_code == 503
    refund_id = (await get_order(stripe_client, stripe_app, shop.buyer, order["id"]))["refunds"][0][
        "id"
    ]
    for action, body in (("mark-paid", {"bank_reference": "Z-1"}), ("retry", {})):
        r = await stripe_client.post(
            f"{API}/refunds/{refund_id}/{action}", json=body, headers=auth(stripe_app, shop.admin)
        )
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "invalid_transition"
