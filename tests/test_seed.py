"""The demo data, seeded into the test database: Batang sellers, Chun'an buyers, idempotent."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from app.core.security import verify_password
from app.merchants.uscc import is_valid
from app.models import (
    AssistanceClass,
    BuyerType,
    Merchant,
    MerchantKind,
    MerchantStatus,
    Product,
    ProductStatus,
    Role,
    User,
)
from app.seed.demo import DEMO_PASSWORD, MERCHANTS, PRODUCTS, print_summary, seed_demo

BATANG_PLACES = {
    *("夏邛镇", "中咱镇", "措拉镇", "甲英镇", "地巫镇"),
    *("拉哇乡", "竹巴龙乡", "苏哇龙乡", "昌波乡", "亚日贡乡", "波密乡", "莫多乡", "松多乡"),
    *("波戈溪乡", "茶洛乡", "列衣乡", "德达乡"),
}
UNITS = {"斤", "kg", "克", "盒", "箱", "份", "套"}


async def _count(session, model) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _seeded(session):
    summary = await seed_demo(session)
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
