"""A database outage under light load: the API fails fast with 503, recovers by itself, and
leaves nothing half-written.

The real server (`shanhai serve`) runs on a fresh database reached through a loopback proxy
(tests/fixtures/dbproxy.py); the shared PostgreSQL is never stopped. A few clients browse the
catalogue and check out in a loop while the proxy cuts every connection and refuses new ones for
a few seconds, then forwards again. A Stripe webhook delivered during the outage is refused with
a 5xx, so Stripe retries it, and the retry takes effect.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.core.liveness import NAMESPACE
from app.core.security import create_access_token
from app.models import (
    IdempotencyKey,
    IdempotencyStatus,
    MerchantOrder,
    Order,
    OrderLine,
    Product,
    User,
)
from tests.fixtures.dbproxy import DatabaseProxy, database_proxy
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.live import SECRET, LiveServer, fresh_database_url, live_server, postgresql_only
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.orders import ADDRESS
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET, deliver, event

pytestmark = postgresql_only("the outage is a proxy in front of PostgreSQL")

OUTAGE_SECONDS = 4.0
FAST = 3.0
"""Every answer, during the outage too, comes within this many seconds."""
STOCK = 10_000


@dataclass
class Call:
    kind: str
    started: float
    ended: float
    status: int | None = None
    content_type: str = ""
    code: str | None = None
    retry_after: str | None = None
    body: Any = None
    error: str | None = None
    key: str | None = None
    buyer: User | None = None


@dataclass
class Traffic:
    calls: list[Call] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(
        self, client: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any
    ) -> Call:
        started = time.monotonic()
        try:
            r = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            call = Call(kind, started, time.monotonic(), error=repr(exc))
        else:
            body = r.json() if r.content else None
            call = Call(
                kind,
                started,
                time.monotonic(),
                status=r.status_code,
                content_type=r.headers.get("content-type", ""),
                code=body.get("code") if isinstance(body, dict) else None,
                retry_after=r.headers.get("retry-after"),
                body=body,
            )
        self.calls.append(call)
        return call

    def of(self, kind: str, start: float = 0.0, end: float = float("inf")) -> list[Call]:
        return [c for c in self.calls if c.kind == kind and start <= c.started < end]


@dataclass
class Shop:
    products: list[Product]
    buyers: list[User]


def _bearer(user: User) -> dict[str, str]:
    token, _ = create_access_token(user.id, SECRET, 60)
    return {"Authorization": f"Bearer {token}"}


def _order_body(products: list[Product], method: str = "bank_transfer") -> dict[str, Any]:
    return {
        "lines": [{"product_id": str(p.id), "quantity": 1} for p in products],
        "shipping_address": ADDRESS,
        "payment_method": method,
    }


@pytest.fixture
def proxied(
    localstripe: LocalStripe, tmp_path: Path
) -> Iterator[tuple[LiveServer, DatabaseProxy, str]]:
    """The server on a fresh database through the proxy; yields (server, proxy, direct URL)."""
    with fresh_database_url() as direct, database_proxy(direct) as proxy:
        env = {
            "ENVIRONMENT": "test",
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": localstripe.url,
            "STRIPE_TIMEOUT_SECONDS": "2",
            "DB_POOL_SIZE": "10",
            "DB_CONNECT_TIMEOUT_SECONDS": "2",
            "DB_POOL_TIMEOUT_SECONDS": "2",
            "UNPAID_ORDERS_PER_BUYER": "0",
            "CHECKOUTS_PER_HOUR_PER_BUYER": "0",
        }
        with live_server(proxy.url(direct), extra_env=env, log_dir=tmp_path) as server:
            yield server, proxy, direct


@pytest.fixture
async def direct_session(
    proxied: tuple[LiveServer, DatabaseProxy, str],
) -> AsyncIterator[AsyncSession]:
    """A session on the server's database that bypasses the proxy."""
    engine = create_engine(proxied[2], for_writes=False)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            yield s
    finally:
        await engine.dispose()


async def _browse(traffic: Traffic, client: httpx.AsyncClient) -> None:
    while not traffic.stop.is_set():
        await traffic.call(client, "browse", "GET", "/api/v1/products", params={"limit": 10})
        await asyncio.sleep(0.05)


async def _one_checkout(
    traffic: Traffic, client: httpx.AsyncClient, buyer: User, shop: Shop, key: str | None = None
) -> Call:
    key = key or uuid.uuid4().hex
    call = await traffic.call(
        client,
        "checkout",
        "POST",
        "/api/v1/orders",
        json=_order_body(shop.products),
        headers={**_bearer(buyer), "Idempotency-Key": key},
    )
    call.key, call.buyer = key, buyer
    return call


async def _check_out(traffic: Traffic, client: httpx.AsyncClient, buyer: User, shop: Shop) -> None:
    while not traffic.stop.is_set():
        await _one_checkout(traffic, client, buyer, shop)
        await asyncio.sleep(0.2)


@asynccontextmanager
async def _row_locked(database_url: str, product: Product) -> AsyncIterator[None]:
    """Hold the product's row lock (directly, not through the proxy) for the block."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(select(Product.id).where(Product.id == product.id).with_for_update())
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def _claimed(session: AsyncSession, key: str, within: float = 5) -> None:
    """Wait until the checkout with this Idempotency-Key has committed its claim."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = await session.scalar(
            select(IdempotencyKey.status).where(IdempotencyKey.key == key)
        )
        await session.commit()
        if status == IdempotencyStatus.in_progress:
            return
        await asyncio.sleep(0.02)
    pytest.fail("the checkout did not claim its key")


async def _probe(traffic: Traffic, client: httpx.AsyncClient) -> None:
    while not traffic.stop.is_set():
        await traffic.call(client, "readyz", "GET", "/readyz")
        await asyncio.sleep(0.2)


async def _ready_again(traffic: Traffic, client: httpx.AsyncClient, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        call = await traffic.call(client, "readyz", "GET", "/readyz")
        if call.status == 200:
            return call.ended
        await asyncio.sleep(0.1)
    pytest.fail(f"/readyz did not answer 200 within {within} s of the database coming back")


async def _paid_intent_event(
    client: httpx.AsyncClient, localstripe: LocalStripe, buyer: User, shop: Shop
) -> tuple[str, dict[str, Any]]:
    """A card order paid at Stripe whose `payment_intent.succeeded` is not delivered yet."""
    r = await client.post(
        "/api/v1/orders",
        json=_order_body(shop.products[:1], method="stripe"),
        headers={**_bearer(buyer), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    r = await client.post(
        f"/api/v1/orders/{order_id}/payments",
        headers={**_bearer(buyer), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    intent = localstripe.pay(r.json()["provider_reference"])
    assert intent["status"] == "succeeded"
    return order_id, event("payment_intent.succeeded", intent)


def _assert_unavailable(call: Call) -> None:
    assert call.status == 503, call
    assert call.content_type.startswith("application/problem+json"), call
    assert call.code == "database_unavailable", call
    assert call.retry_after is not None and int(call.retry_after) > 0, call
    assert "Traceback" not in str(call.body)


async def test_a_database_outage_fails_fast_and_heals_by_itself(
    proxied: tuple[LiveServer, DatabaseProxy, str],
    direct_session: AsyncSession,
    localstripe: LocalStripe,
) -> None:
    server, proxy, direct_url = proxied
    session = direct_session
    merchant, _ = await make_merchant(session)
    products = [
        await make_product(session, merchant, stock=STOCK, price_fen=1200),
        await make_product(session, merchant, stock=STOCK, price_fen=3400),
    ]
    buyers = [await make_user(session) for _ in range(3)]
    shop = Shop(products, buyers)
    traffic = Traffic()

    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        card_order_id, paid = await _paid_intent_event(client, localstripe, buyers[2], shop)
        load = [
            *(asyncio.create_task(_browse(traffic, client)) for _ in range(3)),
            *(asyncio.create_task(_check_out(traffic, client, b, shop)) for b in buyers[:2]),
            asyncio.create_task(_probe(traffic, client)),
        ]
        await asyncio.sleep(1.5)

        # A checkout caught half way when the connections are cut: its key is claimed (and
        # committed), its stock update waits on a row we lock. It can neither finish nor free
        # its claim, yet its retry after the outage must go through.
        async with _row_locked(direct_url, products[0]):
            key = uuid.uuid4().hex
            caught = asyncio.create_task(_one_checkout(traffic, client, buyers[0], shop, key))
            await _claimed(session, key)
            proxy.down()
            down_at = time.monotonic()
        caught_call = await caught
        await asyncio.sleep(OUTAGE_SECONDS / 2)
        # Stripe delivers the payment while the database is away: a 5xx makes Stripe retry.
        during = await deliver(client, paid)
        await asyncio.sleep(OUTAGE_SECONDS / 2)
        proxy.up()
        up_at = time.monotonic()

        ready_at = await _ready_again(traffic, client, within=10)
        await asyncio.sleep(1.5)
        traffic.stop.set()
        await asyncio.gather(*load)

        # Stripe's retry after the outage takes effect, once.
        after = await deliver(client, paid)
        r = await client.get(f"/api/v1/orders/{card_order_id}", headers=_bearer(buyers[2]))
        card_order = r.json()
        # A buyer whose checkout was refused retries it with the same Idempotency-Key.
        retried = await _retry_refused_checkouts(traffic, client, shop)

    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, [line for line in log.splitlines() if "Traceback" in line][:1]

    # Nothing hung, nothing was a 500: every answer came fast, and was a success or a 503.
    assert all(c.error is None for c in traffic.calls), [c for c in traffic.calls if c.error]
    slowest = max(traffic.calls, key=lambda c: c.ended - c.started)
    assert slowest.ended - slowest.started < FAST, slowest
    odd = [
        (c.kind, c.status, c.code)
        for c in traffic.calls
        if c.kind != "retry" and c.status not in (200, 201, 503)
    ]
    assert not odd, odd

    # Before the outage everything worked.
    for kind in ("browse", "checkout", "readyz"):
        before = [c for c in traffic.of(kind) if c.ended < down_at]
        assert before and all(c.status in (200, 201) for c in before), kind

    # During it: readiness says so, and every request is a fast, retryable 503.
    grace = 0.3  # requests already on the wire when the connections were cut
    for kind in ("browse", "checkout"):
        out = [c for c in traffic.of(kind, down_at + grace) if c.ended < up_at]
        assert len(out) >= 2, (kind, len(out))
        for call in out:
            _assert_unavailable(call)
    probes = [c for c in traffic.of("readyz", down_at + grace) if c.ended < up_at]
    assert probes and all(c.status == 503 and c.code == "not_ready" for c in probes), probes
    _assert_unavailable(caught_call)
    assert during.status_code == 503, during.text
    assert during.json()["code"] == "database_unavailable"
    assert proxy.refused > 0

    # After it: ready again within seconds, with no restart, and every request succeeds.
    assert ready_at - up_at < 5
    for kind in ("browse", "checkout"):
        healed = traffic.of(kind, ready_at)
        assert healed and all(c.status in (200, 201) for c in healed), [
            (c.status, c.code) for c in healed
        ]
    assert after.status_code == 200, after.text
    assert after.json() == {"received": True, "duplicate": False}
    assert card_order["status"] == "paid", card_order

    assert retried and all(c.status == 201 for c in retried), [(c.status, c.code) for c in retried]
    # The process took its liveness lock again (app.core.liveness): its idempotency claims are
    # not taken for a dead process's.
    assert await _liveness_locks(session) == 1

    await _assert_nothing_half_written(session, traffic, shop)


async def _retry_refused_checkouts(
    traffic: Traffic, client: httpx.AsyncClient, shop: Shop
) -> list[Call]:
    retried = []
    for refused in [c for c in traffic.of("checkout") if c.status == 503]:
        assert refused.key is not None and refused.buyer is not None
        retried.append(
            await traffic.call(
                client,
                "retry",
                "POST",
                "/api/v1/orders",
                json=_order_body(shop.products),
                headers={**_bearer(refused.buyer), "Idempotency-Key": refused.key},
            )
        )
    return retried


async def _liveness_locks(session: AsyncSession) -> int:
    """Advisory locks held on this database in the liveness namespace."""
    count = await session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = :ns AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())"
        ),
        {"ns": NAMESPACE},
    )
    await session.commit()  # ends the snapshot, keeps the loaded objects
    return int(count or 0)


async def _assert_nothing_half_written(session: AsyncSession, traffic: Traffic, shop: Shop) -> None:
    """Every 201 has its order with all its lines; no order lacks a line; no unit of stock was
    lost or made up (stock left + units ordered = stock at the start)."""
    created = [c.body for c in traffic.of("checkout") if c.status == 201]
    assert created
    orders = {
        str(order_id): count
        for order_id, count in await session.execute(
            select(Order.id, func.count(OrderLine.id))
            .outerjoin(MerchantOrder, MerchantOrder.order_id == Order.id)
            .outerjoin(OrderLine, OrderLine.merchant_order_id == MerchantOrder.id)
            .group_by(Order.id)
        )
    }
    for body in created:
        assert orders.get(body["id"]) == len(shop.products), body["id"]
    assert all(count >= 1 for count in orders.values()), orders
    for product in shop.products:
        stock = await session.scalar(
            select(Product.stock)
            .where(Product.id == product.id)
            .execution_options(populate_existing=True)
        )
        ordered = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.product_id == product.id
            )
        )
        assert stock is not None and ordered is not None
        assert stock + ordered == STOCK, (product.name, stock, ordered)
