"""A year of consumption-assistance sales at real scale, for the statistics benchmark.

    python scripts/gen_stats_dataset.py --database-url sqlite+aiosqlite:///./s.db --lines 1000000

Writes (Core bulk inserts, in batches, with a progress bar) 100 Batang merchants, 500 products
(some certificates expiring during the year), 50,000 buyers (Chun'an, elsewhere in Hangzhou,
elsewhere; individuals and organisations), orders (about 300,000 for 1,000,000 lines) of 1–2
merchants with 3⅓ lines on average paid through the year with seasons (matsutake in summer,
apples in autumn, organisations before the festivals), refunds on 3 % of the lines; then
`rebuild` computes every aggregate from the lines, exactly as `shanhai stats rebuild` does.
The money tables (payments, ledger) are not written: the statistics read orders and lines only.
The database must be migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import benchlib
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.core.progress import ProgressBar
from app.core.time import SHANGHAI
from app.models import (
    BuyerType,
    Merchant,
    MerchantOrder,
    MerchantOrderStatus,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    Product,
    Role,
    User,
)
from app.statistics.recount import rebuild

HANGZHOU = ["330102", "330105", "330106", "330108", "330109", "330110", "330122", "330182"]
OTHER = ["310101", "110105", "440305", "510107", "513301"]
ORGS = [BuyerType.budget_unit, BuyerType.union, BuyerType.enterprise, BuyerType.public_institution]
BATCH = 5000


def buyer_rows(rng: random.Random, count: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        r = rng.random()
        region = "330127" if r < 0.7 else rng.choice(HANGZHOU) if r < 0.9 else rng.choice(OTHER)
        kind = rng.choice(ORGS) if rng.random() < 0.04 else BuyerType.individual
        rows.append(
            {
                "id": uuid.uuid4(),
                "email": f"buyer{i}@stats.example.cn",
                "password_hash": "x",
                "display_name": f"买家{i}",
                "region_code": region,
                "role": Role.buyer,
                "buyer_type": kind,
                "disabled": False,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def paid_moment(rng: random.Random, year: int, organisation: bool) -> datetime:
    """A payment instant in `year`, with seasons."""
    while True:
        day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        weight = 1.0
        weight *= 2.0 if 7 <= day.month <= 9 else 1.0  # matsutake
        weight *= 1.6 if 9 <= day.month <= 11 else 1.0  # apples
        if organisation and (day.month in (1, 9) or (day.month == 12 and day.day > 15)):
            weight *= 3.0  # before the Spring Festival, Mid-Autumn and New Year
        if rng.random() * 6 < weight:
            local = datetime(
                day.year, day.month, day.day, rng.randrange(24), rng.randrange(60), tzinfo=SHANGHAI
            )
            return local.astimezone(UTC)


async def insert_all(conn: Any, model: Any, rows: list[dict[str, Any]], label: str) -> None:
    bar = ProgressBar(label, sys.stdout)
    for i in range(0, len(rows), BATCH):
        await conn.execute(insert(model), rows[i : i + BATCH])
        bar(min(i + BATCH, len(rows)), len(rows))


def catalogue(
    rng: random.Random, year: int, now: datetime
) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """100 merchants and 500 products, one in ten certificates expiring on 30 June of `year`."""
    merchants = benchlib.merchant_rows(rng, 100, now)
    products = benchlib.product_rows(rng, merchants, 500, now)
    for i, p in enumerate(products):
        p["cert_valid_from"] = date(year - 1, 1, 1) if p["cert_no"] else None
        p["cert_valid_to"] = (
            (date(year, 6, 30) if i % 10 == 0 else date(year + 1, 12, 31)) if p["cert_no"] else None
        )
    by_merchant: dict[Any, list[dict[str, Any]]] = {}
    for p in products:
        by_merchant.setdefault(p["merchant_id"], []).append(p)
    return merchants, by_merchant


@dataclass
class Batch:
    """Rows of orders, merchant orders and lines waiting to be inserted."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    merchant_orders: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    async def insert(self, engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Order), self.orders)
            await conn.execute(insert(MerchantOrder), self.merchant_orders)
            for i in range(0, len(self.lines), BATCH):
                await conn.execute(insert(OrderLine), self.lines[i : i + BATCH])
        self.orders, self.merchant_orders, self.lines = [], [], []


def add_order(
    rng: random.Random,
    batch: Batch,
    number: int,
    buyer: dict[str, Any],
    by_merchant: dict[Any, list[dict[str, Any]]],
    year: int,
    count: int,
) -> None:
    """One completed order of `count` lines over one merchant (2 in 3 orders) or two, paid in
    `year`; 3 % of its lines partly or wholly refunded."""
    organisation = buyer["buyer_type"] != BuyerType.individual
    paid = paid_moment(rng, year, organisation)
    order_id = uuid.uuid4()
    sellers = rng.sample(list(by_merchant), 1 if rng.random() < 0.67 else 2)
    subtotals: dict[Any, list[int]] = {m: [0, 0] for m in sellers}
    mo_ids = {m: uuid.uuid4() for m in sellers}
    for position in range(count):
        m = sellers[position % len(sellers)]
        p = rng.choice(by_merchant[m])
        quantity = rng.randint(1, 20 if organisation else 3)
        refunded = rng.randint(1, quantity) if rng.random() < 0.03 else 0
        batch.lines.append(line_row(order_id, mo_ids[m], p, position, quantity, refunded))
        subtotals[m][0] += p["price_fen"] * quantity
        subtotals[m][1] += p["price_fen"] * refunded
    for m in sellers:
        batch.merchant_orders.append(
            {
                "id": mo_ids[m],
                "order_id": order_id,
                "merchant_id": m,
                "status": MerchantOrderStatus.completed,
                "subtotal_fen": max(subtotals[m][0], 1),
                "refunded_fen": subtotals[m][1],
                "commission_fen": 0,
                "created_at": paid,
                "updated_at": paid,
            }
        )
    total = sum(a for a, _ in subtotals.values())
    refunded_total = sum(r for _, r in subtotals.values())
    batch.orders.append(order_row(order_id, number, buyer, paid, total, refunded_total))


def line_row(
    order_id: Any, mo_id: Any, p: dict[str, Any], position: int, quantity: int, refunded: int
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "order_id": order_id,
        "merchant_order_id": mo_id,
        "product_id": p["id"],
        "position": position,
        "name": p["name"],
        "unit": p["unit"],
        "unit_price_fen": p["price_fen"],
        "quantity": quantity,
        "line_total_fen": p["price_fen"] * quantity,
        "refunded_quantity": refunded,
        "category_slug": p["category_slug"],
        "assistance_class": p["assistance_class"],
        "origin_township": p["origin_township"],
        "cert_no": p["cert_no"],
        "cert_valid_from": p["cert_valid_from"],
        "cert_valid_to": p["cert_valid_to"],
    }


def order_row(
    order_id: Any, number: int, buyer: dict[str, Any], paid: datetime, total: int, refunded: int
) -> dict[str, Any]:
    return {
        "id": order_id,
        "number": number,
        "order_no": f"SB{paid:%Y%m%d}{number:010d}",
        "buyer_id": buyer["id"],
        "buyer_region_code": buyer["region_code"],
        "buyer_type": buyer["buyer_type"],
        "status": OrderStatus.completed,
        "payment_method": PaymentMethod.bank_transfer,
        "total_fen": total,
        "refunded_fen": refunded,
        "ship_recipient": "收件人",
        "ship_phone": "+8613800000000",
        "ship_region_code": buyer["region_code"],
        "ship_address": "测试地址",
        "expires_at": paid + timedelta(minutes=30),
        "paid_at": paid,
        "commission_rate_bps": 0,
        "created_at": paid - timedelta(minutes=5),
        "updated_at": paid,
    }


async def generate(url: str, lines: int, year: int, seed: int = 7) -> dict[str, float]:
    """Fill the migrated database at `url` with about `lines` order lines paid in `year`, then
    rebuild the aggregates. Returns the line count and the seconds each phase took."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    merchants, by_merchant = catalogue(rng, year, now)
    buyers = buyer_rows(rng, max(10, min(50_000, lines // 20)), now)
    engine = create_engine(url)
    started = time.monotonic()
    async with engine.begin() as conn:
        await insert_all(conn, Merchant, merchants, "merchants")
        products = [p for group in by_merchant.values() for p in group]
        await insert_all(conn, Product, products, "products")
        await insert_all(conn, User, buyers, "buyers")
        await insert_all(conn, User, [official_row(now)], "official")
    batch, made, number = Batch(), 0, 0
    bar = ProgressBar("lines", sys.stdout)
    while made < lines:
        number += 1
        count = min(rng.choice((2, 3, 3, 4, 4, 4)), lines - made)  # 3⅓ lines on average
        add_order(rng, batch, number, buyers[rng.randrange(len(buyers))], by_merchant, year, count)
        made += count
        if len(batch.lines) >= 50_000 or made >= lines:
            await batch.insert(engine)
            bar(made, lines)
    timings = {"insert_s": time.monotonic() - started, "lines": float(made)}
    print(f"{made:,} order lines in {number:,} orders by {len(buyers):,} buyers", flush=True)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    rebuilt = time.monotonic()
    async with engine.begin() as conn, AsyncSession(bind=conn) as session:
        await rebuild(
            session,
            settings.east_region_codes,
            settings.west_region_codes,
            ProgressBar("rebuild", sys.stdout),
        )
    timings["rebuild_s"] = time.monotonic() - rebuilt
    print(f"inserted in {timings['insert_s']:.0f} s, rebuilt in {timings['rebuild_s']:.0f} s")
    await engine.dispose()
    return timings


OFFICIAL_ID = uuid.UUID("00000000-0000-4000-8000-00000000f1c1")


def official_row(now: datetime) -> dict[str, Any]:
    return {
        "id": OFFICIAL_ID,
        "email": "official@stats.example.cn",
        "password_hash": "x",
        "display_name": "统计官员",
        "region_code": "330127",
        "role": Role.official,
        "buyer_type": None,
        "disabled": False,
        "created_at": now,
        "updated_at": now,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--year", type=int, default=date.today().year - 1)
    args = parser.parse_args()
    asyncio.run(generate(args.database_url, args.lines, args.year))


if __name__ == "__main__":
    main()
