"""Webhook chaos: Stripe's events delivered 1-3 times, shuffled, a few at once, among forged and
stale copies, end in the same state as the same events delivered once, in order.

Two twin batches of card orders (one merchant, product and buyer each) go through the same
stories at Stripe (localstripe): paid; declined; declined, then paid; paid after the buyer
cancelled (refunded in full); cancelled unpaid; partly refunded; partly refunded with Stripe's
answer lost. The first batch gets every event once, as it happens. The second gets an event at
once only when the story cannot go on without it (the order must be paid before a refund is
asked); all its events are then delivered again 1-3 times in a seeded shuffle, a few concurrently,
mixed with copies signed with another secret, signed too long ago, or over another body, and
with forged events Stripe never sent. Every forged or stale copy is a 400 that changes nothing;
orders, payments, refunds, stock, the ledger and the refunds made at Stripe are the same for both
batches. (Deliveries while the database is away: tests/ops/test_database_outage.py.)
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.stripe import sign_payload
from app.models import LedgerEntry, Merchant, Product, StripeEvent, User
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.orders import get_order, idem, ledger_total, place
from tests.fixtures.stripe import (
    WEBHOOK_SECRET,
    answer_lost_server,
    deliver,
    event,
    gateway,
    open_payment,
)

SEED = 20261205
DECLINED = "4000000000000341"
STOCK = 100
AT_ONCE = 3
"""Deliveries sent concurrently in the chaos phase."""


@dataclass
class Batch:
    """One merchant's orders, and the events Stripe sent about them, in the order it sent them."""

    in_order: bool
    merchant: Merchant
    owner: User
    product: Product
    buyer: User
    orders: dict[str, str] = field(default_factory=dict)
    """Story name → order id."""
    intents: dict[str, list[str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    delivered_early: set[str] = field(default_factory=set)


@dataclass
class World:
    client: httpx.AsyncClient
    app: FastAPI
    localstripe: LocalStripe

    async def emit(self, batch: Batch, evt: dict[str, Any], *, needed_now: bool = False) -> None:
        """Stripe sends `evt`: delivered now in the in-order batch, or when the story cannot go
        on without it; otherwise kept for the chaos."""
        batch.events.append(evt)
        if batch.in_order or needed_now:
            r = await deliver(self.client, evt)
            assert r.status_code == 200, r.text
            assert r.json() == {"received": True, "duplicate": False}
            batch.delivered_early.add(evt["id"])

    async def card_order(self, batch: Batch, story: str, quantity: int = 1) -> str:
        order = await place(
            self.client, self.app, batch.buyer, [(batch.product, quantity)], method="stripe"
        )
        batch.orders[story] = order["id"]
        batch.intents[story] = []
        return str(order["id"])

    async def open(self, batch: Batch, story: str) -> str:
        payment = (
            await open_payment(self.client, self.app, batch.buyer, batch.orders[story])
        ).json()
        batch.intents[story].append(payment["provider_reference"])
        return str(payment["provider_reference"])

    async def cancel(self, batch: Batch, story: str) -> None:
        r = await self.client.post(
            f"/api/v1/orders/{batch.orders[story]}/cancel",
            json={},
            headers=auth(self.app, batch.buyer),
        )
        assert r.status_code == 200, r.text

    async def refund_one(self, batch: Batch, story: str, *, answer_lost: bool = False) -> None:
        """The buyer asks one unit back, the owner approves; Stripe's answer may be lost."""
        order = await get_order(self.client, self.app, batch.buyer, batch.orders[story])
        line = order["merchant_orders"][0]["lines"][0]
        r = await self.client.post(
            f"/api/v1/orders/{order['id']}/refunds",
            json={"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "碰伤了"},
            headers={**auth(self.app, batch.buyer), **idem()},
        )
        assert r.status_code == 201, r.text
        approve = f"/api/v1/refunds/{r.json()['id']}/approve"
        if not answer_lost:
            r = await self.client.post(approve, json={}, headers=auth(self.app, batch.owner))
            assert r.status_code == 200, r.text
            return
        async with answer_lost_server(self.localstripe.url) as lossy:
            self.app.state.stripe = gateway(lossy, timeout_seconds=0.5)
            try:
                r = await self.client.post(approve, json={}, headers=auth(self.app, batch.owner))
            finally:
                self.app.state.stripe = gateway(self.localstripe.url)
        assert r.status_code == 503, r.text

    async def refund_events(self, batch: Batch, story: str) -> None:
        """What Stripe sends about the refund made on the story's intent."""
        [intent_id] = batch.intents[story]
        [made] = self.localstripe.refunds(intent_id)
        await self.emit(batch, event("refund.updated", made))
        charge_id = self.localstripe.intent(intent_id)["latest_charge"]
        charge_id = charge_id["id"] if isinstance(charge_id, dict) else charge_id
        charge = self.localstripe._request("GET", f"/v1/charges/{charge_id}")
        charge.pop("refunds", None)  # Stripe's charges no longer embed their refunds
        await self.emit(batch, event("charge.refunded", charge))


# The stories ------------------------------------------------------------------------------------


async def paid(w: World, b: Batch) -> None:
    await w.card_order(b, "paid", quantity=2)
    intent = w.localstripe.pay(await w.open(b, "paid"))
    await w.emit(b, event("payment_intent.succeeded", intent))


async def declined(w: World, b: Batch) -> None:
    await w.card_order(b, "declined")
    intent = w.localstripe.pay(await w.open(b, "declined"), card=DECLINED)
    await w.emit(b, event("payment_intent.payment_failed", intent))


async def declined_then_paid(w: World, b: Batch) -> None:
    await w.card_order(b, "declined_then_paid")
    first = w.localstripe.pay(await w.open(b, "declined_then_paid"), card=DECLINED)
    # the buyer can only try again once the failure is known
    await w.emit(b, event("payment_intent.payment_failed", first), needed_now=True)
    second = w.localstripe.pay(await w.open(b, "declined_then_paid"))
    await w.emit(b, event("payment_intent.succeeded", second))


async def paid_after_cancel(w: World, b: Batch) -> None:
    await w.card_order(b, "paid_after_cancel", quantity=3)
    intent = w.localstripe.pay(await w.open(b, "paid_after_cancel"))
    await w.cancel(b, "paid_after_cancel")  # in another tab, before Stripe's word arrives
    await w.emit(b, event("payment_intent.succeeded", intent))


async def cancelled_unpaid(w: World, b: Batch) -> None:
    await w.card_order(b, "cancelled_unpaid")
    intent_id = await w.open(b, "cancelled_unpaid")
    await w.cancel(b, "cancelled_unpaid")
    await w.emit(b, event("payment_intent.canceled", w.localstripe.intent(intent_id)))


async def refunded(w: World, b: Batch) -> None:
    await w.card_order(b, "refunded", quantity=3)
    intent = w.localstripe.pay(await w.open(b, "refunded"))
    await w.emit(b, event("payment_intent.succeeded", intent), needed_now=True)
    await w.refund_one(b, "refunded")
    await w.refund_events(b, "refunded")


async def refund_answer_lost(w: World, b: Batch) -> None:
    await w.card_order(b, "refund_answer_lost", quantity=2)
    intent = w.localstripe.pay(await w.open(b, "refund_answer_lost"))
    await w.emit(b, event("payment_intent.succeeded", intent), needed_now=True)
    await w.refund_one(b, "refund_answer_lost", answer_lost=True)
    await w.refund_events(b, "refund_answer_lost")


STORIES: list[Callable[[World, Batch], Awaitable[None]]] = [
    paid,
    declined,
    declined_then_paid,
    paid_after_cancel,
    cancelled_unpaid,
    refunded,
    refund_answer_lost,
]


# Chaos ------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    evt: dict[str, Any]
    how: str
    """`genuine`, or a copy Stripe never signed: `forged` (another secret), `stale` (signed
    10 minutes ago), `tampered` (a signature over another body), `invented` (a new event id
    claiming a success, signed with another secret)."""


def chaos(batch: Batch, rng: random.Random) -> list[Delivery]:
    """Every event 1-3 times in all (counting a delivery made early), plus bad copies, shuffled."""
    deliveries = []
    for evt in batch.events:
        copies = rng.randint(1, 3) - (evt["id"] in batch.delivered_early)
        deliveries += [Delivery(evt, "genuine") for _ in range(copies)]
        deliveries += [
            Delivery(evt, how) for how in ("forged", "stale", "tampered") if rng.random() < 0.4
        ]
        if rng.random() < 0.3:
            obj = {**evt["data"]["object"], "status": "succeeded"}
            deliveries.append(Delivery(event("payment_intent.succeeded", obj), "invented"))
    rng.shuffle(deliveries)
    return deliveries


async def send(client: httpx.AsyncClient, d: Delivery) -> httpx.Response:
    if d.how == "genuine":
        return await deliver(client, d.evt)
    if d.how in ("forged", "invented"):
        return await deliver(client, d.evt, secret="whsec_not_stripes")
    if d.how == "stale":
        return await deliver(client, d.evt, timestamp=int(time.time()) - 600)
    other = json.dumps({**d.evt, "type": "customer.created"}, separators=(",", ":"))
    return await deliver(
        client, d.evt, signature=sign_payload(other, WEBHOOK_SECRET, int(time.time()))
    )


# The state a user would check -------------------------------------------------------------------


def refunds_at_stripe(localstripe: LocalStripe, intent_id: str) -> list[tuple[int, str]]:
    if localstripe.intent(intent_id)["status"] != "succeeded":
        return []  # nothing was charged (localstripe cannot list refunds of such an intent)
    return sorted((r["amount"], r["status"]) for r in localstripe.refunds(intent_id))


async def state(w: World, session: AsyncSession, batch: Batch) -> dict[str, Any]:
    """Each order as its buyer sees it, the product's stock and sales, the batch's ledger
    balances by account, and the refunds Stripe made, keyed by story."""
    orders = {}
    for story, order_id in batch.orders.items():
        o = await get_order(w.client, w.app, batch.buyer, order_id)
        orders[story] = {
            "status": o["status"],
            "total_fen": o["total_fen"],
            "refunded_fen": o["refunded_fen"],
            "merchant_orders": [
                (m["status"], [(ln["quantity"], ln["refunded_quantity"]) for ln in m["lines"]])
                for m in o["merchant_orders"]
            ],
            "payments": [(p["status"], p["amount_fen"]) for p in o["payments"]],
            "refunds": sorted((r["kind"], r["status"], r["amount_fen"]) for r in o["refunds"]),
            "at_stripe": [refunds_at_stripe(w.localstripe, pi) for pi in batch.intents[story]],
        }
    product = (
        await session.execute(
            select(Product.stock, Product.sold_units)
            .where(Product.id == batch.product.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    ledger = dict(
        (
            await session.execute(
                select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen))
                .where(LedgerEntry.order_id.in_([uuid.UUID(i) for i in batch.orders.values()]))
                .group_by(LedgerEntry.account)
            )
        ).all()
    )
    await session.commit()
    return {"orders": orders, "stock": tuple(product), "ledger": ledger}


async def _batch(session: AsyncSession, *, in_order: bool) -> Batch:
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=8800, stock=STOCK)
    return Batch(in_order, merchant, owner, product, await make_user(session))


async def test_shuffled_repeated_and_forged_deliveries_end_as_one_delivery_in_order(
    stripe_client: httpx.AsyncClient,
    stripe_app: FastAPI,
    localstripe: LocalStripe,
    session: AsyncSession,
) -> None:
    w = World(stripe_client, stripe_app, localstripe)
    in_order = await _batch(session, in_order=True)
    shuffled = await _batch(session, in_order=False)
    for story in STORIES:
        await story(w, in_order)
        await story(w, shuffled)
    expected = await state(w, session, in_order)

    deliveries = chaos(shuffled, random.Random(SEED))
    answers: list[httpx.Response] = []
    for start in range(0, len(deliveries), AT_ONCE):
        group = deliveries[start : start + AT_ONCE]
        answers += await asyncio.gather(*(send(stripe_client, d) for d in group))

    firsts: dict[str, int] = dict.fromkeys(shuffled.delivered_early, 1)
    for d, r in zip(deliveries, answers, strict=True):
        if d.how != "genuine":
            assert r.status_code == 400, (d.how, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "invalid_signature"
            continue
        assert r.status_code == 200, (d.evt["type"], r.text)
        firsts[d.evt["id"]] = firsts.get(d.evt["id"], 0) + (not r.json()["duplicate"])
    # each event took effect exactly once, whatever the number of deliveries
    assert firsts == {e["id"]: 1 for e in shuffled.events}
    assert sum(d.how != "genuine" for d in deliveries) >= 5  # the chaos had bad copies

    assert await state(w, session, shuffled) == expected
    assert expected["orders"]["paid"]["status"] == "paid"
    assert expected["orders"]["declined"]["payments"] == [("failed", 8800)]
    assert expected["orders"]["paid_after_cancel"]["refunds"] == [
        ("late_payment", "succeeded", 3 * 8800)
    ]
    assert expected["orders"]["refund_answer_lost"]["refunds"][0][1] == "succeeded"
    assert await ledger_total(session) == 0

    # only what Stripe signed was stored: no forged, stale or invented event
    stored = set((await session.scalars(select(StripeEvent.id))).all())
    assert stored == {e["id"] for e in in_order.events} | {e["id"] for e in shuffled.events}
