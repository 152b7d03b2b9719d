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
    ROOT,
    Server,
    WrkFailed,
    WrkResult,
    admin_execute,
    cpu_model,
    cpus,
    get,
    merchant_rows,
    parse_wrk,
    process_cpu_seconds,
    product_rows,
    run_wrk,
    start_server,
    stop_server,
    versions,
    wait_until_up,
)
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app.core.db import create_engine
from app.core.migrations import upgrade
from app.models import Base, Merchant, Product

GOAL = 0.25
KEEP_MARKER = "<!-- kept -->"
FILTER_CATEGORY = "fruit"

# (label, path): the first real target is the one the goal is about; the others are for information.
BARE_PATH = "/api/v1/products?limit=20"
REAL_TARGETS = [
    ("real, category filter", f"/api/v1/products?limit=20&category={FILTER_CATEGORY}"),
    ("real, no filter", "/api/v1/products?limit=20"),
    ("real, sort=price_asc", "/api/v1/products?limit=20&sort=price_asc"),
]


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
            asyncio.run(admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
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
