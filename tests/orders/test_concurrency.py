"""No overselling across API processes: many buyers, separate connections, two uvicorn workers.

The app runs as a real `uvicorn --workers 2` subprocess on the session's test database, so the
concurrent checkouts really race in two processes with their own connection pools (PostgreSQL:
row locks and conditional UPDATEs; SQLite: WAL, BEGIN IMMEDIATE and the busy timeout serialise
the writers). A watcher polls the hot products' stock on its own connection while the burst
runs, to show it never goes below zero on the way.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.core.security import create_access_token
from app.models import MerchantOrder, Order, OrderLine, Product, User
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.live import free_port, healthy, stop
from tests.fixtures.orders import ADDRESS

ROOT = Path(__file__).resolve().parents[2]
SECRET = "concurrency-test-secret-key-0123456789abcdef"
BUYERS = 50
WORKERS = 2


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    """`uvicorn app.main:create_app --factory --workers 2` on a free loopback port, on the test
    database; yielded once /healthz answers and both workers have finished starting up."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "INFO",
    }
    for name in ("REDIS_URL", "STRIPE_API_KEY", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--workers",
        str(WORKERS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with tempfile.TemporaryDirectory(prefix="shanhai-concurrency-") as tmp:
        log = Path(tmp) / "uvicorn.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        srv = Server(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"uvicorn exited early ({proc.returncode}):\n{srv.tail()}")
                text = log.read_text(errors="replace")
                if text.count("Application startup complete") >= WORKERS and healthy(srv.base):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"uvicorn did not start {WORKERS} workers in 30 s:\n{srv.tail()}")
                time.sleep(0.1)
            pids = set(re.findall(r"Started server process \[(\d+)\]", text))
            assert len(pids) == WORKERS, srv.tail()
            yield srv
            assert proc.poll() is None, f"uvicorn died during the tests:\n{srv.tail()}"
            assert "Traceback" not in log.read_text(errors="replace"), srv.tail(80)
        finally:
            stop(proc)


def _bearer(user: User) -> str:
    token, _ = create_access_token(user.id, SECRET, 60)
    return f"Bearer {token}"


async def _burst(base: str, requests: list[tuple[User, list[tuple[Product, int]]]]) -> list[Any]:
    """POST every checkout at once, each on its own connection with its own Idempotency-Key."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    bodies = [
        (
            {
                "Authorization": _bearer(buyer),
                "Idempotency-Key": uuid.uuid4().hex,
            },
            {
                "lines": [{"product_id": str(p.id), "quantity": q} for p, q in lines],
                "shipping_address": ADDRESS,
                "payment_method": "bank_transfer",
            },
        )
        for buyer, lines in requests
    ]
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(client.post("/api/v1/orders", json=body, headers=h) for h, body in bodies)
        )


class StockWatcher:
    """Polls the products' stock on its own connection until stopped; keeps the lowest seen."""

    def __init__(self, database_url: str, products: list[Product]) -> None:
        self.engine = create_engine(database_url, for_writes=False)
        self.ids = [p.id for p in products]
        self.lowest: dict[uuid.UUID, int] = {p.id: p.stock for p in products}
        self.polls = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        try:
            async with self.engine.connect() as conn:
                while not self._stop.is_set():
                    rows = await conn.execute(
                        select(Product.id, Product.stock).where(Product.id.in_(self.ids))
                    )
                    for pid, stock in rows:
                        self.lowest[pid] = min(self.lowest[pid], stock)
                    await conn.rollback()  # a fresh snapshot for the next poll
                    self.polls += 1
                    await asyncio.sleep(0.005)
        finally:
            await self.engine.dispose()

    def stop(self) -> None:
        self._stop.set()


async def _checkout_race(
    server: Server,
    database_url: str,
    hot: list[Product],
    requests: list[tuple[User, list[tuple[Product, int]]]],
) -> tuple[list[Any], StockWatcher]:
    watcher = StockWatcher(database_url, hot)
    watch = asyncio.create_task(watcher.run())
    try:
        responses = await _burst(server.base, requests)
    finally:
        watcher.stop()
        await watch
    return responses, watcher


async def _stock(session: AsyncSession, product: Product) -> int:
    return int(await session.scalar(select(Product.stock).where(Product.id == product.id)) or 0)


async def _ordered_units(session: AsyncSession, product: Product) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
            OrderLine.product_id == product.id
        )
    )
    return int(total or 0)


def _outcomes(responses: list[Any]) -> Counter[tuple[int, str]]:
    """(status, code) per response; a 201 counts as (201, "created")."""
    outcomes: Counter[tuple[int, str]] = Counter()
    for r in responses:
        code = "created" if r.status_code == 201 else r.json().get("code", "?")
        outcomes[(r.status_code, code)] += 1
    return outcomes


async def test_fifty_buyers_one_product_stock_twenty_never_oversold(
    server: Server, session: AsyncSession, database_url: str
) -> None:
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=20, price_fen=3800)
    buyers = [await make_user(session) for _ in range(BUYERS)]

    responses, watcher = await _checkout_race(
        server, database_url, [product], [(b, [(product, 1)]) for b in buyers]
    )

    outcomes = _outcomes(responses)
    assert outcomes == {(201, "created"): 20, (409, "insufficient_stock"): 30}, server.tail()
    for r in responses:
        if r.status_code == 409:
            assert r.json()["product_id"] == str(product.id)
        else:
            order = r.json()
            assert order["total_fen"] == 3800
            assert order["merchant_orders"][0]["lines"][0]["quantity"] == 1
    created = [r.json() for r in responses if r.status_code == 201]
    assert len({o["order_no"] for o in created}) == 20
    assert len({o["id"] for o in created}) == 20

    assert await _stock(session, product) == 0
    assert watcher.lowest[product.id] >= 0
    assert watcher.polls > 0
    assert await session.scalar(select(func.count()).select_from(Order)) == 20
    assert await session.scalar(select(func.count()).select_from(MerchantOrder)) == 20
    assert await _ordered_units(session, product) == 20
    winners = {o["id"] for o in created}
    rows = await session.execute(select(Order.id, Order.buyer_id))
    orders = {str(oid): bid for oid, bid in rows}
    assert set(orders) == winners
    assert len(set(orders.values())) == 20  # one order per winning buyer


async def test_two_line_orders_over_two_hot_products_never_deadlock_or_oversell(
    server: Server, session: AsyncSession, database_url: str
) -> None:
    m1, _ = await make_merchant(session)
    m2, _ = await make_merchant(session)
    a = await make_product(session, m1, stock=10, price_fen=2000)
    b = await make_product(session, m2, stock=15, price_fen=5000)
    buyers = [await make_user(session) for _ in range(BUYERS)]
    # Half list the products one way round, half the other: a server that locked rows in the
    # buyer's order would deadlock here.
    requests = [(u, [(a, 1), (b, 1)] if i % 2 else [(b, 1), (a, 1)]) for i, u in enumerate(buyers)]

    responses, watcher = await _checkout_race(server, database_url, [a, b], requests)

    outcomes = _outcomes(responses)
    assert outcomes == {(201, "created"): 10, (409, "insufficient_stock"): 40}, server.tail()
    for r in responses:
        if r.status_code == 409:
            assert r.json()["product_id"] == str(a.id)  # a runs out first; b never does
        else:
            order = r.json()
            assert order["total_fen"] == 2000 + 5000
            assert len(order["merchant_orders"]) == 2

    assert await _stock(session, a) == 0
    assert await _stock(session, b) == 5
    assert watcher.lowest[a.id] >= 0 and watcher.lowest[b.id] >= 0
    assert await session.scalar(select(func.count()).select_from(Order)) == 10
    assert await session.scalar(select(func.count()).select_from(MerchantOrder)) == 20
    assert await _ordered_units(session, a) == 10
    assert await _ordered_units(session, b) == 10
