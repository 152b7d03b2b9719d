"""A year of consumption-assistance sales at real scale, for the statistics benchmark.

    python scripts/gen_stats_dataset.py --database-url sqlite+aiosqlite:///./s.db --lines 1000000

Writes (Core bulk inserts, in batches, with a progress bar) 100 Batang merchants, 500 products
(some certificates expiring during the year), 50,000 buyers (Chun'an, elsewhere in Hangzhou,
elsewhere; individuals and organisations), orders of 1–2 merchants with 3⅓ lines on average paid
through the year with seasons (matsutake in summer, apples in autumn, organisations before the
festivals), refunds on 3 % of the lines; then `rebuild` computes every aggregate from the lines,
exactly as `shanhai stats rebuild` does. The money tables (payments, ledger) are not written: the
statistics read orders and lines only. The database must be migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import benchlib
from sqlalchemy import insert

from app.core.config import Settings
from app.core.db import create_engine
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


def progress(label: str, done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stdout.write(
        f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,} {rate:,.0f}/s"
    )
    if done >= total:
        sys.stdout.write("\n")
    sys.stdout.flush()


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
    started = time.monotonic()
    for i in range(0, len(rows), BATCH):
        await conn.execute(insert(model), rows[i : i + BATCH])
        progress(label, min(i + BATCH, len(rows)), len(rows), started)


async def generate(url: str, lines: int, year: int, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    orders_wanted = max(1, lines * 3 // 10)
    buyers_wanted = max(10, min(50_000, lines // 20))
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
    merchant_ids = list(by_merchant)
    buyers = buyer_rows(rng, buyers_wanted, now)
    engine = create_engine(url)
    timings: dict[str, float] = {}
    started = time.monotonic()
    async with engine.begin() as conn:
        await insert_all(conn, Merchant, merchants, "merchants")
        await insert_all(conn, Product, products, "products")
        await insert_all(conn, User, buyers, "buyers")
        await insert_all(conn, User, [official_row(now)], "official")
    order_rows: list[dict[str, Any]] = []
    mo_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    made = 0
    t0 = time.monotonic()
    for n in range(orders_wanted):
        buyer = buyers[rng.randrange(len(buyers))]
        organisation = buyer["buyer_type"] != BuyerType.individual
        paid = paid_moment(rng, year, organisation)
        order_id = uuid.uuid4()
        total = 0
        refunded_total = 0
        # 3⅓ lines on average, over one merchant (2 in 3 orders) or two.
        count = rng.choice((2, 3, 3, 4, 4, 4)) if made < lines else 1
        sellers = rng.sample(merchant_ids, 1 if rng.random() < 0.67 else 2)
        subtotals: dict[Any, list[int]] = {m: [0, 0] for m in sellers}
        mo_ids = {m: uuid.uuid4() for m in sellers}
        for position in range(count):
            m = sellers[position % len(sellers)]
            p = rng.choice(by_merchant[m])
            quantity = rng.randint(1, 20 if organisation else 3)
            refunded = rng.randint(1, quantity) if rng.random() < 0.03 else 0
            amount = p["price_fen"] * quantity
            line_rows.append(
                {
                    "id": uuid.uuid4(),
                    "order_id": order_id,
                    "merchant_order_id": mo_ids[m],
                    "product_id": p["id"],
                    "position": position,
                    "name": p["name"],
                    "unit": p["unit"],
                    "unit_price_fen": p["price_fen"],
                    "quantity": quantity,
                    "line_total_fen": amount,
                    "refunded_quantity": refunded,
                    "category_slug": p["category_slug"],
                    "assistance_class": p["assistance_class"],
                    "origin_township": p["origin_township"],
                    "cert_no": p["cert_no"],
                    "cert_valid_from": p["cert_valid_from"],
                    "cert_valid_to": p["cert_valid_to"],
                }
            )
            subtotals[m][0] += amount
            subtotals[m][1] += p["price_fen"] * refunded
            total += amount
            refunded_total += p["price_fen"] * refunded
        made += count
        for m in sellers:
            mo_rows.append(
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
        order_rows.append(
            {
                "id": order_id,
                "number": n + 1,
                "order_no": f"SB{paid:%Y%m%d}{n + 1:010d}",
                "buyer_id": buyer["id"],
                "buyer_region_code": buyer["region_code"],
                "buyer_type": buyer["buyer_type"],
                "status": OrderStatus.completed,
                "payment_method": PaymentMethod.bank_transfer,
                "total_fen": total,
                "refunded_fen": refunded_total,
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
        )
        if len(line_rows) >= 50_000 or n == orders_wanted - 1:
            async with engine.begin() as conn:
                await conn.execute(insert(Order), order_rows)
                await conn.execute(insert(MerchantOrder), mo_rows)
                for i in range(0, len(line_rows), BATCH):
                    await conn.execute(insert(OrderLine), line_rows[i : i + BATCH])
            order_rows, mo_rows, line_rows = [], [], []
            progress("orders", n + 1, orders_wanted, t0)
        if made >= lines and n < orders_wanted - 1:
            orders_wanted = n + 2  # stop at the wanted number of lines
    timings["insert_s"] = time.monotonic() - started
    print(
        f"{made:,} order lines in {n + 1:,} orders by {len(buyers):,} buyers; rebuilding …",
        flush=True,
    )
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    t1 = time.monotonic()
    async with engine.begin() as conn:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(bind=conn) as session:
            await rebuild(session, settings.east_region_codes, settings.west_region_codes)
    timings["rebuild_s"] = time.monotonic() - t1
    timings["lines"] = made
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
