"""kill -9 of every process mid-storm: nothing half-written, nothing twice, no unit or fen lost.

Two API servers (`shanhai serve` on two ports, one of them with two uvicorn worker processes)
and a job runner (`shanhai jobs run` every 0.3 s) run on a fresh PostgreSQL database, each in a
process group of its own. Several buyers
check out, pay by bank transfer (an admin confirms each with a unique bank reference) or by card
(localstripe, then a signed `payment_intent.succeeded`), ask for refunds that the merchant
approves, cancel, or get their goods shipped and confirm receipt; an admin runs settlements and
pays statements. The settings give the jobs work all along: orders expire after 3 s, shipped
merchant orders complete at once, the refund window is zero.

A couple of seconds in, every process group gets SIGKILL: API processes (workers included) and
the job runner die in the middle of whatever they were doing. To be sure some requests die half
way, the test holds one product's row lock just before: checkouts of it have committed the claim
of their Idempotency-Key and wait for the row when their process dies. The processes are started
again, and every request that got no answer is sent again, with its same Idempotency-Key and
body, until it is answered. Then the
database must show: every 201 order with all its lines; no payment recorded twice; per product,
the stock conserved (see `_assert_stock_conserved`); no merchant order in two statements and no
statement paid twice; a ledger that totals zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.core.security import create_access_token
from app.integrations.stripe import sign_payload
from app.models import (
    IdempotencyKey,
    IdempotencyStatus,
    LedgerAccount,
    LedgerEntry,
    MerchantOrder,
    MerchantOrderStatus,
    Order,
    OrderLine,
    Payment,
    PaymentStatus,
    Product,
    Refund,
    RefundKind,
    RefundLine,
    RefundStatus,
    Role,
    Settlement,
    SettlementLine,
    SettlementStatus,
    User,
)
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.live import (
    ROOT,
    SECRET,
    free_port,
    fresh_database_url,
    healthy,
    postgresql_only,
    shanhai,
)
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.orders import ADDRESS
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET, event

pytestmark = postgresql_only("several API processes and a job runner at once need PostgreSQL")

API = "/api/v1"
STOCK = 60
"""Each product's starting stock, small enough to run out during the storm ..."""
HOT_STOCK = 1000
"""... except the first product's: its checkouts are caught on its row at the kill, so they must
still wait for its row lock (a checkout of a product sold out answers 409 without waiting)."""
BUYERS = 6
STORM_BEFORE_KILL = 2.5
STORM_AFTER_RESTART = 2.0
ANSWER_WITHIN = 20.0
"""A request lost in the crash is answered within this many seconds of the restart."""
SHANGHAI = ZoneInfo("Asia/Shanghai")


# The processes -----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log: Path
    base: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            # A session (and process group) of its own: SIGKILL to the group reaches every
            # process it forks (uvicorn's workers with --workers N).
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole process group, at once; `reap` waits for it."""
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        os.killpg(self.proc.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Wait until every process of the group is gone (uvicorn's workers included)."""
        assert self.proc is not None
        self.proc.wait(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            assert time.monotonic() < deadline, f"{self.name}: a process of the group survived"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(procs: list[Proc], within: float = 60) -> None:
    deadline = time.monotonic() + within
    for p in procs:
        assert p.proc is not None
        while p.base is not None and not healthy(p.base):
            if p.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{p.name} did not start:\n{p.tail()}")
            time.sleep(0.1)


@contextmanager
def cluster(database_url: str, localstripe: LocalStripe, log_dir: Path) -> Iterator[list[Proc]]:
    """The job runner, then two API servers (the first with two worker processes), started on
    the database, stopped afterwards."""
    weekday = datetime.now(SHANGHAI).isoweekday()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "REDIS_URL"))}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "TRUSTED_PROXY_HOPS"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET,
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        STRIPE_API_KEY=API_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=localstripe.url,
        STRIPE_TIMEOUT_SECONDS="5",
        PAYMENT_TIMEOUT_MINUTES="0.05",
        AUTO_COMPLETE_DAYS="0",
        REFUND_WINDOW_DAYS="0",
        COMMISSION_RATE_BPS="300",
        SETTLEMENT_WEEKDAY=str(weekday),  # the job's weekly run is due today too
        UNPAID_ORDERS_PER_BUYER="0",
        CHECKOUTS_PER_HOUR_PER_BUYER="0",
        DB_POOL_SIZE="10",
    )
    py = sys.executable
    procs = [Proc("jobs", [py, "-m", "app.cli", "jobs", "run", "--interval", "0.3"], env, Path())]
    for i, workers in ((1, "2"), (2, "1")):  # uvicorn with two worker processes, and one alone
        port = free_port()
        cmd = [py, "-m", "app.cli", "serve", "--no-migrate", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", workers]
        procs.append(Proc(f"api{i}", cmd, env, Path()))
        procs[-1].base = f"http://127.0.0.1:{port}"
    for p in procs:
        p.log = log_dir / f"{p.name}.log"
        p.start()
    try:
        _wait_healthy(procs)
        yield procs
    finally:
        for p in procs:
            p.stop()


# The storm ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    kind: str
    key: str | None
    body: Any = None
    lost: int = 0
    """Attempts that got no answer (the process died under them, or was down)."""
    in_progress: int = 0
    status: int | None = None
    code: str | None = None
    answered_at: float = 0.0


@dataclass
class Storm:
    bases: list[str]
    localstripe: LocalStripe
    admin: dict[str, str]
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[Sent] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    bank_references: list[str] = field(default_factory=list)
    restarted_at: float = 0.0

    async def send(
        self,
        client: httpx.AsyncClient,
        kind: str,
        path: str,
        headers: dict[str, str],
        body: Any = None,
        *,
        key: str | None = None,
        content: str | None = None,
    ) -> httpx.Response:
        """POST until answered: a request that gets no answer (its process was killed) is sent
        again, once the processes are back, with its same Idempotency-Key and body."""
        sent = Sent(kind, key, body)
        self.sent.append(sent)
        if key is not None:
            headers = {**headers, "Idempotency-Key": key}
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, sent
            await self.up.wait()
            base = random.choice(self.bases)
            try:
                if content is not None:
                    r = await client.post(base + path, content=content, headers=headers)
                else:
                    r = await client.post(base + path, json=body, headers=headers)
            except httpx.TransportError:
                sent.lost += 1
                await asyncio.sleep(0.05)
                continue
            if r.status_code == 409 and r.json().get("code") == "idempotency_request_in_progress":
                sent.in_progress += 1  # the first attempt is still running somewhere
                await asyncio.sleep(0.1)
                continue
            sent.status = r.status_code
            sent.code = r.json().get("code") if r.status_code >= 400 else None
            sent.answered_at = time.monotonic()
            return r

    async def get(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
        while True:
            await self.up.wait()
            try:
                r = await client.get(random.choice(self.bases) + path, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            assert r.status_code == 200, r.text
            return r.json()


def _bearer(user: User) -> dict[str, str]:
    token, _ = create_access_token(user.id, SECRET, 60)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Shop:
    products: list[Product]
    owners: dict[uuid.UUID, dict[str, str]]
    """The Authorization header of each merchant's owner, by merchant id."""


async def _buyer(storm: Storm, client: httpx.AsyncClient, shop: Shop, buyer: User, n: int) -> None:
    rnd = random.Random(n)
    me = _bearer(buyer)
    while not storm.stop.is_set():
        method = "stripe" if n % 2 else "bank_transfer"
        picked = rnd.sample(shop.products, rnd.choice((1, 2)))
        body = {
            "lines": [{"product_id": str(p.id), "quantity": rnd.randint(1, 3)} for p in picked],
            "shipping_address": ADDRESS,
            "payment_method": method,
        }
        r = await storm.send(client, "checkout", f"{API}/orders", me, body, key=uuid.uuid4().hex)
        if r.status_code != 201:
            assert r.json()["code"] == "insufficient_stock", r.text
            await asyncio.sleep(0.1)
            continue
        order = r.json()
        storm.created.append(order)
        if rnd.random() < 0.2:
            continue  # left unpaid: the jobs cancel it when it expires
        if not await _pay(storm, client, buyer, order, method):
            continue
        await _after_payment(storm, client, shop, buyer, order, rnd)


async def _pay(
    storm: Storm, client: httpx.AsyncClient, buyer: User, order: dict[str, Any], method: str
) -> bool:
    """Pay the order; True if it is paid afterwards."""
    me = _bearer(buyer)
    path = f"{API}/orders/{order['id']}/payments"
    r = await storm.send(client, "open_payment", path, me, None, key=uuid.uuid4().hex)
    if r.status_code != 201:
        assert r.status_code == 409, r.text  # expired meanwhile
        return False
    payment = r.json()
    if method == "bank_transfer":
        reference = f"BANK-{uuid.uuid4().hex[:12]}"
        storm.bank_references.append(reference)
        body = {"amount_fen": order["total_fen"], "bank_reference": reference}
        path = f"{API}/payments/{payment['payment_id']}/confirm"
        r = await storm.send(client, "confirm", path, storm.admin, body)
        # 409: the first attempt, killed before its answer, had confirmed it already.
        assert r.status_code in (200, 409), r.text
    else:
        try:
            intent = await asyncio.to_thread(storm.localstripe.pay, payment["provider_reference"])
        except httpx.HTTPStatusError:
            return False  # the jobs cancelled the expired order's intent before the buyer paid
        if intent["status"] != "succeeded":
            return False
        # Stripe's delivery: sent again, the same event, until it is answered.
        payload = json.dumps(event("payment_intent.succeeded", intent), separators=(",", ":"))
        signed = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET, int(time.time())),
        }
        path = f"{API}/webhooks/stripe"
        r = await storm.send(client, "webhook", path, signed, content=payload)
        assert r.status_code == 200, r.text
    now = await storm.get(client, f"{API}/orders/{order['id']}", me)
    return bool(now["status"] == "paid")


async def _after_payment(
    storm: Storm,
    client: httpx.AsyncClient,
    shop: Shop,
    buyer: User,
    order: dict[str, Any],
    rnd: random.Random,
) -> None:
    me = _bearer(buyer)
    line = order["merchant_orders"][0]["lines"][0]
    owner = shop.owners[uuid.UUID(order["merchant_orders"][0]["merchant_id"])]
    choice = rnd.random()
    if choice < 0.2:
        r = await storm.send(client, "cancel", f"{API}/orders/{order['id']}/cancel", me, {})
        assert r.status_code in (200, 409), r.text
        return
    if choice < 0.5:
        await _refund(storm, client, me, owner, order, line)  # before shipping: back to stock
        return
    for mo in order["merchant_orders"]:
        mine = shop.owners[uuid.UUID(mo["merchant_id"])]
        ship = {"carrier": "SF", "tracking_no": f"SF{uuid.uuid4().hex[:10]}"}
        r = await storm.send(client, "ship", f"{API}/merchant-orders/{mo['id']}/ship", mine, ship)
        assert r.status_code in (200, 409), r.text
        if rnd.random() < 0.5:  # else the jobs complete it
            path = f"{API}/merchant-orders/{mo['id']}/confirm-receipt"
            r = await storm.send(client, "receipt", path, me, {})
            assert r.status_code in (200, 409), r.text
    if rnd.random() < 0.4:
        await _refund(storm, client, me, owner, order, line)  # after shipping: not restocked


async def _refund(
    storm: Storm,
    client: httpx.AsyncClient,
    me: dict[str, str],
    owner: dict[str, str],
    order: dict[str, Any],
    line: dict[str, Any],
) -> None:
    body = {"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "品相不好"}
    path = f"{API}/orders/{order['id']}/refunds"
    r = await storm.send(client, "refund", path, me, body, key=uuid.uuid4().hex)
    if r.status_code != 201:
        assert r.status_code == 409, r.text
        return
    refund = r.json()
    r = await storm.send(client, "approve", f"{API}/refunds/{refund['id']}/approve", owner, {})
    assert r.status_code in (200, 409), r.text
    if order["payment_method"] == "bank_transfer":
        reference = f"BACK-{uuid.uuid4().hex[:12]}"
        path = f"{API}/refunds/{refund['id']}/mark-paid"
        r = await storm.send(
            client, "refund_paid", path, storm.admin, {"bank_reference": reference}
        )
        assert r.status_code in (200, 409), r.text


async def _admin(storm: Storm, client: httpx.AsyncClient) -> None:
    """Settlement runs for today, and every statement awaiting payout paid by bank."""
    while not storm.stop.is_set():
        await asyncio.sleep(0.8)
        today = datetime.now(SHANGHAI).date().isoformat()
        r = await storm.send(
            client,
            "settlement_run",
            f"{API}/settlements/runs",
            storm.admin,
            {"period_end": today},
            key=uuid.uuid4().hex,
        )
        assert r.status_code == 200, r.text
        page = await storm.get(client, f"{API}/settlements?status=pending_payout", storm.admin)
        for statement in page["items"]:
            path = f"{API}/settlements/{statement['id']}/mark-paid"
            body = {"bank_reference": f"PAYOUT-{statement['id']}"}
            r = await storm.send(client, "payout", path, storm.admin, body)
            assert r.status_code in (200, 409), r.text


# The test ----------------------------------------------------------------------------------------


@pytest.fixture
def fresh_url() -> Iterator[str]:
    """A fresh database of its own, migrated by `shanhai migrate`; dropped afterwards."""
    with fresh_database_url() as url:
        shanhai(url, "migrate")
        yield url


@pytest.fixture
async def fresh(fresh_url: str) -> AsyncIterator[tuple[str, AsyncSession]]:
    """The fresh database and a session on it."""
    engine = create_engine(fresh_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            yield fresh_url, session
    finally:
        await engine.dispose()


async def test_kill_9_of_every_process_mid_storm_loses_and_doubles_nothing(
    fresh: tuple[str, AsyncSession], localstripe: LocalStripe, tmp_path: Path
) -> None:
    database_url, session = fresh
    products, owners, stock = [], {}, {}
    for price in (1200, 3450):
        merchant, owner = await make_merchant(session)
        owners[merchant.id] = _bearer(owner)
        for k in (0, 7):
            start = HOT_STOCK if not products else STOCK
            products.append(await make_product(session, merchant, stock=start, price_fen=price + k))
            stock[products[-1].id] = start
    buyers = [await make_user(session) for _ in range(BUYERS)]
    admin = await make_user(session, role=Role.admin)
    shop = Shop(products, owners)

    with cluster(database_url, localstripe, tmp_path) as procs:
        storm = Storm([p.base for p in procs if p.base], localstripe, _bearer(admin))
        storm.up.set()
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            tasks = [
                asyncio.create_task(_buyer(storm, client, shop, b, n)) for n, b in enumerate(buyers)
            ]
            tasks.append(asyncio.create_task(_admin(storm, client)))
            await asyncio.sleep(STORM_BEFORE_KILL)
            for t in tasks:
                assert not t.done(), t.result()

            # Checkouts of the first product are caught half way when the processes die: each
            # has committed the claim of its Idempotency-Key and waits for the product's row,
            # which the test holds. Whatever else runs at that moment dies too.
            async with _row_locked(database_url, products[0]):
                caught = await _caught(session, storm, products[0])
                storm.up.clear()
                killed_at = time.monotonic()
                for p in procs:  # all within microseconds: no process finishes its work
                    p.kill()
            for p in procs:
                p.reap()
                p.start()
            await asyncio.to_thread(_wait_healthy, procs)
            storm.restarted_at = time.monotonic()
            storm.up.set()

            await asyncio.sleep(STORM_AFTER_RESTART)
            storm.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            balances = await storm.get(client, f"{API}/ledger/balances", storm.admin)
        for p in procs:
            p.stop()
        logs = {p.name: p.log.read_text(errors="replace") for p in procs}

    # The crash hit requests in flight, and each of them was answered after the restart.
    lost = [s for s in storm.sent if s.lost]
    # The checkouts caught half way had claimed their keys: their retries went through.
    for s in caught:
        assert s.lost and (s.status, s.code) in ((201, None), (409, "insufficient_stock")), s
    for s in lost:
        assert s.answered_at - storm.restarted_at < ANSWER_WITHIN, s
    assert not [s for s in storm.sent if s.status is not None and s.status >= 500], [
        (s.kind, s.status, s.code) for s in storm.sent if s.status and s.status >= 500
    ]
    for name, log in logs.items():
        assert "Traceback" not in log, (name, log[log.index("Traceback") :][:3000])
    assert time.monotonic() - killed_at < 60
    kinds = Counter(s.kind for s in storm.sent if s.status in (200, 201))
    for kind in (
        "checkout",
        "open_payment",
        "confirm",
        "webhook",
        "approve",
        "ship",
        "settlement_run",
    ):
        assert kinds[kind] > 0, kinds

    await session.commit()
    await _assert_orders_whole(session, storm)
    await _assert_refunds_whole(session)
    stuck = await session.scalar(
        select(func.count()).where(IdempotencyKey.status == IdempotencyStatus.in_progress)
    )
    assert stuck == 0, "a claim of a killed request outlived its retry"
    await _assert_paid_once(session, storm)
    await _assert_stock_conserved(session, products, stock)
    await _assert_settled_once(session)
    await _assert_ledger_zero(session, balances)
    # The jobs had work during the storm.
    reasons = Counter(await session.scalars(select(Order.cancel_reason)))
    assert reasons["payment_timeout"] > 0, reasons
    completed = await session.scalar(
        select(func.count()).where(MerchantOrder.status == MerchantOrderStatus.completed)
    )
    assert completed, "nothing completed"


@asynccontextmanager
async def _row_locked(database_url: str, product: Product) -> AsyncIterator[None]:
    """Hold the product's row lock for the block."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(select(Product.id).where(Product.id == product.id).with_for_update())
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def _caught(
    session: AsyncSession, storm: Storm, product: Product, at_least: int = 2, within: float = 10
) -> list[Sent]:
    """The checkouts of `product` waiting for its row, once `at_least` of them have committed
    the claim of their Idempotency-Key."""
    deadline = time.monotonic() + within
    while True:
        waiting = {
            s.key: s
            for s in storm.sent
            if s.kind == "checkout"
            and not s.answered_at
            and str(product.id) in {line["product_id"] for line in s.body["lines"]}
        }
        claimed = list(
            await session.scalars(
                select(IdempotencyKey.key).where(
                    IdempotencyKey.key.in_(list(waiting)),
                    IdempotencyKey.status == IdempotencyStatus.in_progress,
                )
            )
        )
        await session.commit()
        if len(claimed) >= at_least:
            return [waiting[key] for key in claimed]
        assert time.monotonic() < deadline, f"{len(claimed)} checkouts caught"
        await asyncio.sleep(0.02)


async def _assert_orders_whole(session: AsyncSession, storm: Storm) -> None:
    """Every order answered 201 exists with exactly the lines of its answer, and no other."""
    lines: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for order_id, product_id, quantity in await session.execute(
        select(OrderLine.order_id, OrderLine.product_id, OrderLine.quantity)
    ):
        lines[str(order_id)].append((str(product_id), quantity))
    order_ids = {str(i) for i in await session.scalars(select(Order.id))}
    assert storm.created
    for order in storm.created:
        assert order["id"] in order_ids, order
        answered = sorted(
            (ln["product_id"], ln["quantity"])
            for mo in order["merchant_orders"]
            for ln in mo["lines"]
        )
        assert sorted(lines[order["id"]]) == answered, order["id"]
    assert all(lines[i] for i in order_ids)
    # Nothing was made twice: every order in the database is one a buyer was answered (a retry
    # of a checkout that had committed before its process died replayed the same order).
    assert len({o["id"] for o in storm.created}) == len(storm.created)
    assert order_ids == {o["id"] for o in storm.created}


async def _assert_refunds_whole(session: AsyncSession) -> None:
    """Each refund that took effect is on its lines and its order, whole: a line's refunded
    quantity is the sum of its refunds' lines (on parts not cancelled: a cancellation refunds
    the rest of the order without lines), an order's refunded amount the sum of its refunds (a
    payment that came after its order was cancelled is returned apart from the order's money)."""
    applied = [RefundStatus.approved, RefundStatus.succeeded, RefundStatus.failed]
    by_line: dict[uuid.UUID, int] = defaultdict(int)
    for line_id, quantity in await session.execute(
        select(RefundLine.order_line_id, RefundLine.quantity)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.status.in_(applied))
    ):
        by_line[line_id] += quantity
    rows = await session.execute(
        select(OrderLine.id, OrderLine.refunded_quantity)
        .join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
        .where(MerchantOrder.status != MerchantOrderStatus.cancelled)
    )
    for line_id, refunded in rows:
        assert refunded == by_line[line_id], line_id
    by_order: dict[uuid.UUID, int] = defaultdict(int)
    for order_id, amount in await session.execute(
        select(Refund.order_id, Refund.amount_fen).where(
            Refund.status.in_(applied), Refund.kind != RefundKind.late_payment
        )
    ):
        by_order[order_id] += amount
    for order_id, refunded_fen in await session.execute(select(Order.id, Order.refunded_fen)):
        assert refunded_fen == by_order[order_id], order_id


async def _assert_paid_once(session: AsyncSession, storm: Storm) -> None:
    """No order has two succeeded payments; each bank reference confirmed one payment; each
    payment was posted to the ledger once."""
    succeeded = Counter(
        await session.scalars(
            select(Payment.order_id).where(Payment.status == PaymentStatus.succeeded)
        )
    )
    assert succeeded and max(succeeded.values()) == 1, succeeded.most_common(3)
    references = Counter(
        await session.scalars(
            select(Payment.bank_reference).where(Payment.bank_reference.is_not(None))
        )
    )
    assert references and max(references.values()) == 1
    assert set(references) <= set(storm.bank_references)
    captured = Counter(
        payment_id
        for payment_id, _ in await session.execute(
            select(LedgerEntry.payment_id, LedgerEntry.txn_id)
            .where(LedgerEntry.kind.in_(["payment_captured", "late_payment_captured"]))
            .distinct()
        )
    )
    succeeded_ids = set(
        await session.scalars(select(Payment.id).where(Payment.status == PaymentStatus.succeeded))
    )
    assert set(captured) == succeeded_ids
    assert max(captured.values()) == 1, captured.most_common(3)


async def _assert_stock_conserved(
    session: AsyncSession, products: list[Product], start: dict[uuid.UUID, int]
) -> None:
    """How the code moves stock (app/orders, app/payments, app/refunds):
    - checkout takes `quantity` from `stock` (conditional UPDATE);
    - payment adds `quantity` to `sold_units`;
    - cancelling an unshipped order (the buyer's cancel, or expiry by the jobs) gives back
      `quantity - refunded_quantity` to `stock` (and takes it off `sold_units` if it was paid);
    - an approved refund gives units back to `stock` (and takes them off `sold_units`) only if
      its merchant order had not shipped (status paid or pending_payment) at approval; units
      refunded after shipping stay with the buyer: not restocked, still counted as sold.
    So per product, at any moment:
        starting stock = stock
                       + units on merchant orders not cancelled, less the restocked refunds
    where the second term is split into units awaiting payment (pending_payment) and units
    sold (paid, shipped, completed), which the code keeps in `products.sold_units`.
    A refund was restocked when its approval came before its merchant order shipped."""
    held: dict[uuid.UUID, int] = defaultdict(int)
    sold: dict[uuid.UUID, int] = defaultdict(int)
    rows = await session.execute(
        select(
            OrderLine.id,
            OrderLine.product_id,
            OrderLine.quantity,
            MerchantOrder.status,
            MerchantOrder.shipped_at,
        ).join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
    )
    line_info = {}
    for line_id, product_id, quantity, status, shipped_at in rows:
        line_info[line_id] = (product_id, status, shipped_at)
        if status != MerchantOrderStatus.cancelled:
            held[product_id] += quantity
            if status != MerchantOrderStatus.pending_payment:
                sold[product_id] += quantity
    refunded = await session.execute(
        select(RefundLine.order_line_id, RefundLine.quantity, Refund.decided_at)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(
            Refund.kind != RefundKind.cancellation,
            Refund.status.in_([RefundStatus.approved, RefundStatus.succeeded, RefundStatus.failed]),
        )
    )
    for line_id, quantity, decided_at in refunded:
        product_id, status, shipped_at = line_info[line_id]
        if status == MerchantOrderStatus.cancelled:
            continue  # the cancellation gave back the rest of the line
        if shipped_at is None or decided_at < shipped_at:
            held[product_id] -= quantity
            sold[product_id] -= quantity
    for product in products:
        stock, sold_units = (
            await session.execute(
                select(Product.stock, Product.sold_units).where(Product.id == product.id)
            )
        ).one()
        assert stock >= 0
        assert stock + held[product.id] == start[product.id], (
            product.name,
            stock,
            held[product.id],
        )
        assert sold_units == sold[product.id], (product.name, sold_units, sold[product.id])


async def _assert_settled_once(session: AsyncSession) -> None:
    """No merchant order in two statements; no statement paid twice."""
    settled = Counter(await session.scalars(select(SettlementLine.merchant_order_id)))
    assert settled, "no settlement ran during the storm"
    assert max(settled.values()) == 1, settled.most_common(3)
    per_merchant_day = Counter(
        (m, d)
        for m, d in await session.execute(select(Settlement.merchant_id, Settlement.period_end))
    )
    assert max(per_merchant_day.values()) == 1
    paid = list(
        await session.scalars(select(Settlement).where(Settlement.status == SettlementStatus.paid))
    )
    payouts = list(
        await session.execute(
            select(LedgerEntry.txn_id, LedgerEntry.merchant_id, LedgerEntry.amount_fen).where(
                LedgerEntry.kind == "payout_paid", LedgerEntry.account == LedgerAccount.payouts
            )
        )
    )
    assert len({txn for txn, _, _ in payouts}) == len(paid)
    by_merchant: dict[uuid.UUID, int] = defaultdict(int)
    for _, merchant_id, amount in payouts:
        by_merchant[merchant_id] += amount
    expected: dict[uuid.UUID, int] = defaultdict(int)
    for s in paid:
        expected[s.merchant_id] += s.net_fen
    assert by_merchant == expected


async def _assert_ledger_zero(session: AsyncSession, balances: dict[str, Any]) -> None:
    assert balances["total_fen"] == 0, balances
    assert sum(a["balance_fen"] for a in balances["accounts"]) == 0
    total = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)))
    assert total == 0
    unbalanced = (
        await session.execute(
            select(LedgerEntry.txn_id)
            .group_by(LedgerEntry.txn_id)
            .having(func.sum(LedgerEntry.amount_fen) != 0)
        )
    ).all()
    assert not unbalanced, unbalanced[:3]
