"""Property: over random sequences of orders, payments, partial refunds (before and after
settlement), completions, runs and payouts, money is conserved to the fen, no merchant order is
settled twice, every statement's net is the sum of its lines, and the ledger totals 0 after
every step.

The services are driven directly (one app's database, one event loop for all examples, small
data per example) so that 200 examples run in about a minute on each database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select

from app.core.config import Settings
from app.core.db import Database
from app.core.errors import AppError
from app.core.time import shanghai_today, utcnow
from app.models import (
    Base,
    LedgerEntry,
    MerchantOrder,
    MerchantOrderStatus,
    OrderLine,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
    Settlement,
    SettlementAdjustment,
    SettlementLine,
    SettlementStatus,
    User,
)
from app.orders.lifecycle import confirm_receipt, ship_merchant_order
from app.orders.schemas import OrderCreate
from app.orders.service import place_order
from app.payments.schemas import BankTransferConfirm
from app.payments.service import confirm_bank_transfer, open_payment
from app.refunds.provider import settle_with_provider
from app.refunds.schemas import RefundCreate
from app.refunds.service import approve_refund, request_refund
from app.settlement.payouts import mark_paid, payout_by_stripe
from app.settlement.service import run_settlement
from tests.conftest import KEEP_TABLES
from tests.fixtures.factories import make_merchant, make_product, make_user
from tests.fixtures.orders import ADDRESS
from tests.fixtures.settlement import owed_by_statements
from tests.fixtures.stripe import FakeConnect

CAST_TABLES = {"users", "merchants", "products"}

Step = tuple[Any, ...]
order = st.tuples(st.just("order"), st.sampled_from([(0,), (1,), (0, 1)]), st.integers(1, 3))
complete = st.tuples(st.just("complete"), st.integers(0, 7), st.sampled_from([3, 8, 20, 20]))
refund = st.tuples(st.just("refund"), st.integers(0, 7), st.integers(1, 3))
settle = st.tuples(st.just("run"), st.sampled_from([0, 1, 2, 3]))
pay = st.tuples(st.just("pay"), st.integers(0, 7), st.sampled_from(["bank", "stripe"]))
# A round: orders, completions, refunds before settlement, a run, payouts, refunds after it.
round_ = st.tuples(
    st.lists(order, min_size=1, max_size=2),
    st.lists(complete, min_size=1, max_size=1),
    st.lists(refund, max_size=1),
    st.lists(settle, max_size=1),
    st.lists(pay, max_size=1),
    st.lists(refund, max_size=1),
).map(lambda parts: [step for part in parts for step in part])
rounds = st.lists(round_, min_size=1, max_size=3)


@pytest.fixture
def ledger_balances() -> Iterator[None]:
    """This test checks the ledger after every step itself (and owns its event loop)."""
    yield


def _no_sync_commit(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET synchronous_commit TO off")
    cursor.close()


class World:
    """One database for every example: the cast stays, everything else is emptied between."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        if not self.db.serialises_writes:
            # Durability is not under test here: commits need not wait for the disk.
            event.listen(self.db.engine.sync_engine, "connect", _no_sync_commit)
        self.gateway = FakeConnect("http://127.0.0.1:9")
        self.users: dict[str, uuid.UUID] = {}
        self.merchants: list[uuid.UUID] = []
        self.products: list[uuid.UUID] = []

    async def setup(self) -> None:
        async with self.db.sessionmaker() as s:
            m1, o1 = await make_merchant(s)
            m2, o2 = await make_merchant(s)
            m2.stripe_account_id = "acct_property_m2"
            m2.payouts_enabled = True
            self.gateway.set_payouts_enabled("acct_property_m2", True)
            await s.commit()
            self.products = [
                (await make_product(s, m, price_fen=price, stock=10**8)).id
                for m, price in ((m1, 4333), (m2, 21001))
            ]
            self.merchants = [m1.id, m2.id]
            self.users = {
                "owner0": o1.id,
                "owner1": o2.id,
                "buyer": (await make_user(s)).id,
                "admin": (await make_user(s, role=Role.admin)).id,
            }

    async def clean(self, *, everything: bool = False) -> None:
        async with self.db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                keep = KEEP_TABLES if everything else KEEP_TABLES | CAST_TABLES
                if table.name not in keep:
                    await conn.execute(delete(table))

    async def user(self, s: Any, name: str) -> User:
        user = await s.get(User, self.users[name])
        assert user is not None
        return user


async def _order(w: World, s: Any, merchants: tuple[int, ...], qty: int) -> None:
    buyer = await w.user(s, "buyer")
    data = OrderCreate.model_validate(
        {
            "lines": [{"product_id": w.products[i], "quantity": qty} for i in merchants],
            "shipping_address": ADDRESS,
            "payment_method": "bank_transfer",
        }
    )
    order = await place_order(s, buyer, data, w.settings)
    await s.commit()
    payment = await open_payment(s, None, buyer, order.id, w.settings)
    await s.commit()
    await confirm_bank_transfer(
        s,
        None,
        await w.user(s, "admin"),
        payment.payment_id,
        BankTransferConfirm(amount_fen=order.total_fen, bank_reference=uuid.uuid4().hex),
        w.settings,
    )


async def _complete(w: World, s: Any, index: int, days_ago: int) -> None:
    """Ship and complete the paid merchant orders (all of them when `index` is even)."""
    mos = list(
        await s.scalars(
            select(MerchantOrder)
            .where(MerchantOrder.status == MerchantOrderStatus.paid)
            .order_by(MerchantOrder.created_at, MerchantOrder.id)
        )
    )
    if mos and index % 2:
        mos = [mos[index % len(mos)]]
    for mo in mos:
        owner = await w.user(s, f"owner{w.merchants.index(mo.merchant_id)}")
        await ship_merchant_order(s, owner, mo.id, "顺丰速运", "SF1")
        await confirm_receipt(s, await w.user(s, "buyer"), mo.id)
        mo.completed_at = utcnow() - timedelta(days=days_ago, minutes=1)


async def _refund(w: World, s: Any, index: int, qty: int) -> None:
    lines = list(await s.scalars(select(OrderLine).order_by(OrderLine.id)))
    if not lines:
        return
    line = lines[index % len(lines)]
    qty = min(qty, line.quantity - line.refunded_quantity)
    if qty <= 0:
        return
    data = RefundCreate.model_validate(
        {"lines": [{"order_line_id": line.id, "quantity": qty}], "reason": "测试"}
    )
    refund = await request_refund(s, await w.user(s, "buyer"), line.order_id, data)
    await approve_refund(s, await w.user(s, "admin"), refund.id)
    await settle_with_provider(s, None, refund.id)


async def _pay(w: World, s: Any, index: int, method: str) -> None:
    pending = list(
        await s.scalars(
            select(Settlement)
            .where(Settlement.status == SettlementStatus.pending_payout)
            .order_by(Settlement.created_at, Settlement.id)
        )
    )
    if not pending:
        return
    statement = pending[index % len(pending)]
    admin = await w.user(s, "admin")
    if method == "bank":
        await mark_paid(s, admin, statement.id, f"BANK-{index}")
    else:
        await payout_by_stripe(s, w.gateway, admin, statement.id)


async def apply(w: World, step: Step) -> None:
    async with w.db.sessionmaker() as s:
        try:
            if step[0] == "order":
                await _order(w, s, step[1], step[2])
            elif step[0] == "complete":
                await _complete(w, s, step[1], step[2])
            elif step[0] == "refund":
                await _refund(w, s, step[1], step[2])
            elif step[0] == "run":
                await run_settlement(
                    s,
                    period_end=shanghai_today() - timedelta(days=step[1]),
                    now=utcnow(),
                    refund_window_days=7,
                    actor_id=None,
                )
            else:
                await _pay(w, s, step[1], step[2])
            await s.commit()
        except AppError:
            await s.rollback()  # a refusal (e.g. payouts_not_enabled): nothing written


async def check(w: World, *, full: bool) -> None:
    """After every step: the ledger totals 0, each transaction balances, no merchant order is
    settled twice. After every round (`full`): statements and the conservation of money."""
    async with w.db.sessionmaker() as s:
        total = await s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)))
        assert total == 0
        unbalanced = (
            await s.execute(
                select(LedgerEntry.txn_id)
                .group_by(LedgerEntry.txn_id)
                .having(func.sum(LedgerEntry.amount_fen) != 0)
            )
        ).all()
        assert unbalanced == []
        lines = await s.scalar(select(func.count()).select_from(SettlementLine))
        distinct = await s.scalar(
            select(func.count(func.distinct(SettlementLine.merchant_order_id)))
        )
        assert lines == distinct, "a merchant order settled twice"
        if full:
            await _check_statements(s)
            await _check_conservation(s, w)


async def _check_statements(s: Any) -> None:
    line_nets = dict(
        (
            await s.execute(
                select(SettlementLine.settlement_id, func.sum(SettlementLine.net_fen)).group_by(
                    SettlementLine.settlement_id
                )
            )
        ).all()
    )
    adjustments = dict(
        (
            await s.execute(
                select(
                    SettlementAdjustment.settlement_id, func.sum(SettlementAdjustment.amount_fen)
                ).group_by(SettlementAdjustment.settlement_id)
            )
        ).all()
    )
    for st_ in await s.scalars(select(Settlement)):
        assert st_.net_fen == int(line_nets.get(st_.id, 0)) - int(adjustments.get(st_.id, 0))
        assert st_.adjustments_fen == int(adjustments.get(st_.id, 0))
        assert (st_.status == SettlementStatus.carried_forward) == (st_.net_fen < 0)


async def _check_conservation(s: Any, w: World) -> None:
    """paid in = paid out + refunded + commission + still owed (from the rows), and the ledger
    agrees with the rows on what each merchant is owed."""
    paid_in = await s.scalar(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.status == PaymentStatus.succeeded
        )
    )
    paid_out = await s.scalar(
        select(func.coalesce(func.sum(Settlement.net_fen), 0)).where(
            Settlement.status == SettlementStatus.paid
        )
    )
    refunded = await s.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.status.in_([RefundStatus.approved, RefundStatus.succeeded])
        )
    )
    commission = await s.scalar(select(func.coalesce(func.sum(MerchantOrder.commission_fen), 0)))
    owed = 0
    for merchant_id in w.merchants:
        unpaid, not_settled = await owed_by_statements(s, merchant_id)
        owed += unpaid + not_settled
        payable = await s.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.merchant_id == merchant_id,
                LedgerEntry.account.in_(["merchant_payable", "payouts"]),
            )
        )
        assert -int(payable or 0) == unpaid + not_settled
    assert paid_in == paid_out + refunded + commission + owed


def test_settlement_conserves_money(settings: Settings) -> None:
    world = World(settings.model_copy(update={"commission_rate_bps": 733}))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(world.setup())

        @hsettings(
            max_examples=int(os.environ.get("SETTLEMENT_PROPERTY_EXAMPLES", "200")),
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(rounds)
        def example(sequence: list[list[Step]]) -> None:
            async def body() -> None:
                try:
                    for steps in sequence:
                        for step in steps:
                            await apply(world, step)
                            await check(world, full=False)
                        await check(world, full=True)
                finally:
                    await world.clean()

            loop.run_until_complete(body())

        example()
    finally:
        loop.run_until_complete(world.clean(everything=True))
        loop.run_until_complete(world.db.dispose())
        loop.close()
