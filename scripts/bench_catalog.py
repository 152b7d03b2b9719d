"""Benchmark the public product list against a bare FastAPI ceiling, in the same run (`make bench`).

The goal: `GET /api/v1/products?limit=20&category=fruit` over 10,000 products on PostgreSQL,
served by one API process configured as `compose.yaml` runs it, answers at least 0.45 of the
requests per second of a bare FastAPI app on the same server settings that returns the same
bytes from memory through the response model; PostgreSQL spends at most 0.2 ms of CPU per
request; the API process stays under 200 MB resident.

What it does:
1. creates a fresh PostgreSQL database `shanhai_bench_<random>` on `--pg` (dropped at the end, even
   on failure), migrates it, inserts ~50 approved Batang merchants and 10,000 active products with
   Core bulk inserts, and runs ANALYZE;
2. starts the real API as compose runs it (`shanhai serve --no-migrate`, one process,
   `ENVIRONMENT=production`, `LOG_LEVEL=INFO`: the access log on), with the abuse limits set high
   enough never to refuse (their checks still run); captures the body of the goal URL; starts
   `scripts/bench_bare_app.py` (uvicorn, one process, access log on), which serves those bytes
   through the response model, and checks both answer the same bytes and every URL 200 with 20
   items;
3. runs `wrk` (a C load generator) on loopback, ceiling and API alternately in each of
   `--rounds` rounds (after a warm-up of each target); per run, reads the API process's CPU
   time and largest RSS, and the CPU time of the PostgreSQL backends serving it; the ratio is
   the median of the rounds' ratios;
4. prints a table and writes it to `--output` (docs/benchmarks.md) with the machine and the method.
   Anything below the line `<!-- kept -->` in an existing output file is kept.

Needs `wrk` (`apt-get install wrk`) and a PostgreSQL server on this machine (its backends' CPU
is read from /proc) that the user can create databases on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import (
    BIN,
    ROOT,
    RssSampler,
    Server,
    WrkFailed,
    WrkResult,
    admin_execute,
    backend_cpu,
    backend_cpu_spent,
    cpu_model,
    cpus,
    free_port,
    get,
    merchant_rows,
    parse_wrk,
    peak_rss_mb,
    process_cpu_seconds,
    product_rows,
    run_wrk,
    start_command,
    stop_server,
    versions,
    wait_until_up,
)
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app.core.db import create_engine
from app.core.migrations import upgrade
from app.models import Base, Merchant, Product

GOAL = 0.45
PG_CPU_GOAL_MS = 0.2
RSS_GOAL_MB = 200
KEEP_MARKER = "<!-- kept -->"
FILTER_CATEGORY = "fruit"

# (label, path): the first real target is the one the goal is about; the others are for information.
REAL_TARGETS = [
    ("real, category filter", f"/api/v1/products?limit=20&category={FILTER_CATEGORY}"),
    ("real, no filter", "/api/v1/products?limit=20"),
    ("real, sort=price_asc", "/api/v1/products?limit=20&sort=price_asc"),
]
GOAL_PATH = REAL_TARGETS[0][1]
BARE_PATH = GOAL_PATH  # the ceiling answers the goal URL's captured page

# The abuse limits stay on (their checks run) but far above anything the load could reach.
ABUSE_LIMITS = {
    "UNPAID_ORDERS_PER_BUYER": "1000000",
    "CHECKOUTS_PER_HOUR_PER_BUYER": "100000000",
    "SIGNUPS_PER_HOUR_PER_ADDRESS": "100000000",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": "100000000",
    "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000000",
}


# --------------------------------------------------------------------------------------------
# Data


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


def check_page(label: str, url: str) -> bytes:
    """Fail loudly unless the URL answers 200 with a full page of 20 items; the body."""
    status, body = get(url)
    if status != 200:
        raise SystemExit(f"{label}: GET {url} answered {status}: {body[:300]!r}")
    items = json.loads(body).get("items")
    if not isinstance(items, list) or len(items) != 20:
        count = len(items) if isinstance(items, list) else None
        raise SystemExit(f"{label}: GET {url} answered {count} items, expected 20")
    return body


def start_real(env: dict[str, str], logdir: Path) -> Server:
    """The API as compose.yaml runs it, with one process instead of two."""
    port = free_port()
    cmd = [str(BIN / "shanhai"), "serve", "--no-migrate", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1"]
    return start_command("real", cmd, env, logdir, port)


def start_bare(env: dict[str, str], logdir: Path, page_file: Path) -> Server:
    """The ceiling: uvicorn with the same loop and HTTP parser, its access log on."""
    port = free_port()
    cmd = [str(BIN / "uvicorn"), "--app-dir", "scripts", "bench_bare_app:app"]
    cmd += ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-proxy-headers"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info", "--access-log"]
    return start_command("bare", cmd, {**env, "BENCH_PAGE_FILE": str(page_file)}, logdir, port)


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class Run:
    wrk: WrkResult
    rss_mb: float
    """The server process's largest resident set size during the run (sampled VmRSS)."""
    pg_cpu_ms: float | None
    """CPU time of the PostgreSQL backends serving the API, per request (None: the ceiling)."""
    pg_gone: int = 0


@dataclass
class Target:
    label: str
    base: str
    path: str
    pid: int
    database: str | None
    runs: list[Run] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + self.path

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r.wrk, attr) for r in self.runs))

    def median_pg_ms(self) -> float | None:
        values = [r.pg_cpu_ms for r in self.runs if r.pg_cpu_ms is not None]
        return float(statistics.median(values)) if values else None

    def max_rss(self) -> float:
        return max(r.rss_mb for r in self.runs)


# A PostgreSQL server shared with other work may run out of connection slots for a moment.
_RETRYABLE = "too many clients already"
RETRIES = 3


def measure(
    targets: list[Target],
    servers: dict[int, Server],
    args: argparse.Namespace,
) -> int:
    """Rounds of every target in turn (ceiling first, then the goal URL, then the others), each
    run preceded by a short warm-up. A run whose errors the server logged as PostgreSQL refusing
    connections (its `max_connections` taken by other clients) is repeated, at most `RETRIES`
    times; any other error fails. Returns how many runs were repeated."""
    retried = 0
    for r in range(1, args.rounds + 1):
        for t in targets:
            server = servers[t.pid]
            for attempt in range(RETRIES + 1):
                log_size = server.log.stat().st_size
                try:
                    run = run_once(t, args)
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
            t.runs.append(run)
            result = run.wrk
            pg = f"PG {run.pg_cpu_ms:.3f} ms/req" if run.pg_cpu_ms is not None else ""
            print(
                f"  round {r}/{args.rounds}  {t.label:<24} {result.rps:9.1f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"CPU {result.cpu_us:5.0f} µs/req ({result.cpu_share:4.0%})  "
                f"RSS {run.rss_mb:5.1f} MB  {pg}  load {result.load:.1f}",
                flush=True,
            )
    return retried


def run_once(t: Target, args: argparse.Namespace) -> Run:
    if args.warmup > 0:
        run_wrk(t.url, args.connections, args.warmup, latency=False)
    load = os.getloadavg()[0]
    pg_before = backend_cpu(args.pg, t.database) if t.database else {}
    cpu_before, wall_before = process_cpu_seconds(t.pid), time.monotonic()
    with RssSampler(t.pid) as rss:
        result = parse_wrk(run_wrk(t.url, args.connections, args.duration))
    cpu = process_cpu_seconds(t.pid) - cpu_before
    result.cpu_share = cpu / (time.monotonic() - wall_before)
    result.cpu_us = cpu * 1e6 / max(result.requests, 1)
    result.load = load
    pg_ms: float | None = None
    gone = 0
    if t.database:
        spent, gone = backend_cpu_spent(pg_before, backend_cpu(args.pg, t.database))
        pg_ms = spent * 1e3 / max(result.requests, 1)
    return Run(result, rss.max_mb, pg_ms, gone)


def round_ratios(bare: Target, real: Target) -> list[float]:
    """real / ceiling requests per second, round by round (the two ran next to each other)."""
    return [r.wrk.rps / b.wrk.rps for r, b in zip(real.runs, bare.runs, strict=True)]


# --------------------------------------------------------------------------------------------
# Report


def render(
    args: argparse.Namespace,
    bare: Target,
    reals: list[Target],
    info: dict[str, Any],
    kept: str,
) -> str:
    v = info["versions"]
    goal = reals[0]
    ratios = round_ratios(bare, goal)
    ratio = statistics.median(ratios)
    pg_ms = goal.median_pg_ms() or 0.0
    rss = max(t.max_rss() for t in reals)
    verdict = "meets" if ratio >= GOAL else "misses"
    lines = [
        "# Catalogue benchmark",
        "",
        "Generated by `scripts/bench_catalog.py` (`make bench`); the figures come from one run.",
        "",
        "## Result",
        "",
        f"`GET {goal.path}` served **{goal.median('rps'):,.0f} req/s** against "
        f"**{bare.median('rps'):,.0f} req/s** for the bare FastAPI ceiling sending the same "
        f"bytes: a ratio of **{ratio:.2f}** (median of the rounds: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}), which {verdict} the goal of {GOAL:.2f}. "
        f"PostgreSQL spent **{pg_ms:.3f} ms of CPU per request** (goal ≤ {PG_CPU_GOAL_MS}: "
        f"{'met' if pg_ms <= PG_CPU_GOAL_MS else 'missed'}); the API process's largest "
        f"resident set was **{rss:.0f} MB** (goal < {RSS_GOAL_MB}: "
        f"{'met' if rss < RSS_GOAL_MB else 'missed'}).",
        "",
        "| target | URL | req/s | p50 ms | p99 ms | API CPU µs/req | API CPU | max RSS MB | "
        "PG CPU ms/req | req/s per round | vs ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for t in [bare, *reals]:
        per_round = ", ".join(f"{r.wrk.rps:,.0f}" for r in t.runs)
        rel = 1.0 if t is bare else statistics.median(round_ratios(bare, t))
        pg = t.median_pg_ms()
        lines.append(
            f"| {t.label} | `{t.path}` | {t.median('rps'):,.0f} | {t.median('p50_ms'):.2f} | "
            f"{t.median('p99_ms'):.2f} | {t.median('cpu_us'):,.0f} | "
            f"{t.median('cpu_share'):.0%} | {t.max_rss():.0f} | "
            f"{'–' if pg is None else f'{pg:.3f}'} | {per_round} | {rel:.2f} |"
        )
    loads = [r.wrk.load for t in [bare, *reals] for r in t.runs]
    gone = sum(r.pg_gone for t in reals for r in t.runs)
    cpu_ratio = bare.median("cpu_us") / goal.median("cpu_us")
    lines += [
        "",
        "Medians over the rounds; *vs ceiling* is the median of each round's ratio to the "
        "ceiling's run of the same round. *API CPU µs/req*: user + system CPU time of the "
        "server process during the run, per request; *API CPU*: that time over the run's wall "
        "time (100% is one core kept busy). *Max RSS*: the largest VmRSS of the server process "
        f"sampled every 0.1 s during the runs (VmHWM at the end: {info.get('hwm_mb', 0):.0f} MB "
        "for the API, including start-up). *PG CPU ms/req*: user + system CPU time of the "
        "PostgreSQL backends connected to the benchmark database (pids from "
        "`pg_stat_activity`, times from `/proc/<pid>/stat`) during the run, per request"
        + (f" ({gone} backends went away mid-run and are undercounted)" if gone else "")
        + ".",
        f"Per request, the API process spends {1 / cpu_ratio:.1f} times the ceiling's CPU "
        f"time (if the API process alone were the bottleneck: a ratio of {cpu_ratio:.2f}).",
    ]
    busy = max(loads) > cpus() / 2
    lines += [
        "",
        f"1-minute load average when each run started: {min(loads):.1f}–{max(loads):.1f} "
        f"on {cpus()} CPUs"
        + (
            ". **The machine was busy with other work during the run**: the req/s figures are "
            "depressed and noisy; the ratio (ceiling and API measured alternately) and the CPU "
            "time per request are the steadier figures."
            if busy
            else "."
        ),
        "",
    ]
    categories = ", ".join(f"{k} {n:,}" for k, n in info.get("categories", {}).items())
    limits = ", ".join(f"`{k}={int(val):,}`" for k, val in ABUSE_LIMITS.items())
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
        "- The API as `compose.yaml` runs it, with one process: `shanhai serve --no-migrate "
        "--workers 1 --host 127.0.0.1` (uvicorn, uvloop, httptools), `ENVIRONMENT=production`, "
        "`LOG_LEVEL=INFO` (so the API's access log writes one JSON line per request, as in "
        "production; uvicorn's own access line is replaced by it), the default pool "
        "(`DB_POOL_SIZE=40`, `DB_MAX_OVERFLOW=0`), `DATABASE_URL` on the benchmark database. "
        f"The abuse limits stay on but are set far above what the load could reach: {limits}; "
        "the list does not pass through them, and no response was 429 (any non-2xx fails the "
        "run).",
        f"- The ceiling: `scripts/bench_bare_app.py`, a bare FastAPI app with one route. The "
        f"body the API answered for `{GOAL_PATH}` is captured before the load; at start-up the "
        "ceiling parses those bytes into the real response model (`Page[ProductRead]`) and "
        "returns that object on every request, validated and serialised by FastAPI through "
        "`response_model`. The script checks the ceiling answers byte for byte the same body. "
        "uvicorn with one process, uvloop, httptools, `--log-level info --access-log` (one "
        "access line per request, like the API).",
        "- Before measuring, every URL is checked to answer 200 with 20 items.",
        f"- Load: `wrk -t1 -c{args.connections} -d{args.duration:g}s --latency` on loopback, "
        f"preceded by a {args.warmup:g} s warm-up of the same URL; in each of {args.rounds} "
        "rounds the ceiling, then the goal URL, then the other URLs, so each ratio compares "
        "runs made next to each other; the table shows medians over the rounds. Any non-2xx "
        "response or socket error fails the run, except that a run during which PostgreSQL "
        "refused connections (`too many clients`: the server is shared) is repeated "
        f"({info.get('retried', 0)} repeated in this run).",
        f"- The goal: the list with a filter (`{GOAL_PATH}`) at {GOAL:.2f} of the ceiling or "
        f"more, at most {PG_CPU_GOAL_MS} ms of PostgreSQL CPU per request, under "
        f"{RSS_GOAL_MB} MB resident. The unfiltered list and `sort=price_asc` are measured for "
        "information. Nothing in the catalogue changes during the load, so after the warm-up "
        "every page comes from the process's kept pages (`app.catalog.pages`): each request "
        "waits for a read of the catalogue version that started after it arrived (requests "
        "waiting together share one read), then sends the page kept for that version.",
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
    p.add_argument("--rounds", type=int, default=3, help="rounds over all targets (3)")
    p.add_argument("--products", type=int, default=10_000, help="active products (10,000)")
    p.add_argument("--merchants", type=int, default=50, help="approved merchants (50)")
    p.add_argument("--seed", type=int, default=20261129, help="random seed for the data")
    p.add_argument(
        "--goal-only",
        action="store_true",
        help="measure only the ceiling and the goal URL (quicker, for development)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the Markdown report to write (docs/benchmarks.md); '-' writes nothing",
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
        LOG_LEVEL="INFO",
        **ABUSE_LIMITS,
    )
    for name in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_REPLICA_URL", "REDIS_URL"):
        env.pop(name, None)
    print(
        "abuse limits: on (their checks run) but set high enough never to refuse: "
        + ", ".join(f"{k}={v}" for k, v in ABUSE_LIMITS.items()),
        flush=True,
    )
    real_targets = REAL_TARGETS[:1] if args.goal_only else REAL_TARGETS
    try:
        print(f"creating database {db_name} …", flush=True)
        asyncio.run(admin_execute(args.pg, f'CREATE DATABASE "{db_name}"'))
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

        real_server = start_real(env, logdir)
        servers.append(real_server)
        wait_until_up(real_server)
        reals = [
            Target(label, real_server.base, path, real_server.proc.pid, db_name)
            for label, path in real_targets
        ]
        page = check_page(reals[0].label, reals[0].url)
        for t in reals[1:]:
            check_page(t.label, t.url)
        page_file = logdir / "page.json"
        page_file.write_bytes(page)

        bare_server = start_bare(env, logdir, page_file)
        servers.append(bare_server)
        wait_until_up(bare_server)
        bare = Target(
            "ceiling (bare FastAPI)", bare_server.base, BARE_PATH, bare_server.proc.pid, None
        )
        if check_page(bare.label, bare.url) != page:
            raise SystemExit("the ceiling does not answer the same bytes as the API")
        print(f"  the ceiling answers the API's {len(page):,} bytes exactly", flush=True)

        print(
            f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds "
            f"(warm-up {args.warmup:g} s before each run):",
            flush=True,
        )
        by_pid = {s.proc.pid: s for s in servers}
        info["retried"] = measure([bare, *reals], by_pid, args)
        info["hwm_mb"] = peak_rss_mb(real_server.proc.pid)
        for s in servers:
            if s.proc.poll() is not None:
                raise SystemExit(f"{s.name} server died during the run:\n{s.tail()}")
        refused = real_server.log.read_text(errors="replace").count('"status": 429')
        if refused:
            raise SystemExit(f"the API refused {refused} requests with 429: abuse limits hit")
    finally:
        for s in servers:
            stop_server(s)
        if created:
            asyncio.run(admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            print(f"dropped database {db_name}", flush=True)
        shutil.rmtree(logdir, ignore_errors=True)

    print()
    print(
        f"{'target':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} "
        f"{'RSS MB':>7} {'PG ms/req':>10}  vs ceiling"
    )
    for t in [bare, *reals]:
        rel = 1.0 if t is bare else statistics.median(round_ratios(bare, t))
        pg = t.median_pg_ms()
        print(
            f"{t.label:<24} {t.median('rps'):9.1f} {t.median('p50_ms'):8.2f} "
            f"{t.median('p99_ms'):8.2f} {t.median('cpu_us'):11.0f} {t.max_rss():7.1f} "
            f"{'-' if pg is None else f'{pg:.3f}':>10}  {rel:6.2f}"
        )
    ratios = round_ratios(bare, reals[0])
    ratio = statistics.median(ratios)
    pg_ms = reals[0].median_pg_ms() or 0.0
    rss = max(t.max_rss() for t in reals)
    print(
        f"\nratio API/ceiling = {ratio:.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)}): "
        f"{'meets' if ratio >= GOAL else 'MISSES'} the goal of {GOAL}"
    )
    print(
        f"PostgreSQL CPU {pg_ms:.3f} ms/request: "
        f"{'meets' if pg_ms <= PG_CPU_GOAL_MS else 'MISSES'} the goal of ≤ {PG_CPU_GOAL_MS}"
    )
    print(
        f"API RSS max {rss:.1f} MB (VmHWM {info['hwm_mb']:.1f} MB): "
        f"{'meets' if rss < RSS_GOAL_MB else 'MISSES'} the goal of < {RSS_GOAL_MB}"
    )
    print(
        "abuse limits were on, set high enough never to trigger: "
        + ", ".join(f"{k}={v}" for k, v in ABUSE_LIMITS.items())
    )

    if str(args.output) != "-":
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
