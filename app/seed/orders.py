"""A year of demo orders: Chun'an individuals and organisations buying from Batang, in every state.

`seed_orders` plays the plan of `app.seed.order_plan` through the real services (checkout, the
bank transfer confirmed by the demo admin, shipping and refund decisions by the merchant's owner,
receipt by the buyer, cancellations by the buyer and by the payment deadline, refunds), so stock,
`sold_units`, the ledger and the audit trail stay consistent, and then moves each order's
timestamps, its payment's, refunds', ledger entries' and audit events' back to the planned
moments with plain UPDATEs. Products are topped up first (audited stock adjustments by their
owner, dated the day before the first order) so that the year never runs out of stock.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, Update, bindparam, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.schemas import StockAdjustmentCreate
from app.catalog.service import adjust_stock
from app.core.config import Settings
from app.models import (
    AuditEvent,
    LedgerEntry,
    LedgerKind,
    Merchant,
    MerchantOrder,
    MerchantStatus,
    Order,
    Payment,
    PaymentMethod,
    Product,
    ProductStatus,
    Refund,
    RefundKind,
    StockAdjustment,
    User,
)
from app.orders.lifecycle import auto_complete_one, confirm_receipt, ship_merchant_order
from app.orders.schemas import OrderCreate, OrderLineCreate, OrderRead, ShippingAddress
from app.orders.service import place_order
from app.payments.schemas import BankTransferConfirm
from app.payments.service import buyer_cancel, cancel_order, confirm_bank_transfer, open_payment
from app.refunds.provider import mark_refund_paid, settle_with_provider
from app.refunds.schemas import RefundCreate, RefundLineCreate
from app.refunds.service import approve_refund, reject_refund, request_refund
from app.seed.order_plan import (
    BUYERS,
    REJECT_REASON,
    SEED,
    Fate,
    Item,
    OrderPlan,
    daytime,
    local_time,
    plan_orders,
)

# --- playing the plan through the services ---------------------------------------------------


@dataclass
class OrdersSeeded:
    added: int
    present: int
    by_status: dict[str, int]
    merchant_orders_by_status: dict[str, int]


async def seed_orders(
    session: AsyncSession,
    settings: Settings,
    *,
    merchants: dict[int, Merchant],
    owner_emails: dict[int, str],
    admin_email: str,
    now: datetime,
) -> OrdersSeeded:
    """Place and play the year of orders, unless any order exists (then add none).

    Commits along the way (cancellations and refunds commit before they settle); the caller
    commits the rest.
    """
    added = 0
    # A year of history placed in a second: the buyers' abuse limits do not apply to it.
    settings = settings.model_copy(
        update={"unpaid_orders_per_buyer": 0, "checkouts_per_hour_per_buyer": 0}
    )
    if await session.scalar(select(Order.id).limit(1)) is None:
        added = await _play(session, settings, merchants, owner_emails, admin_email, now)
    await session.flush()
    by_status = {
        str(status): int(count)
        for status, count in await session.execute(
            select(Order.status, func.count()).group_by(Order.status)
        )
    }
    mo_by_status = {
        str(status): int(count)
        for status, count in await session.execute(
            select(MerchantOrder.status, func.count()).group_by(MerchantOrder.status)
        )
    }
    return OrdersSeeded(added, sum(by_status.values()), by_status, mo_by_status)


async def _play(
    session: AsyncSession,
    settings: Settings,
    merchants: dict[int, Merchant],
    owner_emails: dict[int, str],
    admin_email: str,
    now: datetime,
) -> int:
    number_of = {m.id: no for no, m in merchants.items()}
    rows = await session.execute(
        select(
            Product.id,
            Product.merchant_id,
            Product.name,
            Product.category_slug,
            Product.unit,
            Product.stock,
            Product.shelf_life_days,
        )
        .join(Merchant, Merchant.id == Product.merchant_id)
        .where(
            Product.merchant_id.in_(list(number_of)),
            Product.status == ProductStatus.active,
            Merchant.status == MerchantStatus.approved,
        )
    )
    catalogue = [
        Item(
            r.id,
            r.merchant_id,
            number_of[r.merchant_id],
            r.name,
            r.category_slug,
            r.unit,
            r.stock,
            r.shelf_life_days,
        )
        for r in rows
    ]
    if not catalogue:
        return 0
    emails = [b.email for b in BUYERS] + list(owner_emails.values()) + [admin_email]
    users = {u.email: u for u in await session.scalars(select(User).where(User.email.in_(emails)))}
    owners = {
        merchants[no].id: users[email] for no, email in owner_emails.items() if email in users
    }
    admin = users[admin_email]
    plans = [
        p
        for p in plan_orders(
            now, catalogue, settings.payment_timeout_minutes, settings.auto_complete_days
        )
        if p.buyer.email in users
    ]
    if not plans:
        return 0
    await _top_up(session, plans, owners, plans[0].created)
    rng = random.Random(SEED + 1)  # noqa: S311 - carriers, tracking numbers, bank references
    backdating = _Backdating()
    for plan in plans:
        buyer = users[plan.buyer.email]
        await _play_one(session, settings, plan, buyer, admin, owners, rng, backdating)
    await backdating.write(session)
    return len(plans)


async def _top_up(
    session: AsyncSession,
    plans: list[OrderPlan],
    owners: dict[uuid.UUID, User],
    first: datetime,
) -> None:
    """Stock up, once before the year, whatever the year will sell beyond today's stock, so
    every product still has stock after it (an adjustment by the owner, kept and audited)."""
    need: Counter[Item] = Counter()
    for plan in plans:
        for item, quantity in plan.lines:
            need[item] += quantity
    run_started = datetime.now(UTC) - timedelta(seconds=1)
    topped: list[uuid.UUID] = []
    for item in sorted(need, key=lambda i: (i.merchant_no, i.name)):
        reserve = max(10, item.stock // 4)
        if need[item] + reserve <= item.stock:
            continue
        await adjust_stock(
            session,
            owners[item.merchant_id],
            item.id,
            StockAdjustmentCreate(
                delta=need[item] + reserve - item.stock, reason="年度备货：按去年销量补充库存"
            ),
        )
        topped.append(item.id)
    if topped:
        at = daytime(local_time(first).date() - timedelta(days=1), random.Random(SEED))  # noqa: S311
        await session.execute(
            update(StockAdjustment)
            .where(
                StockAdjustment.product_id.in_(topped), StockAdjustment.created_at >= run_started
            )
            .values(created_at=at)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(AuditEvent)
            .where(
                AuditEvent.action == "product.stock_adjusted",
                AuditEvent.subject_id.in_([str(i) for i in topped]),
                AuditEvent.at >= run_started,
            )
            .values(at=at)
            .execution_options(synchronize_session=False)
        )


_CARRIERS = (
    ("中国邮政EMS", "11", 11),
    ("京东物流", "JDVA", 11),
    ("中通快递", "7", 13),
    ("德邦快递", "DPK", 12),
)


def _tracking(plan: OrderPlan, rng: random.Random) -> tuple[str, str]:
    if any(item.fresh for item, _ in plan.lines):
        carrier, prefix, digits = "顺丰速运（冷链）", "SF", 13
    else:
        carrier, prefix, digits = rng.choice(_CARRIERS)
    return carrier, prefix + "".join(str(rng.randrange(10)) for _ in range(digits))


async def _play_one(
    session: AsyncSession,
    settings: Settings,
    plan: OrderPlan,
    buyer: User,
    admin: User,
    owners: dict[uuid.UUID, User],
    rng: random.Random,
    backdating: _Backdating,
) -> None:
    b = plan.buyer
    order = await place_order(
        session,
        buyer,
        OrderCreate(
            lines=[OrderLineCreate(product_id=item.id, quantity=q) for item, q in plan.lines],
            shipping_address=ShippingAddress(
                recipient=b.recipient, phone=b.phone, region_code=b.region_code, address=b.address
            ),
            payment_method=PaymentMethod.bank_transfer,
            note=plan.note,
        ),
        settings,
    )
    payment_id: uuid.UUID | None = None
    if plan.payment_opened is not None:
        payment_id = (await open_payment(session, None, buyer, order.id, settings)).payment_id
    if plan.paid is not None:
        assert payment_id is not None
        reference = f"HZB{local_time(plan.paid):%Y%m%d}{rng.randrange(10**6):06d}"
        await confirm_bank_transfer(
            session,
            None,
            admin,
            payment_id,
            BankTransferConfirm(amount_fen=order.total_fen, bank_reference=reference),
            settings,
        )
    if plan.fate == Fate.payment_timeout:
        await cancel_order(session, None, order.id, "payment_timeout", None)
    elif plan.fate in (Fate.buyer_cancelled, Fate.cancelled_after_payment):
        await buyer_cancel(session, None, buyer, order.id)
    if plan.shipped is not None:
        carrier, tracking = _tracking(plan, rng)
        for mo in order.merchant_orders:
            await ship_merchant_order(session, owners[mo.merchant_id], mo.id, carrier, tracking)
    if plan.completed is not None:
        for mo in order.merchant_orders:
            if plan.auto_completed:
                await auto_complete_one(session, mo.id)
            else:
                await confirm_receipt(session, buyer, mo.id)
    refunds = await _play_refunds(session, plan, order, buyer, admin, owners)
    refunds += await _cancellation_refund(session, plan, admin, order.id)
    backdating.add(settings, plan, order, payment_id, refunds)


@dataclass(frozen=True)
class _RefundTimes:
    refund_id: uuid.UUID
    requested: datetime
    decided: datetime | None
    settled: datetime | None


async def _play_refunds(
    session: AsyncSession,
    plan: OrderPlan,
    order: OrderRead,
    buyer: User,
    admin: User,
    owners: dict[uuid.UUID, User],
) -> list[_RefundTimes]:
    if plan.refund_requested is None:
        return []
    line_of = {line.product_id: line for mo in order.merchant_orders for line in mo.lines}
    mo_of = {line.id: mo for mo in order.merchant_orders for line in mo.lines}
    if plan.fate == Fate.fully_refunded:
        asks = [[(line.id, line.quantity) for line in mo.lines] for mo in order.merchant_orders]
    else:
        asks = [[(line_of[pid].id, quantity) for pid, quantity in plan.refund_lines]]
    done: list[_RefundTimes] = []
    for k, ask in enumerate(asks):
        step = timedelta(minutes=k)
        refund = await request_refund(
            session,
            buyer,
            order.id,
            RefundCreate(
                lines=[RefundLineCreate(order_line_id=lid, quantity=q) for lid, q in ask],
                reason=plan.refund_reason,
            ),
        )
        owner = owners[mo_of[ask[0][0]].merchant_id]
        if plan.fate == Fate.refund_rejected:
            await reject_refund(session, owner, refund.id, REJECT_REASON)
        elif plan.fate != Fate.refund_requested:
            await approve_refund(session, owner, refund.id)
            await settle_with_provider(session, None, refund.id)
            if plan.refund_settled is not None:  # else awaiting the admin's transfer
                await _pay_back(session, admin, refund.id, plan.refund_settled + step)
        done.append(
            _RefundTimes(
                refund.id,
                plan.refund_requested + step,
                plan.refund_decided + step if plan.refund_decided else None,
                plan.refund_settled + step if plan.refund_settled else None,
            )
        )
    return done


@dataclass
class _Backdating:
    """The planned moments of every played order, written at the end in a few executemany
    UPDATEs (one round trip each, rather than ten per order)."""

    orders: list[dict[str, object]] = field(default_factory=list)
    merchant_orders: list[dict[str, object]] = field(default_factory=list)
    payments: list[dict[str, object]] = field(default_factory=list)
    refunds: list[dict[str, object]] = field(default_factory=list)
    paid_entries: list[dict[str, object]] = field(default_factory=list)
    decided_entries: list[dict[str, object]] = field(default_factory=list)
    settled_entries: list[dict[str, object]] = field(default_factory=list)
    audit: list[dict[str, object]] = field(default_factory=list)

    async def write(self, session: AsyncSession) -> None:
        statements: list[tuple[Update, list[dict[str, object]]]] = [
            (_by_key(_table(Order), ["id"], _ORDER_COLUMNS), self.orders),
            (_by_key(_table(MerchantOrder), ["id"], _MO_COLUMNS), self.merchant_orders),
            (_by_key(_table(Payment), ["id"], _PAYMENT_COLUMNS), self.payments),
            (_by_key(_table(Refund), ["id"], _REFUND_COLUMNS), self.refunds),
            (
                _entries(["order_id"], [LedgerKind.payment_captured, LedgerKind.commission]),
                self.paid_entries,
            ),
            (
                _entries(
                    ["refund_id"], [LedgerKind.refund_approved, LedgerKind.commission_adjusted]
                ),
                self.decided_entries,
            ),
            (_entries(["refund_id"], [LedgerKind.refund_paid]), self.settled_entries),
            (
                _by_key(_table(AuditEvent), ["subject_type", "subject_id"], ["at"]),
                self.audit,
            ),
        ]
        for statement, rows in statements:
            if rows:
                await session.execute(statement, rows)

    def add(
        self,
        settings: Settings,
        plan: OrderPlan,
        order: OrderRead,
        payment_id: uuid.UUID | None,
        refunds: list[_RefundTimes],
    ) -> None:
        created, last = plan.created, plan.last_event
        for r in refunds:
            last = max(last, r.settled or r.decided or r.requested)
        self.orders.append(
            {
                "k_id": order.id,
                "v_order_no": f"SH{local_time(created):%Y%m%d}{order.order_no[10:]}",
                "v_created_at": created,
                "v_updated_at": last,
                "v_expires_at": created + timedelta(minutes=settings.payment_timeout_minutes),
                "v_paid_at": plan.paid,
                "v_cancelled_at": plan.cancelled,
                "v_completed_at": plan.completed,
            }
        )
        for mo in order.merchant_orders:
            self.merchant_orders.append(
                {
                    "k_id": mo.id,
                    "v_created_at": created,
                    "v_updated_at": last,
                    "v_shipped_at": plan.shipped,
                    "v_completed_at": plan.completed,
                    "v_cancelled_at": plan.cancelled,
                }
            )
        if payment_id is not None and plan.payment_opened is not None:
            self.payments.append(
                {
                    "k_id": payment_id,
                    "v_created_at": plan.payment_opened,
                    "v_updated_at": plan.paid or plan.cancelled or plan.payment_opened,
                    "v_succeeded_at": plan.paid,
                }
            )
        if plan.paid is not None:
            self.paid_entries.append({"k_order_id": order.id, "v_created_at": plan.paid})
            self._audit("payment", payment_id, plan.paid)
        if plan.cancelled is not None:
            self._audit("order", order.id, plan.cancelled)
        for r in refunds:
            self.refunds.append(
                {
                    "k_id": r.refund_id,
                    "v_created_at": r.requested,
                    "v_updated_at": r.settled or r.decided or r.requested,
                    "v_decided_at": r.decided,
                    "v_succeeded_at": r.settled,
                }
            )
            if r.decided is not None:
                self.decided_entries.append({"k_refund_id": r.refund_id, "v_created_at": r.decided})
                self._audit("refund", r.refund_id, r.decided)
            if r.settled is not None:
                self.settled_entries.append({"k_refund_id": r.refund_id, "v_created_at": r.settled})

    def _audit(self, subject_type: str, subject_id: uuid.UUID | None, at: datetime) -> None:
        if subject_id is not None:
            self.audit.append(
                {"k_subject_type": subject_type, "k_subject_id": str(subject_id), "v_at": at}
            )


_ORDER_COLUMNS = [
    "order_no", "created_at", "updated_at", "expires_at", "paid_at", "cancelled_at",
    "completed_at",
]  # fmt: skip
_MO_COLUMNS = ["created_at", "updated_at", "shipped_at", "completed_at", "cancelled_at"]
_PAYMENT_COLUMNS = ["created_at", "updated_at", "succeeded_at"]
_REFUND_COLUMNS = ["created_at", "updated_at", "decided_at", "succeeded_at"]


def _by_key(table: Table, keys: list[str], columns: list[str]) -> Update:
    """UPDATE table SET columns = :v_<column> WHERE keys = :k_<key>, for executemany."""
    return (
        table.update()
        .where(*(table.c[k] == bindparam(f"k_{k}", type_=table.c[k].type) for k in keys))
        .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    )


def _table(model: type[object]) -> Table:
    table = getattr(model, "__table__", None)
    assert isinstance(table, Table)
    return table


def _entries(keys: list[str], kinds: list[str]) -> Update:
    table = _table(LedgerEntry)
    return _by_key(table, keys, ["created_at"]).where(
        or_(*(table.c.kind == literal(kind) for kind in kinds))
    )


async def _pay_back(session: AsyncSession, admin: User, refund_id: uuid.UUID, at: datetime) -> None:
    """The demo admin records the bank transfer that paid a bank refund back."""
    reference = f"HZR{local_time(at):%Y%m%d}{refund_id.hex[:8].upper()}"
    await mark_refund_paid(session, admin, refund_id, reference)


async def _cancellation_refund(
    session: AsyncSession, plan: OrderPlan, admin: User, order_id: uuid.UUID
) -> list[_RefundTimes]:
    """The full refund of a paid order the buyer cancelled, dated at the cancellation."""
    if plan.cancelled is None or plan.paid is None:
        return []
    refund_id = await session.scalar(
        select(Refund.id).where(Refund.order_id == order_id, Refund.kind == RefundKind.cancellation)
    )
    if refund_id is None:
        return []
    settled = plan.cancelled + timedelta(minutes=1)
    await _pay_back(session, admin, refund_id, settled)
    return [_RefundTimes(refund_id, plan.cancelled, plan.cancelled, settled)]
