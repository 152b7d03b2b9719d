"""The demo data, seeded into the test database: Batang sellers, Chun'an buyers, a year of orders,
idempotent. The orders are seeded once per database (it takes seconds), the rest without them."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from app.core.security import verify_password
from app.core.time import SHANGHAI, utcnow
from app.merchants.uscc import is_valid
from app.models import (
    AssistanceClass,
    AuditEvent,
    BuyerType,
    LedgerAccount,
    LedgerEntry,
    Merchant,
    MerchantKind,
    MerchantOrder,
    MerchantOrderStatus,
    MerchantStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Product,
    ProductStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Role,
    Settlement,
    StockAdjustment,
    User,
)
from app.seed.demo import DEMO_PASSWORD, MERCHANTS, PRODUCTS, print_summary, seed_demo
from app.seed.order_plan import Fate, Item, plan_orders

BATANG_PLACES = {
    *("夏邛镇", "中咱镇", "措拉镇", "甲英镇", "地巫镇"),
    *("拉哇乡", "竹巴龙乡", "苏哇龙乡", "昌波乡", "亚日贡乡", "波密乡", "莫多乡", "松多乡"),
    *("波戈溪乡", "茶洛乡", "列衣乡", "德达乡"),
}
UNITS = {"斤", "kg", "克", "盒", "箱", "份", "套"}


async def _count(session, model) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _seeded(session):
    """The catalogue and accounts only: the year of orders has its own tests below."""
    summary = await seed_demo(session, orders=False)
    await session.commit()
    return summary


async def test_seeding_twice_adds_nothing_the_second_time(session):
    first = await _seeded(session)
    counts = [await _count(session, m) for m in (Merchant, User, Product)]
    assert first.added == {
        "merchants": len(MERCHANTS),
        "users": counts[1],
        "products": len(PRODUCTS),
    }
    second = await _seeded(session)
    assert second.total_added == 0
    assert [await _count(session, m) for m in (Merchant, User, Product)] == counts
    assert second.present == first.present


async def test_seeding_keeps_other_data_and_rows_a_demo_changed(session):
    await _seeded(session)
    merchant = await session.scalar(select(Merchant).order_by(Merchant.uscc).limit(1))
    merchant.name = "改过名字的合作社"
    await session.commit()
    await _seeded(session)
    await session.refresh(merchant)
    assert merchant.name == "改过名字的合作社"


async def test_merchants_are_batang_entities_with_valid_codes(session):
    await _seeded(session)
    merchants = list(await session.scalars(select(Merchant)))
    assert len(merchants) >= 10
    assert all(m.region_code == "513335" for m in merchants)
    assert all(is_valid(m.uscc) for m in merchants)
    prefixes = {
        MerchantKind.cooperative: "93513335",
        MerchantKind.enterprise: "91513335",
        MerchantKind.individual_business: "92513335",
        MerchantKind.village_collective: "N2513335",
    }
    for m in merchants:
        assert m.uscc.startswith(prefixes[m.kind]), (m.name, m.uscc)
    kinds = {m.kind for m in merchants}
    assert kinds == set(MerchantKind)
    assert any(m.uscc.startswith("N") for m in merchants if m.kind == "village_collective")
    assert len({m.township for m in merchants}) >= 8
    assert {m.township for m in merchants} <= BATANG_PLACES
    statuses = [m.status for m in merchants]
    assert statuses.count(MerchantStatus.pending) == 1
    assert statuses.count(MerchantStatus.suspended) == 1
    assert statuses.count(MerchantStatus.approved) >= 10
    for m in merchants:
        assert m.contact_phone.startswith("+861") and len(m.contact_phone) == 14
        assert m.households >= m.poverty_alleviated_households >= m.monitored_households >= 0
        assert m.bank_account_no.isdigit()
        assert m.name.startswith("巴塘县")
        assert (m.approved_at is None) == (m.status == MerchantStatus.pending)


def test_uscc_codes_are_fixed_not_random():
    # The idempotency key: the same codes on every run and every machine.
    codes = {m.name: m.uscc for m in MERCHANTS}
    assert codes["巴塘县松茸专业合作社"] == "93513335MA62U1A010"
    assert codes["巴塘县毛桃加工厂"] == "91513335MA62U1B02Y"
    assert codes["巴塘县拉哇乡卡日村股份经济合作社"] == "N2513335MA62U1H083"
    assert len(set(codes.values())) == len(MERCHANTS)


async def test_products_are_realistic_and_varied(session):
    await _seeded(session)
    products = list(await session.scalars(select(Product)))
    assert len(products) >= 60
    assert {p.category_slug for p in products} == {
        "mushrooms", "fruit", "meat", "grains", "specialties", "handicrafts", "gift-packs",
    }  # fmt: skip
    assert {p.unit for p in products} == UNITS
    assert {p.assistance_class for p in products} == set(AssistanceClass)
    assert all(p.price_fen > 0 and p.stock >= 0 for p in products)
    assert all(p.origin_township in BATANG_PLACES for p in products)
    assert len({(p.merchant_id, p.name) for p in products}) == len(products)
    by_status = {s: sum(p.status == s for p in products) for s in ProductStatus}
    assert by_status[ProductStatus.active] >= 50
    assert by_status[ProductStatus.pending_review] >= 3
    assert by_status[ProductStatus.inactive] == 1
    assert by_status[ProductStatus.rejected] == 1
    rejected = next(p for p in products if p.status == ProductStatus.rejected)
    assert rejected.status_reason


async def test_prices_follow_the_domain_anchors(session):
    await _seeded(session)
    products = {p.name: p for p in await session.scalars(select(Product))}

    def price(name: str) -> int:
        return products[name].price_fen

    fresh_matsutake = [p for n, p in products.items() if n.startswith("巴塘鲜松茸")]
    assert fresh_matsutake and all(21_000 <= p.price_fen <= 35_000 for p in fresh_matsutake)
    assert all(p.unit == "斤" for p in fresh_matsutake)
    assert 4_000 <= price("鲜牦牛肉（后腿）") <= 4_500
    assert 17_000 <= price("风干牦牛肉（原味）") <= 23_000
    assert 8_000 <= price("巴塘大红袍花椒") <= 10_000
    assert 350 <= price("巴塘高原红富士苹果") <= 1_000  # per kg
    assert 18_000 <= price("巴塘苹果礼盒（12枚装）") <= 22_000
    assert price("巴塘高原土蜂蜜") == 6_000


async def test_certificates_current_expired_and_missing(session):
    await _seeded(session)
    products = list(await session.scalars(select(Product)))
    certified = [p for p in products if p.cert_no]
    assert {p.cert_scheme for p in certified} == {"消费帮扶产品认定", "扶贫产品认定"}
    for p in certified:
        assert p.cert_issuer and p.cert_valid_from and p.cert_valid_to
        assert p.cert_valid_from < p.cert_valid_to
    assert len({p.cert_no for p in certified}) == len(certified)
    assert sum(p.cert_valid_to < date(2025, 1, 1) for p in certified) >= 2  # expired
    assert sum(p.cert_no is None for p in products) >= 3
    assert all(
        p.cert_scheme is None and p.cert_valid_to is None for p in products if p.cert_no is None
    )


async def test_demo_accounts(session):
    await _seeded(session)
    users = {u.email: u for u in await session.scalars(select(User))}
    admin, official = users["admin@shanhai.demo"], users["official@chunan.demo"]
    assert admin.role == Role.admin
    assert official.role == Role.official and official.region_code == "330127"
    buyers = [u for u in users.values() if u.role == Role.buyer]
    chunan = [u for u in buyers if u.region_code == "330127"]
    assert {u.buyer_type for u in chunan} >= {
        BuyerType.individual,
        BuyerType.budget_unit,
        BuyerType.union,
        BuyerType.enterprise,
        BuyerType.public_institution,
    }
    assert any(u.display_name == "淳安县机关事务管理中心" for u in chunan)
    assert any(u.display_name == "淳安县总工会" for u in chunan)
    assert any(u.region_code == "330106" for u in buyers)
    merchants = list(await session.scalars(select(Merchant)))
    for number, seed in enumerate(MERCHANTS, start=1):
        owner = users[f"owner{number}@batang.demo"]
        assert owner.role == Role.merchant and owner.merchant_role == "owner"
        assert owner.merchant_id == next(m.id for m in merchants if m.uscc == seed.uscc)
    # One hash, computed once, shared by every account.
    assert len({u.password_hash for u in users.values()}) == 1
    assert verify_password(DEMO_PASSWORD, admin.password_hash)


async def test_print_summary_lists_counts_and_accounts(session, capsys):
    summary = await _seeded(session)
    print_summary(summary)
    out = capsys.readouterr().out
    assert "shanhai-demo-2026" in out
    assert "admin@shanhai.demo" in out and "official@chunan.demo" in out
    assert "owner1@batang.demo" in out
    assert f"{len(PRODUCTS)}" in out


# --- the year of orders ----------------------------------------------------------------------

ORGANISATIONS = {
    BuyerType.budget_unit,
    BuyerType.union,
    BuyerType.enterprise,
    BuyerType.public_institution,
}


async def test_a_year_of_orders_in_every_state_seeded_once(session, settings, capsys):
    started = utcnow()
    first = await seed_demo(session, settings)
    await session.commit()
    finished = utcnow()
    assert 300 <= first.added["orders"] <= 400
    assert first.present["orders"] == first.added["orders"] == await _count(session, Order)

    orders = list(await session.scalars(select(Order)))
    merchant_orders = list(await session.scalars(select(MerchantOrder)))
    await _every_state(session, orders, merchant_orders)
    _organisations_and_seasons(orders)
    await _money_and_stock_agree(session, orders)
    await _timestamps_are_historical(session, settings, orders, merchant_orders, started, finished)

    second = await seed_demo(session, settings)
    await session.commit()
    assert second.added["orders"] == 0 and second.total_added == 0
    assert await _count(session, Order) == len(orders)
    assert second.orders_by_status == first.orders_by_status
    print_summary(second)
    out = capsys.readouterr().out
    assert "orders by status: pending_payment" in out and "shipped" in out
    assert "Nothing was missing" in out


async def _every_state(session, orders, merchant_orders) -> None:
    by_status = Counter(o.status for o in orders)
    assert set(by_status) == set(OrderStatus)
    assert by_status[OrderStatus.completed] > len(orders) / 2  # most
    assert 3 <= by_status[OrderStatus.pending_payment] <= 6
    assert {mo.status for mo in merchant_orders} == set(MerchantOrderStatus)
    reasons = Counter(o.cancel_reason for o in orders if o.status == OrderStatus.cancelled)
    assert reasons["payment_timeout"] >= 3 and reasons["buyer_cancelled"] >= 3
    refunds = list(await session.scalars(select(Refund)))
    kinds = Counter((r.kind, r.status) for r in refunds)
    assert kinds[(RefundKind.requested, RefundStatus.succeeded)] >= 4
    assert kinds[(RefundKind.requested, RefundStatus.rejected)] >= 2
    assert kinds[(RefundKind.requested, RefundStatus.requested)] >= 1  # awaiting a decision
    # paid by bank when the admin records the transfer: one is still awaiting it
    assert (
        kinds[(RefundKind.requested, RefundStatus.approved)] >= 1
    )  # (and any late refund the settlement demo approved)
    paid_back = [r for r in refunds if r.status == RefundStatus.succeeded]
    assert all(r.bank_reference for r in paid_back)
    assert len({r.bank_reference for r in paid_back}) == len(paid_back)
    assert all(r.bank_reference is None for r in refunds if r.status != RefundStatus.succeeded)
    assert kinds[(RefundKind.cancellation, RefundStatus.succeeded)] >= 2  # paid, then cancelled
    partly = [
        o for o in orders if o.status == OrderStatus.completed and 0 < o.refunded_fen < o.total_fen
    ]
    assert len(partly) >= 3
    assert all(o.refunded_fen == o.total_fen for o in orders if o.status == OrderStatus.refunded)
    rejected = [r for r in refunds if r.status == RefundStatus.rejected]
    assert all(r.reject_reason and r.decided_by for r in rejected)
    payments = list(await session.scalars(select(Payment)))
    assert {p.provider for p in payments} == {PaymentMethod.bank_transfer}
    assert all(p.confirmed_by for p in payments if p.status == PaymentStatus.succeeded)
    assert PaymentStatus.cancelled in {p.status for p in payments}


def _organisations_and_seasons(orders) -> None:
    types = Counter(o.buyer_type for o in orders)
    assert set(types) >= ORGANISATIONS | {BuyerType.individual}
    assert sum(types[t] for t in ORGANISATIONS) >= 60
    assert any(o.buyer_region_code == "330106" for o in orders)  # the Hangzhou buyer
    assert {o.buyer_region_code for o in orders} <= {"330127", "330106"}

    def per_day(months: set[int]) -> float:
        days = 92  # March–May and July–September both have 92 days
        return sum(o.created_at.astimezone(SHANGHAI).month in months for o in orders) / days

    assert per_day({7, 8, 9}) > 1.2 * per_day({3, 4, 5})  # matsutake season and Mid-Autumn


async def _money_and_stock_agree(session, orders) -> None:
    # The ledger: every transaction balances, and the grand total is 0.
    assert await session.scalar(select(func.sum(LedgerEntry.amount_fen))) == 0
    unbalanced = await session.scalar(
        select(func.count()).select_from(
            select(LedgerEntry.txn_id)
            .group_by(LedgerEntry.txn_id)
            .having(func.sum(LedgerEntry.amount_fen) != 0)
            .subquery()
        )
    )
    assert unbalanced == 0
    # Cash held is what was paid less what was refunded and paid back; the refund awaiting the
    # admin's transfer is still owed, in refunds_in_transit.
    cash = await session.scalar(
        select(func.sum(LedgerEntry.amount_fen)).where(
            LedgerEntry.account == LedgerAccount.platform_cash
        )
    )
    in_transit = await session.scalar(
        select(func.sum(LedgerEntry.amount_fen)).where(
            LedgerEntry.account == LedgerAccount.refunds_in_transit
        )
    )
    awaiting = sum(
        r.amount_fen for r in await session.scalars(select(Refund)) if r.status == "approved"
    )
    paid = sum(o.total_fen for o in orders if o.paid_at is not None)
    refunded = sum(o.refunded_fen for o in orders)
    assert awaiting > 0 and in_transit == -awaiting
    # ... and less what the settlement demo paid out to merchants
    paid_out = sum(
        st.net_fen for st in await session.scalars(select(Settlement)) if st.status == "paid"
    )
    assert cash == paid - refunded + awaiting - paid_out > 0

    # Stock: what was seeded and topped up, less every unit of an order that is not cancelled
    # (no refund in the demo comes before shipping, so none returned units to stock).
    products = {p.id: p for p in await session.scalars(select(Product))}
    seeded = {(s.merchant_no, s.name): s.stock for s in PRODUCTS}
    numbers = {m.id: no for no, m in enumerate(await _merchants_in_seed_order(session), 1)}
    added = dict(
        (await session.execute(
            select(StockAdjustment.product_id, func.sum(StockAdjustment.delta))
            .group_by(StockAdjustment.product_id)
        )).all()
    )  # fmt: skip
    open_orders = {o.id for o in orders if o.status != OrderStatus.cancelled}
    paid_orders = {o.id for o in orders if o.paid_at is not None and o.id in open_orders}
    taken: Counter[object] = Counter()
    sold: Counter[object] = Counter()
    for line in await session.scalars(select(OrderLine)):
        if line.order_id in open_orders:
            taken[line.product_id] += line.quantity
        if line.order_id in paid_orders:
            sold[line.product_id] += line.quantity
    assert sum(taken.values()) > 0
    for product in products.values():
        start = seeded[(numbers[product.merchant_id], product.name)]
        assert product.stock >= 0
        assert product.stock == start + added.get(product.id, 0) - taken[product.id], product.name
        assert product.sold_units == sold[product.id], product.name
    adjustments = list(await session.scalars(select(StockAdjustment)))
    assert adjustments and all(a.actor_id and a.delta > 0 for a in adjustments)
    first_order = min(o.created_at for o in orders)
    assert all(a.created_at < first_order for a in adjustments)


async def _merchants_in_seed_order(session) -> list[Merchant]:
    by_uscc = {m.uscc: m for m in await session.scalars(select(Merchant))}
    return [by_uscc[seed.uscc] for seed in MERCHANTS]


async def _timestamps_are_historical(
    session, settings, orders, merchant_orders, started, finished
) -> None:
    timeout = timedelta(minutes=settings.payment_timeout_minutes)
    year_ago = started - timedelta(days=366)
    assert all(year_ago <= o.created_at <= started for o in orders)
    assert max(o.created_at for o in orders) > started - timeout  # a few placed just now
    by_id = {o.id: o for o in orders}
    for o in orders:
        assert o.expires_at == o.created_at + timeout
        local = o.created_at.astimezone(SHANGHAI)
        assert o.order_no.startswith(f"SH{local:%Y%m%d}")
        if o.status == OrderStatus.pending_payment:
            assert o.expires_at > finished  # still payable
            continue
        assert time(8) <= local.time() <= time(21, 30), o.order_no  # daytime in Shanghai
        moments = [o.paid_at, o.cancelled_at, o.completed_at]
        assert all(o.created_at < m <= started for m in moments if m is not None)
        if o.paid_at is not None:
            assert o.paid_at < o.expires_at
    numbers = [o.number for o in sorted(orders, key=lambda o: o.created_at)]
    assert numbers == sorted(numbers)  # order_no increases with time
    auto_complete = timedelta(days=settings.auto_complete_days)
    for mo in merchant_orders:
        order = by_id[mo.order_id]
        assert mo.created_at == order.created_at
        if mo.shipped_at is not None:
            assert order.paid_at is not None and order.paid_at < mo.shipped_at <= started
        if mo.status == MerchantOrderStatus.shipped:
            assert mo.shipped_at > finished - auto_complete  # not yet due for auto-completion
        if mo.completed_at is not None:
            assert mo.shipped_at is not None and mo.shipped_at < mo.completed_at <= started
    # Ledger entries and audit events moved with their orders.
    for entry in await session.scalars(select(LedgerEntry)):
        if entry.order_id is None:  # settlement postings, written as the demo settles
            assert entry.created_at <= finished
            continue
        order = by_id[entry.order_id]
        assert order.created_at < entry.created_at <= finished  # the settlement demo writes late
        if entry.kind == "payment_captured":
            assert entry.created_at == order.paid_at
    payments = {p.id: p for p in await session.scalars(select(Payment))}
    confirmations = list(
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.confirmed"))
    )
    assert len(confirmations) == sum(p.status == PaymentStatus.succeeded for p in payments.values())
    for event in confirmations:
        assert event.at == payments[uuid.UUID(event.subject_id)].succeeded_at
    for refund in await session.scalars(select(Refund)):
        order = by_id[refund.order_id]
        assert order.created_at < refund.created_at <= finished
        if refund.decided_at is not None:
            assert refund.created_at <= refund.decided_at <= finished


def test_the_plan_is_deterministic_and_spans_the_year():
    now = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)

    def uid(text: object) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, str(text))

    catalogue = [
        Item(uid(s.name), uid(s.merchant_no), s.merchant_no, s.name, s.category, s.unit, s.stock,
             s.shelf_life_days)
        for s in PRODUCTS
        if s.status == ProductStatus.active and s.merchant_no <= 13
    ]  # fmt: skip
    first = plan_orders(now, catalogue, 30, 10)
    second = plan_orders(now, list(reversed(catalogue)), 30, 10)
    assert [(p.created, p.buyer.email, p.fate) for p in first] == [
        (p.created, p.buyer.email, p.fate) for p in second
    ]
    assert [[(i.id, q) for i, q in p.lines] for p in first] == [
        [(i.id, q) for i, q in p.lines] for p in second
    ]
    assert all(1 <= len(p.lines) <= 3 for p in first)
    fresh_matsutake = [
        p.created.astimezone(SHANGHAI).month
        for p in first
        for item, _ in p.lines
        if item.name.startswith("巴塘鲜松茸")
    ]
    assert fresh_matsutake and set(fresh_matsutake) <= {7, 8, 9}
    union = [p for p in first if p.buyer.email == "union@chunan.demo"]
    gift_lines = sum(item.category == "gift-packs" for p in union for item, _ in p.lines)
    assert union and gift_lines >= len(union) / 2
    assert {p.fate for p in first} == set(Fate)
