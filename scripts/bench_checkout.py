"""Benchmark checkout (`POST /api/v1/orders`) against a raw-SQL ceiling, in the same run.

The goal: `POST /api/v1/orders` with two lines from two merchants, spread over 1,000 products, on
PostgreSQL, served by one API process configured as compose.yaml runs it, under 32 concurrent
connections, completes at least 0.30 of the orders per second of the ceiling: the same writes
(the idempotency row, both products' stock, the order, its two merchant orders and two lines)
done with asyncpg alone, in one transaction, at 32 concurrent clients. And nothing is oversold:
many clients ordering one product with stock 500 past exhaustion sell exactly 500 units.

What it does:
1. creates a fresh PostgreSQL database `shanhai_bench_<random>` on `--pg` (dropped at the end, even
   on failure), migrates it, inserts ~20 approved Batang merchants, 1,000 active products with
   plenty of stock, one hot product with stock 500, ~200 buyers for the API and as many for the
   ceiling (Core bulk inserts); runs ANALYZE;
2. starts the API as compose.yaml's `api` service does (`shanhai serve --no-migrate`: uvicorn,
   uvloop, httptools), one worker, ENVIRONMENT=production, LOG_LEVEL=INFO (so the structured
   access log writes a line per request), a fresh SECRET_KEY, and the abuse limits
   (UNPAID_ORDERS_PER_BUYER, CHECKOUTS_PER_HOUR_PER_BUYER) so high they never refuse while their
   checks still run; checks that one order answers 201;
3. `--rounds` times, alternately: the ceiling (an asyncpg pool of 32 connections, each client
   looping over one transaction on our own tables: the idempotency row with the stored
   response, a conditional stock update per product in id order, the order, its merchant orders
   and its lines) for `--duration` seconds after a warm-up; then the API under `wrk -t1 -c32`
   with a Lua script (below) for `--duration` seconds after a warm-up. Each request carries its
   buyer's bearer token, a body with two lines from two different merchants, and a fresh
   Idempotency-Key. The API process's peak VmRSS is sampled from /proc during each load;
4. the hot product: `wrk -c<--hot-connections>` ordering the product with stock 500, one unit a
   request, for a few seconds (well past exhaustion); then oversold units = units on order lines
   beyond 500, which must be 0, and the final stock must be 500 minus the units sold, never
   below 0. Every product's stock is also checked against its order lines;
5. prints a table and writes the figures to the "checkout" section of `--output`
   (docs/benchmarks.md). The ratio is the median over the rounds of each round's API rate over
   that round's ceiling rate.

How wrk gets per-request tokens and keys: the script writes `tokens.txt` (one signed access
token per buyer, minted with the server's SECRET_KEY), `bodies.txt` (one JSON body per line,
pre-drawn product pairs) and `checkout.lua` to a temporary directory. Each wrk thread reads both
files in `init()`; `request()` takes the next body and the next token round-robin and makes the
Idempotency-Key `<run tag>-<thread>-<counter>`, unique per run; `response()` counts statuses
and `done()` prints them, so 409s and 5xx are reported, not only wrk's "non-2xx" total.

Needs `wrk` (`apt-get install wrk`) and a PostgreSQL server the user can create databases on.
`--py-spy FILE` also samples the API process with py-spy during the last measured API run
(install it with `.venv/bin/pip install py-spy`) and writes a speedscope profile there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import benchlib as bl
from sqlalchemy import insert, text

from app.core.db import create_engine
from app.core.security import create_access_token, hash_password
from app.models import Base, BuyerType, Merchant, Product, Role, User

GOAL = 0.30
RSS_GOAL_MB = 200
LIMIT_NEVER = 10**9  # the abuse limits: checked on every checkout, never reached
HOT_STOCK = 500
PLENTY = 100_000_000
ADDRESS = {
    "recipient": "王芳",
    "phone": "13812345678",
    "region_code": "330127",
    "address": "浙江省杭州市淳安县千岛湖镇新安东路1号",
}

LUA = r"""
-- wrk script: POST /api/v1/orders with a per-request token, body and Idempotency-Key.
-- args: <tokens file> <bodies file> <run tag>
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

local function read_lines(path)
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

function init(args)
  tokens = read_lines(args[1])
  bodies = read_lines(args[2])
  tag = args[3] .. "-" .. thread_no .. "-"
  counter = 0
  statuses = {}
end

function request()
  counter = counter + 1
  local body = bodies[(counter - 1) % #bodies + 1]
  local token = tokens[(counter * 7919 - 1) % #tokens + 1]
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = tag .. counter,
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %d %d\n", status, n))
    end
  end
end
"""


# --------------------------------------------------------------------------------------------
# Data


ProductRef = tuple[uuid.UUID, uuid.UUID, int]
"""(product id, merchant id, price in fen)."""


@dataclass
class Catalogue:
    products: list[ProductRef]
    """The 1,000 products with plenty of stock."""
    hot: uuid.UUID
    buyers: list[uuid.UUID]
    """The API's buyers."""
    ceiling_buyers: list[uuid.UUID]
    """The ceiling's own buyers (its orders never count among the API buyers' unpaid ones)."""
    postgres: str = ""


def buyer_rows(rng: random.Random, count: int, now: datetime) -> list[dict[str, Any]]:
    password_hash = hash_password(secrets.token_urlsafe(16))  # nobody signs in: tokens are minted
    rows = []
    for i in range(count):
        created = now - timedelta(days=rng.randint(1, 300))
        rows.append(
            {
                "id": uuid.uuid4(),
                "email": f"buyer{i:04d}@chunan.example.cn",
                "password_hash": password_hash,
                "display_name": f"淳安买家{i:04d}",
                "region_code": "330127",
                "role": Role.buyer,
                "buyer_type": BuyerType.individual,
                "disabled": False,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


async def seed(url: str, merchants: int, products: int, buyers: int, seed_value: int) -> Catalogue:
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    m_rows = bl.merchant_rows(rng, merchants, now)
    p_rows = bl.product_rows(rng, m_rows, products + 1, now)
    for row in p_rows:
        row["stock"] = PLENTY
    hot = p_rows.pop()
    hot["stock"] = HOT_STOCK
    hot["name"] = "限量松茸礼盒 秒杀"
    u_rows = buyer_rows(rng, 2 * buyers, now)
    tables = Base.metadata.tables
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(tables[Merchant.__tablename__]), m_rows)
            await conn.execute(insert(tables[Product.__tablename__]), [*p_rows, hot])
            await conn.execute(insert(tables[User.__tablename__]), u_rows)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
    finally:
        await engine.dispose()
    return Catalogue(
        products=[(r["id"], r["merchant_id"], r["price_fen"]) for r in p_rows],
        hot=hot["id"],
        buyers=[r["id"] for r in u_rows[:buyers]],
        ceiling_buyers=[r["id"] for r in u_rows[buyers:]],
        postgres=str(version),
    )


def two_merchant_pairs(
    rng: random.Random, products: list[ProductRef], count: int
) -> list[tuple[ProductRef, ProductRef]]:
    """Random pairs of products from two different merchants."""
    pairs: list[tuple[ProductRef, ProductRef]] = []
    while len(pairs) < count:
        a, b = rng.choice(products), rng.choice(products)
        if a[1] != b[1]:
            pairs.append((a, b))
    return pairs


# --------------------------------------------------------------------------------------------
# The ceiling: the transaction with asyncpg alone


@dataclass
class Run:
    label: str
    orders: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    cpu_share: float = 0.0
    """The API process's CPU time over wall time (1.0: one core kept busy)."""
    cpu_us: float = 0.0
    """The API process's CPU time per completed order, in microseconds."""
    socket_errors: str = ""
    """wrk's socket errors, e.g. "connect 0, read 0, write 0, timeout 3"; "" if none."""
    rss_mb: float = 0.0
    """The API process's peak VmRSS during the run, in MiB."""

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


CEILING_KEY = """
INSERT INTO idempotency_keys (
    id, user_id, key, request_hash, status, response_status, response_body, created_at,
    expires_at, claimant
) VALUES ($1, $2, $3, $4, 'completed', 201, $5, now(), now() + interval '24 hours', NULL)
"""
CEILING_STOCK = (
    "UPDATE products SET stock = stock - 1, updated_at = now() WHERE id = $1 AND stock >= 1"
)
CEILING_ORDER = """
INSERT INTO orders (
    id, number, order_no, buyer_id, buyer_region_code, buyer_type, status, payment_method,
    total_fen, refunded_fen, ship_recipient, ship_phone, ship_region_code, ship_address,
    expires_at, created_at, updated_at
) VALUES (
    $1, nextval('order_number_seq'), $2, $3, '330127', 'individual', 'pending_payment',
    'bank_transfer', $4, 0, '王芳', '13812345678', '330127',
    '浙江省杭州市淳安县千岛湖镇新安东路1号',
    now() + interval '30 minutes', now(), now()
)
"""
CEILING_MERCHANT_ORDERS = """
INSERT INTO merchant_orders (
    id, order_id, merchant_id, status, subtotal_fen, refunded_fen, commission_fen, created_at,
    updated_at
) VALUES
    ($1, $3, $4, 'pending_payment', $5, 0, 0, now(), now()),
    ($2, $3, $6, 'pending_payment', $7, 0, 0, now(), now())
"""
CEILING_LINES = """
INSERT INTO order_lines (
    id, order_id, merchant_order_id, product_id, position, name, unit, unit_price_fen,
    quantity, line_total_fen, refunded_quantity, category_slug, assistance_class,
    origin_township
) VALUES
    ($1, $3, $4, $5, 0, '巴塘高原苹果', '箱', $6, 1, $6, 0, 'fruit', 'agricultural', '夏邛镇'),
    ($2, $3, $7, $8, 1, '巴塘高原苹果', '箱', $9, 1, $9, 0, 'fruit', 'agricultural', '夏邛镇')
"""


async def _ceiling(
    dsn: str,
    clients: int,
    seconds: float,
    warmup: float,
    cat: Catalogue,
    seed_value: int,
    response_body: str,
) -> Run:
    """The writes of one checkout, by asyncpg alone, in one transaction per order."""
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    latencies: list[float] = []
    done = 0
    measuring = False
    request_hash = "0" * 64

    async def client(k: int, until: float) -> None:
        nonlocal done
        rng = random.Random(seed_value * 1000 + k)
        async with pool.acquire() as conn:
            while time.perf_counter() < until:
                a, b = two_merchant_pairs(rng, cat.products, 1)[0]
                first, second = sorted((a, b))  # stock in id order, as checkout takes it
                order_id, mo1, mo2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                buyer = rng.choice(cat.ceiling_buyers)
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(
                        CEILING_KEY,
                        uuid.uuid4(),
                        buyer,
                        uuid.uuid4().hex,
                        request_hash,
                        response_body,
                    )
                    for product in (first, second):
                        if await conn.execute(CEILING_STOCK, product[0]) != "UPDATE 1":
                            raise SystemExit(f"ceiling: product {product[0]} ran out of stock")
                    await conn.execute(
                        CEILING_ORDER, order_id, f"BN{order_id.hex[:16]}", buyer, a[2] + b[2]
                    )
                    await conn.execute(
                        CEILING_MERCHANT_ORDERS, mo1, mo2, order_id, a[1], a[2], b[1], b[2]
                    )
                    await conn.execute(
                        CEILING_LINES,
                        uuid.uuid4(),
                        uuid.uuid4(),
                        order_id,
                        mo1,
                        a[0],
                        a[2],
                        mo2,
                        b[0],
                        b[2],
                    )
                if measuring:
                    latencies.append(time.perf_counter() - started)
                    done += 1

    try:
        if warmup > 0:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(client(k, until) for k in range(clients)))
        measuring = True
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(client(k + clients, until) for k in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    q = statistics.quantiles(latencies, n=100)
    return Run("asyncpg ceiling", done, elapsed, q[49] * 1000, q[98] * 1000)


def ceiling(
    db_url: str,
    clients: int,
    seconds: float,
    warmup: float,
    cat: Catalogue,
    seed_value: int,
    response_body: str,
) -> Run:
    import uvloop

    coro = _ceiling(bl.admin_dsn(db_url), clients, seconds, warmup, cat, seed_value, response_body)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# --------------------------------------------------------------------------------------------
# The API under wrk


def order_body(lines: list[tuple[uuid.UUID, int]]) -> str:
    return json.dumps(
        {
            "lines": [{"product_id": str(pid), "quantity": q} for pid, q in lines],
            "shipping_address": ADDRESS,
            "payment_method": "bank_transfer",
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def write_inputs(
    workdir: Path, secret: str, cat: Catalogue, bodies: int, seed_value: int
) -> dict[str, Path]:
    rng = random.Random(seed_value + 1)
    tokens = [create_access_token(b, secret, 180)[0] for b in cat.buyers]
    pairs = two_merchant_pairs(rng, cat.products, bodies)
    paths = {
        "tokens": workdir / "tokens.txt",
        "bodies": workdir / "bodies.txt",
        "hot": workdir / "hot.txt",
        "lua": workdir / "checkout.lua",
    }
    paths["tokens"].write_text("\n".join(tokens) + "\n")
    paths["bodies"].write_text(
        "\n".join(order_body([(a[0], 1), (b[0], 1)]) for a, b in pairs) + "\n"
    )
    paths["hot"].write_text(order_body([(cat.hot, 1)]) + "\n")
    paths["lua"].write_text(LUA)
    return paths


def check_one_order(server: bl.Server, token: str, body: str) -> str:
    """Fail loudly unless one checkout answers 201 with two merchant orders; its body."""
    request = urllib.request.Request(
        server.base + "/api/v1/orders",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": f"check-{uuid.uuid4().hex}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    if status != 201:
        raise SystemExit(f"POST /api/v1/orders answered {status}: {payload[:500]!r}")
    if len(json.loads(payload)["merchant_orders"]) != 2:
        raise SystemExit(f"expected two merchant orders: {payload[:500]!r}")
    return str(payload.decode())


def wrk_orders(
    server: bl.Server,
    paths: dict[str, Path],
    bodies: Path,
    connections: int,
    seconds: float,
    label: str,
    tag: str,
) -> Run:
    cpu_before, wall_before = bl.process_cpu_seconds(server.proc.pid), time.monotonic()
    with bl.RssSampler(server.proc.pid) as rss:
        out = bl.run_wrk(
            server.base + "/api/v1/orders",
            connections,
            seconds,
            script=paths["lua"],
            script_args=[str(paths["tokens"]), str(bodies), tag],
            only_2xx=False,
            allow_socket_errors=True,
        )
    cpu = bl.process_cpu_seconds(server.proc.pid) - cpu_before
    result = bl.parse_wrk(out)
    statuses: dict[int, int] = {}
    for status, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M):
        statuses[int(status)] = statuses.get(int(status), 0) + int(n)
    duration = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    elapsed = seconds
    if duration:
        elapsed = float(duration.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[duration.group(2)]
    return Run(
        label,
        statuses.get(201, 0),
        elapsed,
        result.p50_ms,
        result.p99_ms,
        statuses,
        cpu / (time.monotonic() - wall_before),
        cpu * 1e6 / max(statuses.get(201, 0), 1),
        bl.socket_errors(out),
        rss.peak_mb,
    )


async def audit_stock(url: str, cat: Catalogue) -> dict[str, int]:
    """Units on order lines against stock taken, for the hot product and for every product."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            hot_units = int(
                await conn.scalar(
                    text(
                        "SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE product_id = :p"
                    ),
                    {"p": cat.hot},
                )
                or 0
            )
            hot_stock = int(
                await conn.scalar(text("SELECT stock FROM products WHERE id = :p"), {"p": cat.hot})
                or 0
            )
            mismatched = int(
                await conn.scalar(
                    text(
                        "SELECT count(*) FROM products p LEFT JOIN ("
                        " SELECT product_id, sum(quantity) AS units FROM order_lines"
                        " GROUP BY product_id) l ON l.product_id = p.id "
                        "WHERE p.id <> :hot AND p.stock + coalesce(l.units, 0) <> :plenty"
                    ),
                    {"hot": cat.hot, "plenty": PLENTY},
                )
                or 0
            )
            negative = int(
                await conn.scalar(text("SELECT count(*) FROM products WHERE stock < 0")) or 0
            )
            orders = int(await conn.scalar(text("SELECT count(*) FROM orders")) or 0)
    finally:
        await engine.dispose()
    return {
        "hot_units": hot_units,
        "hot_stock": hot_stock,
        "oversold": max(0, hot_units - HOT_STOCK),
        "mismatched": mismatched,
        "negative": negative,
        "orders": orders,
    }


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Round:
    ceiling: Run
    api: Run

    @property
    def ratio(self) -> float:
        return self.api.rate / self.ceiling.rate if self.ceiling.rate else 0.0


def median_round(rounds: list[Round]) -> Round:
    """The round whose ratio is the median (the lower middle one for an even count)."""
    ordered = sorted(rounds, key=lambda r: r.ratio)
    return ordered[(len(ordered) - 1) // 2]


def render(
    args: argparse.Namespace,
    rounds: list[Round],
    hot: Run,
    audit: dict[str, int],
    info: dict[str, Any],
) -> str:
    mid = median_round(rounds)
    ratio = mid.ratio
    v = info["versions"]
    verdict = "meets" if ratio >= GOAL else "misses"
    peak = max([r.api.rss_mb for r in rounds] + [hot.rss_mb])
    cpu_us = statistics.median(r.api.cpu_us for r in rounds)
    lines = [
        "## Checkout",
        "",
        "Generated by `scripts/bench_checkout.py` (`make bench`); the figures come from one run.",
        "",
        "### Result",
        "",
        f"`POST /api/v1/orders` (two lines from two merchants) completed **{mid.api.rate:,.0f} "
        f"orders/s** against a raw-asyncpg ceiling of **{mid.ceiling.rate:,.0f} "
        f"transactions/s** in the median of {len(rounds)} alternating rounds: a ratio of "
        f"**{ratio:.3f}**, which {verdict} the goal of {GOAL:.2f} (rounds: "
        + ", ".join(f"{r.ratio:.3f}" for r in rounds)
        + f"). Oversold units on the hot product: **{audit['oversold']}**. Peak memory of the "
        f"API process: **{peak:.0f} MiB** VmRSS (goal < {RSS_GOAL_MB} MB).",
        "",
        "| round | ceiling tx/s | ceiling p50 / p99 ms | API orders/s | API p50 / p99 ms "
        "| API responses | API CPU µs/order | API peak RSS MiB | ratio |",
        "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for n, r in enumerate(rounds, 1):
        lines.append(
            f"| {n} | {r.ceiling.rate:,.0f} | {r.ceiling.p50_ms:.1f} / {r.ceiling.p99_ms:.1f} | "
            f"{r.api.rate:,.0f} | {r.api.p50_ms:.1f} / {r.api.p99_ms:.1f} | "
            f"{_responses(r.api)} | {r.api.cpu_us:,.0f} | {r.api.rss_mb:.0f} | {r.ratio:.3f} |"
        )
    lines += [
        "",
        f"Hot product (stock {HOT_STOCK}, {args.hot_connections} connections, "
        f"{info['hot_seconds']:.0f} s, one unit per order): responses {_responses(hot)}; "
        f"{audit['hot_units']} units on order lines, final stock {audit['hot_stock']}, "
        f"**oversold {audit['oversold']}**, {hot.rate:,.0f} orders/s (201 responses over the "
        f"whole run); API peak RSS {hot.rss_mb:.0f} MiB. Across all "
        f"{args.products:,} other products, {audit['mismatched']} had stock + ordered units "
        f"different from the initial stock; {audit['negative']} had negative stock.",
        "",
        f"API CPU (user + system) per order, median of the rounds: {cpu_us:,.0f} µs, so one "
        f"process kept busy could not exceed {1e6 / max(cpu_us, 1):,.0f} orders/s, a ratio of "
        f"{1e6 / max(cpu_us, 1) / mid.ceiling.rate:.3f} against the median round's ceiling. "
        f"The API process used {mid.api.cpu_share:.0%} of a core in that round.",
        "",
        "### Machine",
        "",
        f"- date: {info['date']}",
        f"- CPU: {bl.cpu_model()}, {bl.cpus()} CPUs available (`nproc`), shared by the load "
        "generator, uvicorn and PostgreSQL; 1-minute load average before the runs "
        f"{info['load']:.1f}"
        + (
            ". **The machine was busy with other work during the run**: absolute figures are "
            "depressed and noisy; the ratio, measured alternately in the same run, less so"
            if info["load"] > bl.cpus() / 2
            else ""
        ),
        f"- PostgreSQL {info['postgres']} on loopback; Python {v['python']}, "
        f"FastAPI {v['fastapi']}, Pydantic {v['pydantic']}, SQLAlchemy {v['sqlalchemy']}, "
        f"uvicorn {v['uvicorn']} (uvloop, httptools), asyncpg {asyncpg.__version__}; {v['wrk']}",
        f"- code: commit `{v['commit']}`",
        "",
        "### Method",
        "",
        f"- A fresh database migrated with Alembic; {args.merchants} approved Batang merchants, "
        f"{args.products:,} active products with stock {PLENTY:,} each, one hot product with "
        f"stock {HOT_STOCK}, {args.buyers} buyers for the API and {args.buyers} for the ceiling "
        f"(Core bulk inserts, seed {args.seed}); `ANALYZE`.",
        "- API, configured as compose.yaml runs it: `shanhai serve --no-migrate --workers 1` "
        "(uvicorn with uvloop and httptools; uvicorn's own access log is off there, as in "
        "compose, and the app's structured access log writes one JSON line per request), "
        "`ENVIRONMENT=production`, `LOG_LEVEL=INFO`, the default pool (`DB_POOL_SIZE=40`). "
        f"The abuse limits `UNPAID_ORDERS_PER_BUYER` and `CHECKOUTS_PER_HOUR_PER_BUYER` are set "
        f"to {LIMIT_NEVER:,}: both checks run on every checkout (the counter upsert and the "
        "unpaid count) but never refuse. One order is checked to answer 201 first; its "
        "response body is what the ceiling stores with its idempotency rows.",
        f"- Ceiling: an asyncpg pool of {args.connections} connections (uvloop), each client "
        "looping over one transaction on our own tables, with prepared statements: INSERT the "
        "idempotency row (completed, with that response body), `UPDATE products SET stock = "
        "stock - 1, updated_at = now() WHERE id = $1 AND stock >= 1` for each of the two "
        "products in id order, INSERT the order (number from `order_number_seq`), its two "
        "merchant orders (one statement) and its two lines (one statement); random product "
        "pairs from two merchants. The load generator runs in this script's process, on the "
        "same machine.",
        f"- Load: `wrk -t1 -c{args.connections} -d{args.duration:g}s --latency -s checkout.lua` "
        f"after a {args.warmup:g} s warm-up. The Lua script reads pre-generated files: one "
        f"access token per buyer and {args.bodies:,} bodies with two lines (quantity 1) from "
        "two different merchants drawn at random from the 1,000 products; each request takes "
        "the next body and a token round-robin, with `Idempotency-Key: <run>-<thread>-<n>`, "
        "and the script counts response statuses. orders/s counts 201 responses only; p50 "
        "and p99 are wrk's, over all responses.",
        f"- Rounds: {len(rounds)}, each the ceiling ({args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured) then the API, one API process kept up throughout; "
        "the ratio is the median of the rounds' ratios. Peak RSS: the API process's VmRSS "
        "read from `/proc/<pid>/status` every 50 ms during each load.",
        "- Hot product: the same script with one body (the hot product, quantity 1) at "
        f"{args.hot_connections} connections for at least {args.hot_duration:g} s and long "
        f"enough to sell {HOT_STOCK} units three times over at the rate just measured (at "
        "most 60 s); then the units on its order lines and its stock are read from the "
        "database. Every other product's stock plus the units on its order lines must equal "
        "its initial stock.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--pg", default=bl.DEFAULT_PG, help="PostgreSQL server (SQLAlchemy URL)")
    p.add_argument("--duration", type=float, default=15, help="measured seconds per run (15)")
    p.add_argument("--warmup", type=float, default=3, help="warm-up seconds before a run (3)")
    p.add_argument("--rounds", type=int, default=3, help="alternating ceiling/API rounds (3)")
    p.add_argument("--connections", type=int, default=32, help="concurrent clients (32)")
    p.add_argument("--hot-connections", type=int, default=32, help="clients on the hot product")
    p.add_argument(
        "--hot-duration", type=float, default=3, help="minimum seconds on the hot product (3)"
    )
    p.add_argument("--products", type=int, default=1000, help="products in the mix (1,000)")
    p.add_argument("--merchants", type=int, default=20, help="approved merchants (20)")
    p.add_argument("--buyers", type=int, default=200, help="buyers (200)")
    p.add_argument("--bodies", type=int, default=20_000, help="pre-drawn request bodies")
    p.add_argument("--seed", type=int, default=20261129, help="random seed for the data")
    p.add_argument(
        "--output",
        type=Path,
        default=bl.REPORT,
        help="the Markdown report whose 'checkout' section to write; '-' writes nothing",
    )
    p.add_argument("--py-spy", type=Path, help="profile the API during the last API run")
    args = p.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.hot_connections < 1:
        p.error("duration and connections must be at least 1")
    if args.rounds < 1:
        p.error("at least 1 round")
    if args.merchants < 2 or args.products < 2 or args.buyers < 1 or args.bodies < 1:
        p.error("at least 2 merchants, 2 products, 1 buyer and 1 body")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk (a C HTTP load generator) is not installed: apt-get install wrk", file=sys.stderr
        )
        return 2
    info: dict[str, Any] = {
        "date": bl.now_stamp(),
        "versions": bl.versions(),
        "load": os.getloadavg()[0],
    }
    rounds: list[Round] = []
    workdir = Path(tempfile.mkdtemp(prefix="shanhai-bench-checkout-"))
    server: bl.Server | None = None
    try:
        with bl.throwaway_database(args.pg) as db_url:
            started = time.perf_counter()
            cat = asyncio.run(seed(db_url, args.merchants, args.products, args.buyers, args.seed))
            info["postgres"] = cat.postgres
            print(
                f"  {args.merchants} merchants, {args.products:,} products + 1 hot, "
                f"{2 * args.buyers} buyers in {time.perf_counter() - started:.1f} s; "
                f"PostgreSQL {cat.postgres}",
                flush=True,
            )

            # As compose.yaml runs the API; the limits so high they never refuse, so that their
            # checks still run as in production.
            env = bl.server_env(
                db_url,
                LOG_LEVEL="INFO",
                UNPAID_ORDERS_PER_BUYER=str(LIMIT_NEVER),
                CHECKOUTS_PER_HOUR_PER_BUYER=str(LIMIT_NEVER),
            )
            paths = write_inputs(workdir, env["SECRET_KEY"], cat, args.bodies, args.seed)
            server = bl.start_compose_server("api", env, workdir)
            bl.wait_until_up(server)
            first_token = paths["tokens"].read_text().split("\n", 1)[0]
            first_body = paths["bodies"].read_text().split("\n", 1)[0]
            response_body = check_one_order(server, first_token, first_body)
            print(f"  API up (pid {server.proc.pid}), {bl.rss_mb(server.proc.pid):.0f} MiB RSS")

            run_tag = secrets.token_hex(4)
            for n in range(1, args.rounds + 1):
                print(
                    f"round {n}: ceiling, asyncpg, {args.connections} clients, "
                    f"{args.duration:g} s …",
                    flush=True,
                )
                ceiling_run = ceiling(
                    db_url,
                    args.connections,
                    args.duration,
                    args.warmup,
                    cat,
                    args.seed + n,
                    response_body,
                )
                print(_line(ceiling_run), flush=True)
                print(f"round {n}: API, wrk -c{args.connections}, {args.duration:g} s …")
                if args.warmup > 0:
                    wrk_orders(
                        server,
                        paths,
                        paths["bodies"],
                        args.connections,
                        args.warmup,
                        "warm-up",
                        f"{run_tag}w{n}",
                    )
                spy = (
                    _start_py_spy(args.py_spy, server, args.duration) if n == args.rounds else None
                )
                api = wrk_orders(
                    server,
                    paths,
                    paths["bodies"],
                    args.connections,
                    args.duration,
                    "API POST /api/v1/orders",
                    f"{run_tag}m{n}",
                )
                if spy is not None:
                    spy.wait()
                print(_line(api), flush=True)
                rounds.append(Round(ceiling_run, api))
                print(f"  round {n} ratio {rounds[-1].ratio:.3f}", flush=True)

            # Long enough to run well past exhaustion at the rate just measured.
            rate = median_round(rounds).api.rate
            hot_seconds = min(60.0, max(args.hot_duration, 3 * HOT_STOCK / max(rate, 1.0)))
            info["hot_seconds"] = hot_seconds
            print(f"hot product: wrk -c{args.hot_connections}, {hot_seconds:.0f} s …")
            hot = wrk_orders(
                server,
                paths,
                paths["hot"],
                args.hot_connections,
                hot_seconds,
                "hot product",
                f"{run_tag}h",
            )
            print(_line(hot), flush=True)
            if server.proc.poll() is not None:
                raise SystemExit(f"the API died during the run:\n{server.tail()}")
            bl.stop_server(server)
            audit = asyncio.run(audit_stock(db_url, cat))
    finally:
        if server is not None:
            bl.stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)

    mid = median_round(rounds)
    peak = max([r.api.rss_mb for r in rounds] + [hot.rss_mb])
    print()
    print(
        f"{'round':<6} {'ceiling/s':>10} {'API/s':>8} {'ratio':>7} {'µs/order':>9} {'RSS MiB':>8}"
    )
    for n, r in enumerate(rounds, 1):
        print(
            f"{n:<6} {r.ceiling.rate:10.1f} {r.api.rate:8.1f} {r.ratio:7.3f} "
            f"{r.api.cpu_us:9,.0f} {r.api.rss_mb:8.0f}"
        )
    verdict = "meets" if mid.ratio >= GOAL else "MISSES"
    print(f"\nmedian ratio API/ceiling = {mid.ratio:.3f}: {verdict} the goal of {GOAL}")
    print(
        f"API peak RSS {peak:.0f} MiB (goal < {RSS_GOAL_MB} MB; hot product run "
        f"{hot.rss_mb:.0f} MiB)"
    )
    print(
        f"hot product: {audit['hot_units']} units ordered of {HOT_STOCK}, final stock "
        f"{audit['hot_stock']}, oversold {audit['oversold']}, {hot.rate:.1f} orders/s; "
        f"products whose stock does not add up: {audit['mismatched']}; negative stock: "
        f"{audit['negative']}"
    )
    if str(args.output) != "-":
        bl.write_section(args.output, "checkout", render(args, rounds, hot, audit, info))
        print(f"wrote the checkout section of {args.output}")
    if not hot.statuses.get(409):
        print("warning: the hot product never ran out (no 409): lengthen --hot-duration")
    failed = (
        audit["oversold"] > 0
        or audit["hot_stock"] != HOT_STOCK - audit["hot_units"]
        or audit["mismatched"] > 0
        or audit["negative"] > 0
    )
    return 1 if failed else 0


def _responses(run: Run) -> str:
    """E.g. "4,980 × 201, 20 × 409" and wrk's socket errors, if any."""
    text_out = ", ".join(f"{n:,} × {s}" for s, n in sorted(run.statuses.items()))
    if re.search(r"[1-9]", run.socket_errors):
        text_out += f"; socket errors: {run.socket_errors}"
    return text_out


def _line(run: Run) -> str:
    return (
        f"  {run.label:<28} {run.rate:9.1f} orders/s  p50 {run.p50_ms:7.2f} ms  "
        f"p99 {run.p99_ms:7.2f} ms  {_responses(run)}"
        + (
            f"  API CPU {run.cpu_share:.0%} of a core, {run.cpu_us:,.0f} µs/order, "
            f"peak RSS {run.rss_mb:.0f} MiB"
            if run.cpu_share
            else ""
        )
    )


def _start_py_spy(
    out: Path | None, server: bl.Server, seconds: float
) -> subprocess.Popen[bytes] | None:
    if out is None:
        return None
    py_spy = shutil.which("py-spy") or str(bl.BIN / "py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.proc.pid),
            "--duration",
            f"{int(seconds)}",
            "--rate",
            "200",
            "--format",
            "speedscope",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    sys.exit(main())
