"""Benchmark the public product list against a bare FastAPI app, in the same run (`make bench`).

The goal: `GET /api/v1/products?limit=20` with a filter, over 10,000 products on PostgreSQL, served
by one API process, answers at least a quarter of the requests per second of a bare FastAPI app on
the same server that returns 20 product-like objects from memory through a response model.

What it does:
1. creates a fresh PostgreSQL database `shanhai_bench_<random>` on `--pg` (dropped at the end, even
   on failure), migrates it, inserts ~50 approved Batang merchants and 10,000 active products with
   Core bulk inserts, and runs ANALYZE;
2. starts the real app and `scripts/bench_bare_app.py`, each as one uvicorn worker with the same
   flags, and checks that every URL to measure answers 200 with 20 items;
3. runs `wrk` (a C load generator) on loopback against each target in turn, bare and real
   alternating, for `--rounds` rounds, after a warm-up of each target; keeps the median of the
   rounds;
4. prints a table and writes it to `--output` (docs/benchmarks.md) with the machine and the method.
   Anything below the line `<!-- kept -->` in an existing output file is kept.

Needs `wrk` (`apt-get install wrk`) and a PostgreSQL server the user can create databases on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app.core.db import create_engine
from app.core.migrations import upgrade
from app.merchants.uscc import ALPHABET, check_character
from app.models import (
    AssistanceClass,
    Base,
    Merchant,
    MerchantKind,
    MerchantStatus,
    Product,
    ProductStatus,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL = 0.25
KEEP_MARKER = "<!-- kept -->"
BATANG = "513335"
FILTER_CATEGORY = "fruit"

# (label, path): the first real target is the one the goal is about; the others are for information.
BARE_PATH = "/api/v1/products?limit=20"
REAL_TARGETS = [
    ("real, category filter", f"/api/v1/products?limit=20&category={FILTER_CATEGORY}"),
    ("real, no filter", "/api/v1/products?limit=20"),
    ("real, sort=price_asc", "/api/v1/products?limit=20&sort=price_asc"),
]

TOWNSHIPS = [
    "夏邛镇",
    "中咱镇",
    "措拉镇",
    "甲英镇",
    "地巫镇",
    "义敦镇",
    "竹巴龙乡",
    "苏哇龙乡",
    "昌波乡",
    "拉哇乡",
    "波密乡",
    "亚日贡乡",
    "茶洛乡",
    "松多乡",
    "德达乡",
    "党巴乡",
]

# slug: (share of the products, assistance class, [(name, unit, price range in fen, grams)])
CATALOGUE: dict[str, tuple[float, AssistanceClass, list[tuple[str, str, tuple[int, int], int]]]] = {
    "mushrooms": (
        0.18,
        AssistanceClass.agricultural,
        [
            ("野生松茸", "斤", (9800, 39800), 500),
            ("羊肚菌干货", "盒", (12800, 45800), 250),
            ("黑木耳", "袋", (2800, 6800), 500),
            ("牛肝菌片", "袋", (3800, 9800), 250),
            ("青冈菌", "斤", (4800, 12800), 500),
        ],
    ),
    FILTER_CATEGORY: (
        0.24,
        AssistanceClass.agricultural,
        [
            ("巴塘高原苹果", "箱", (4800, 12800), 5000),
            ("金丝蜜枣", "斤", (1800, 3800), 500),
            ("高原石榴", "箱", (5800, 13800), 4000),
            ("冰糖心苹果", "箱", (5800, 15800), 5000),
            ("沙棘鲜果", "斤", (2200, 4800), 500),
            ("软籽石榴", "个", (800, 1800), 400),
        ],
    ),
    "meat": (
        0.12,
        AssistanceClass.agricultural,
        [
            ("牦牛肉干", "袋", (3800, 9800), 250),
            ("藏香猪腊肉", "斤", (6800, 15800), 500),
            ("高原黑山羊肉", "kg", (9800, 19800), 1000),
            ("牦牛肉", "kg", (12800, 26800), 1000),
        ],
    ),
    "grains": (
        0.14,
        AssistanceClass.agricultural,
        [
            ("青稞米", "袋", (2800, 6800), 2500),
            ("青稞糌粑", "袋", (1800, 4800), 1000),
            ("高原菜籽油", "瓶", (5800, 12800), 5000),
            ("苦荞茶", "盒", (2800, 6800), 300),
        ],
    ),
    "specialties": (
        0.12,
        AssistanceClass.agricultural,
        [
            ("牦牛酸奶", "瓶", (1200, 2800), 250),
            ("高原蜂蜜", "瓶", (6800, 16800), 500),
            ("酥油", "斤", (4800, 9800), 500),
            ("花椒", "袋", (2800, 7800), 250),
            ("藏茶砖", "块", (4800, 18800), 500),
        ],
    ),
    "handicrafts": (
        0.10,
        AssistanceClass.handicraft,
        [
            ("手工藏香", "盒", (3800, 12800), 200),
            ("牦牛毛编织坐垫", "个", (8800, 26800), 800),
            ("藏族手工银饰", "件", (19800, 89800), 50),
            ("手绘唐卡挂画", "幅", (58800, 298800), 600),
            ("木碗", "个", (6800, 18800), 300),
        ],
    ),
    "gift-packs": (
        0.10,
        AssistanceClass.agricultural,
        [
            ("巴塘山珍礼盒", "盒", (19800, 59800), 2000),
            ("高原年货礼盒", "盒", (16800, 39800), 3000),
            ("山海协作帮扶礼包", "份", (9800, 29800), 2500),
        ],
    ),
}
GRADES = ["特级", "一级", "精选", "家庭装", "尝鲜装", "合作社直供", "当季新货", "原产地直发"]
ADJECTIVES = ["海拔3000米以上", "金沙江畔", "无污染高原", "藏区牧场", "传统工艺", "古法手作"]
COOP_WORDS = ["种植专业合作社", "养殖专业合作社", "农牧民专业合作社", "村集体经济合作社"]


# --------------------------------------------------------------------------------------------
# Data


def _uscc(rng: random.Random, prefix: str) -> str:
    body = prefix + "".join(rng.choice(ALPHABET) for _ in range(17 - len(prefix)))
    return body + check_character(body)


def merchant_rows(rng: random.Random, count: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        township = TOWNSHIPS[i % len(TOWNSHIPS)]
        village = i % 4 == 3
        person = rng.choice(["扎西", "格桑", "德吉", "次仁", "央宗"])
        name = f"巴塘县{township}{person}{COOP_WORDS[i % 4]}"
        households = rng.randint(20, 400)
        approved_at = now - timedelta(days=400 + i)
        rows.append(
            {
                "id": uuid.uuid4(),
                "name": name[:100],
                "kind": MerchantKind.village_collective if village else MerchantKind.cooperative,
                # 93: farmers' cooperative; N2: village collective economic organisation.
                "uscc": _uscc(rng, ("N2" if village else "93") + BATANG),
                "legal_representative": rng.choice(["扎西", "格桑", "次仁多吉", "央宗", "泽仁"]),
                "contact_phone": f"+86138{rng.randint(0, 99_999_999):08d}",
                "region_code": BATANG,
                "township": township,
                "address": f"甘孜州巴塘县{township}{rng.randint(1, 30)}村{rng.randint(1, 99)}号",
                "households": households,
                "poverty_alleviated_households": households // 3,
                "monitored_households": households // 12,
                "bank_name": "中国农业银行巴塘县支行",
                "bank_account_name": name[:100],
                "bank_account_no": f"62284800{rng.randint(0, 10**11 - 1):011d}",
                "status": MerchantStatus.approved,
                "approved_at": approved_at,
                "created_at": approved_at - timedelta(days=3),
                "updated_at": approved_at,
            }
        )
    return rows


def product_rows(
    rng: random.Random, merchants: list[dict[str, Any]], count: int, now: datetime
) -> list[dict[str, Any]]:
    slugs = list(CATALOGUE)
    weights = [CATALOGUE[s][0] for s in slugs]
    rows = []
    for i in range(count):
        slug = rng.choices(slugs, weights)[0]
        _, klass, kinds = CATALOGUE[slug]
        base_name, unit, (low, high), grams = rng.choice(kinds)
        merchant = merchants[rng.randrange(len(merchants))]
        township = merchant["township"] if rng.random() < 0.8 else rng.choice(TOWNSHIPS)
        # Distinct creation times spread over the past year, like a catalogue that grew.
        created = now - timedelta(seconds=(count - i) * 3153 + rng.randint(0, 3000))
        certified = rng.random() < 0.65
        rows.append(
            {
                "id": uuid.uuid4(),
                "merchant_id": merchant["id"],
                "name": f"{base_name} {rng.choice(GRADES)} {unit}装"[:100],
                "description": (
                    f"{rng.choice(ADJECTIVES)}，产自巴塘县{township}。"
                    f"{merchant['name']}组织农牧户生产，统一分拣、统一包装，"
                    "下单后48小时内发货，冷链或顺丰直达。每一份订单都计入山海协作消费帮扶。"
                ),
                "category_slug": slug,
                "unit": unit,
                "price_fen": rng.randrange(low, high + 1, 100),
                "stock": 0 if rng.random() < 0.12 else rng.randint(1, 2000),
                "sold_units": int(rng.paretovariate(1.2) * 10) - 10,
                "origin_township": township,
                "assistance_class": klass,
                "cert_scheme": "消费帮扶产品认定" if certified else None,
                "cert_no": f"XFBF-2026-{BATANG}-{i:05d}" if certified else None,
                "cert_issuer": "四川省农业农村厅" if certified else None,
                "cert_valid_from": date(2026, 1, 1) if certified else None,
                "cert_valid_to": date(2027, 12, 31) if certified else None,
                "images": [
                    f"https://img.shanhai.example/p/{i}/{n}.jpg" for n in range(rng.randint(1, 4))
                ],
                "weight_grams": grams,
                "shelf_life_days": None if klass == AssistanceClass.handicraft else 180,
                "status": ProductStatus.active,
                "status_reason": None,
                "version": rng.randint(1, 5),
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.randint(0, 48)),
            }
        )
    return rows


def _admin_dsn(url: str) -> str:
    u = make_url(url)
    auth = u.username or "postgres"
    if u.password:
        auth += f":{u.password}"
    return (
        f"postgresql://{auth}@{u.host or '127.0.0.1'}:{u.port or 5432}/{u.database or 'postgres'}"
    )


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seed(url: str, merchants: int, products: int, seed_value: int) -> dict[str, Any]:
    """Insert the catalogue, ANALYZE, and return the PostgreSQL version and category counts."""
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    m_rows = merchant_rows(rng, merchants, now)
    p_rows = product_rows(rng, m_rows, products, now)
    tables = Base.metadata.tables
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(tables[Merchant.__tablename__]), m_rows)
            for start in range(0, len(p_rows), 2000):
                chunk = p_rows[start : start + 2000]
                await conn.execute(insert(tables[Product.__tablename__]), chunk)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            result = await conn.execute(
                text(
                    "SELECT category_slug, count(*) FROM products "
                    "GROUP BY category_slug ORDER BY 2 DESC"
                )
            )
            counts = {str(slug): int(n) for slug, n in result}
    finally:
        await engine.dispose()
    return {"postgres": str(version), "categories": counts}


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(name: str, target: list[str], env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    log = logdir / f"{name}.log"
    cmd = [
        str(BIN / "uvicorn"),
        *target,
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, proc, port, log)


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def wait_until_up(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} server exited early:\n{server.tail()}")
        try:
            get(server.base + "/openapi.json", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise SystemExit(
        f"{server.name} server did not answer within {timeout:.0f} s:\n{server.tail()}"
    )


def check_page(label: str, url: str) -> None:
    """Fail loudly unless the URL answers 200 with a full page of 20 items."""
    status, body = get(url)
    if status != 200:
        raise SystemExit(f"{label}: GET {url} answered {status}: {body[:300]!r}")
    items = json.loads(body).get("items")
    if not isinstance(items, list) or len(items) != 20:
        count = len(items) if isinstance(items, list) else None
        raise SystemExit(f"{label}: GET {url} answered {count} items, expected 20")


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: float = 0.0
    """Server process CPU time (user + system) per request, in microseconds."""
    cpu_share: float = 0.0
    """Server process CPU time over wall time: 1.0 is one core kept busy."""
    load: float = 0.0
    """The 1-minute load average when the run started."""


@dataclass
class Target:
    label: str
    base: str
    path: str
    pid: int
    runs: list[WrkResult] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + self.path

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unreadable latency {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise SystemExit(f"could not read wrk's output:\n{output}")
    return WrkResult(
        float(rps.group(1)),
        _latency_ms(p50.group(1)),
        _latency_ms(p99.group(1)),
        int(total.group(1)),
    )


class WrkFailed(Exception):
    """Some responses were not 2xx, or connections failed, during a wrk run."""


def run_wrk(url: str, connections: int, seconds: float, latency: bool = True) -> str:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    if latency:
        cmd.append("--latency")
    done = subprocess.run([*cmd, url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad:
        raise WrkFailed(f"{url}: {bad.group(1)} responses were not 2xx:\n{out}")
    if errors and re.search(r"(read|write|timeout) [1-9]", errors.group(1)):
        raise WrkFailed(f"{url}: socket errors under load:\n{out}")
    return out


# A PostgreSQL server shared with other work may run out of connection slots for a moment.
_RETRYABLE = "too many clients already"
RETRIES = 3


def measure(
    targets: list[Target],
    servers: dict[int, Server],
    rounds: int,
    connections: int,
    seconds: float,
    warmup: float,
) -> int:
    """Rounds of every target in turn (bare first), each run preceded by a short warm-up. A run
    whose errors the server logged as PostgreSQL refusing connections (its `max_connections`
    taken by other clients) is repeated, at most `RETRIES` times; any other error fails.
    Returns how many runs were repeated."""
    retried = 0
    for r in range(1, rounds + 1):
        for t in targets:
            server = servers[t.pid]
            for attempt in range(RETRIES + 1):
                log_size = server.log.stat().st_size
                try:
                    result = run_once(t, connections, seconds, warmup)
                    break
                except WrkFailed as exc:
                    with server.log.open("rb") as f:
                        f.seek(log_size)
                        logged = f.read().decode(errors="replace")
                    if _RETRYABLE not in logged or attempt == RETRIES:
                        log_tail = logged[-3000:]
                        raise SystemExit(f"{exc}\n--- {server.name} log:\n{log_tail}") from None
                    retried += 1
                    print(f"  PostgreSQL refused connections ({_RETRYABLE}); retrying in 10 s")
                    time.sleep(10)
            t.runs.append(result)
            print(
                f"  round {r}/{rounds}  {t.label:<24} {result.rps:9.1f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"server CPU {result.cpu_us:6.0f} µs/req ({result.cpu_share:4.0%} of a core)  "
                f"load {result.load:.1f}",
                flush=True,
            )
    return retried


def run_once(t: Target, connections: int, seconds: float, warmup: float) -> WrkResult:
    if warmup > 0:
        run_wrk(t.url, connections, warmup, latency=False)
    load = os.getloadavg()[0]
    cpu_before, wall_before = process_cpu_seconds(t.pid), time.monotonic()
    result = parse_wrk(run_wrk(t.url, connections, seconds))
    cpu = process_cpu_seconds(t.pid) - cpu_before
    result.cpu_share = cpu / (time.monotonic() - wall_before)
    result.cpu_us = cpu * 1e6 / max(result.requests, 1)
    result.load = load
    return result


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0


def versions() -> dict[str, str]:
    import fastapi
    import pydantic
    import sqlalchemy
    import uvicorn

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    if commit and dirty:
        commit += "` with uncommitted changes under `app/"
    return {
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "pydantic": pydantic.VERSION,
        "sqlalchemy": sqlalchemy.__version__,
        "uvicorn": uvicorn.__version__,
        "wrk": wrk_version,
        "commit": commit or "unknown",
    }


def render(
    args: argparse.Namespace,
    bare: Target,
    reals: list[Target],
    info: dict[str, Any],
    kept: str,
) -> str:
    v = info["versions"]
    ratio = reals[0].median("rps") / bare.median("rps") if reals else None
    lines = [
        "# Catalogue benchmark",
        "",
        "Generated by `scripts/bench_catalog.py` (`make bench`); the figures come from one run.",
        "",
        "## Result",
        "",
    ]
    if ratio is not None:
        verdict = "meets" if ratio >= GOAL else "misses"
        lines += [
            f"`GET {reals[0].path}` served **{reals[0].median('rps'):,.0f} req/s** against "
            f"**{bare.median('rps'):,.0f} req/s** for the bare FastAPI app: a ratio of "
            f"**{ratio:.2f}**, which {verdict} the goal of {GOAL:.2f}.",
            "",
        ]
    lines += [
        "| target | URL | req/s | p50 ms | p99 ms | server CPU µs/req | server CPU | "
        "req/s per round | vs bare |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for t in [bare, *reals]:
        per_round = ", ".join(f"{r.rps:,.0f}" for r in t.runs)
        rel = t.median("rps") / bare.median("rps")
        lines.append(
            f"| {t.label} | `{t.path}` | {t.median('rps'):,.0f} | {t.median('p50_ms'):.2f} | "
            f"{t.median('p99_ms'):.2f} | {t.median('cpu_us'):,.0f} | "
            f"{t.median('cpu_share'):.0%} | {per_round} | {rel:.2f} |"
        )
    loads = [r.load for t in [bare, *reals] for r in t.runs]
    lines += [
        "",
        "Medians over the rounds. *Server CPU µs/req*: user + system CPU time of the uvicorn "
        "process during the run, per request; *server CPU*: that time over the run's wall time "
        "(100% is one core kept busy).",
    ]
    if reals:
        cpu_ratio = bare.median("cpu_us") / reals[0].median("cpu_us")
        lines += [
            f"Per request, the API process spends {1 / cpu_ratio:.1f} times the bare app's CPU "
            f"time (if the API process alone were the bottleneck: a ratio of {cpu_ratio:.2f}).",
        ]
    busy = max(loads) > cpus() / 2
    lines += [
        "",
        f"1-minute load average when each run started: {min(loads):.1f}–{max(loads):.1f} "
        f"on {cpus()} CPUs"
        + (
            ". **The machine was busy with other work during the run**: the req/s figures are "
            "depressed and noisy, and the CPU time per request is the steadier figure."
            if busy
            else "."
        ),
        "",
    ]
    categories = ", ".join(f"{k} {n:,}" for k, n in info.get("categories", {}).items())
    lines += [
        "## Machine",
        "",
        f"- date: {info['date']}",
        f"- CPU: {cpu_model()}, {cpus()} CPUs available (`nproc`), shared by wrk, uvicorn and "
        "PostgreSQL",
        f"- PostgreSQL {info.get('postgres', 'n/a')} on loopback; Python {v['python']}, "
        f"FastAPI {v['fastapi']}, Pydantic {v['pydantic']}, SQLAlchemy {v['sqlalchemy']}, "
        f"uvicorn {v['uvicorn']} (uvloop, httptools); {v['wrk']}",
        f"- code: commit `{v['commit']}`",
        "",
        "## Method",
        "",
        f"- A fresh database migrated with Alembic, {args.merchants} approved Batang merchants "
        f"and {args.products:,} active products (Core bulk inserts, fixed seed {args.seed}), "
        f"then `ANALYZE`. Products per category: {categories or 'n/a'}.",
        "- The real app: `uvicorn app.main:create_app --factory --workers 1 --host 127.0.0.1 "
        "--no-access-log --log-level warning`, with `ENVIRONMENT=production`, "
        "`LOG_LEVEL=WARNING` and `DATABASE_URL` on the benchmark database.",
        "- The bare app: `scripts/bench_bare_app.py`, one route that returns 20 product-like "
        "dicts held in memory through a `response_model` with the real list item's fields, "
        "wrapped in `{items, next_cursor}`; one uvicorn worker, the same flags.",
        "- Before measuring, every URL is checked to answer 200 with 20 items.",
        f"- Load: `wrk -t1 -c{args.connections} -d{args.duration:g}s --latency` on loopback, "
        f"preceded by a {args.warmup:g} s warm-up of the same URL; targets measured in turn, "
        f"bare first, for {args.rounds} rounds; the table shows the median of the rounds. Any "
        "non-2xx response or socket error fails the run, except that a run during which "
        "PostgreSQL refused connections (`too many clients`: the server is shared) is repeated"
        f" ({info.get('retried', 0)} repeated in this run).",
        f"- The goal: the real list with a filter (`{REAL_TARGETS[0][1]}`) serves at least "
        f"{GOAL:.2f} of the bare app's requests per second. The unfiltered list and "
        "`sort=price_asc` are measured for information.",
        "",
    ]
    text_out = "\n".join(lines)
    if kept:
        text_out += "\n" + KEEP_MARKER + "\n" + kept
    return text_out if text_out.endswith("\n") else text_out + "\n"


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--pg",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (SQLAlchemy URL) where the benchmark database is created",
    )
    p.add_argument("--duration", type=float, default=15, help="seconds per wrk run (15)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--warmup", type=float, default=3, help="warm-up seconds before each run (3)")
    p.add_argument("--rounds", type=int, default=2, help="rounds over all targets (2)")
    p.add_argument("--products", type=int, default=10_000, help="active products (10,000)")
    p.add_argument("--merchants", type=int, default=50, help="approved merchants (50)")
    p.add_argument("--seed", type=int, default=20261129, help="random seed for the data")
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the Markdown report to write (docs/benchmarks.md); '-' writes nothing",
    )
    p.add_argument(
        "--bare-only",
        action="store_true",
        help="measure only the bare app (no database; to try the harness)",
    )
    args = p.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.rounds < 1 or args.products < 20:
        p.error("duration, connections and rounds must be at least 1, products at least 20")
    if args.merchants < 1:
        p.error("merchants must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk (a C HTTP load generator) is not installed: apt-get install wrk", file=sys.stderr
        )
        return 2
    info: dict[str, Any] = {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z"),
        "versions": versions(),
    }
    db_name = f"shanhai_bench_{secrets.token_hex(6)}"
    db_url = make_url(args.pg).set(database=db_name).render_as_string(hide_password=False)
    servers: list[Server] = []
    created = False
    logdir = Path(tempfile.mkdtemp(prefix="shanhai-bench-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        SECRET_KEY=secrets.token_urlsafe(48),
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        if not args.bare_only:
            print(f"creating database {db_name} …", flush=True)
            asyncio.run(_admin(args.pg, f'CREATE DATABASE "{db_name}"'))
            created = True
            upgrade(db_url)
            started = time.perf_counter()
            info.update(asyncio.run(seed(db_url, args.merchants, args.products, args.seed)))
            print(
                f"  {args.merchants} merchants, {args.products:,} products in "
                f"{time.perf_counter() - started:.1f} s; PostgreSQL {info['postgres']}; "
                f"{info['categories']}",
                flush=True,
            )
            if info["categories"].get(FILTER_CATEGORY, 0) < 1000:
                raise SystemExit(f"category {FILTER_CATEGORY} has fewer than 1,000 products")

        bare_server = start_server(
            "bare", ["--app-dir", "scripts", "bench_bare_app:app"], env, logdir
        )
        servers.append(bare_server)
        if not args.bare_only:
            servers.append(start_server("real", ["app.main:create_app", "--factory"], env, logdir))
        for s in servers:
            wait_until_up(s)

        bare = Target("bare FastAPI", bare_server.base, BARE_PATH, bare_server.proc.pid)
        check_page(bare.label, bare.url)
        reals = []
        if not args.bare_only:
            real_server = servers[1]
            reals = [
                Target(label, real_server.base, path, real_server.proc.pid)
                for label, path in REAL_TARGETS
            ]
            for t in reals:
                check_page(t.label, t.url)

        print(
            f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds "
            f"(warm-up {args.warmup:g} s before each run):",
            flush=True,
        )
        by_pid = {s.proc.pid: s for s in servers}
        targets = [bare, *reals]
        info["retried"] = measure(
            targets, by_pid, args.rounds, args.connections, args.duration, args.warmup
        )
        for s in servers:
            if s.proc.poll() is not None:
                raise SystemExit(f"{s.name} server died during the run:\n{s.tail()}")
    finally:
        for s in servers:
            stop_server(s)
        if created:
            asyncio.run(_admin(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            print(f"dropped database {db_name}", flush=True)
        shutil.rmtree(logdir, ignore_errors=True)

    print()
    print(f"{'target':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}  vs bare")
    for t in [bare, *reals]:
        print(
            f"{t.label:<24} {t.median('rps'):9.1f} {t.median('p50_ms'):8.2f} "
            f"{t.median('p99_ms'):8.2f} {t.median('cpu_us'):11.0f}  "
            f"{t.median('rps') / bare.median('rps'):6.2f}"
        )
    if reals:
        ratio = reals[0].median("rps") / bare.median("rps")
        verdict = "meets" if ratio >= GOAL else "MISSES"
        print(f"\nratio real/bare = {ratio:.3f}: {verdict} the goal of {GOAL}")

    if str(args.output) != "-" and not args.bare_only:
        out: Path = args.output
        kept = ""
        if out.is_file():
            previous = out.read_text()
            if KEEP_MARKER in previous:
                kept = previous.split(KEEP_MARKER, 1)[1].lstrip("\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(args, bare, reals, info, kept))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
