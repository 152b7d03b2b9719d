"""Statistics benchmark: every `group_by` over a year, and the year's export by merchant, end to
end over HTTP against one uvicorn worker, on SQLite and on PostgreSQL.

    python scripts/bench_stats.py --lines 1000000 [--requests 21] [--only sqlite|postgresql]
    python scripts/bench_stats.py --sqlite-url URL --pg-url URL   # data sets made earlier

Each database is created afresh and filled by `scripts/gen_stats_dataset.py` (which rebuilds
the aggregates), unless `--sqlite-url`/`--pg-url` name a database it filled before (a 1M-line
data set takes minutes to make: make it once, measure it as often as needed). Then it is queried
sequentially (one request at a time: latency, not throughput). Prints the median and p95 in
milliseconds per query.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import benchlib
from gen_stats_dataset import OFFICIAL_ID, generate
from sqlalchemy import func, select

from app.core.db import create_engine
from app.core.migrations import upgrade
from app.core.security import create_access_token
from app.models import OrderLine
from app.statistics.schemas import GroupBy


def timed_get(url: str, token: str) -> tuple[float, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()
        status = int(resp.status)
    return (time.perf_counter() - started) * 1000, status


def measure(base: str, token: str, year: int, requests: int) -> dict[str, tuple[float, float]]:
    period = f"from={year}-01-01&to={year}-12-31"
    queries = {
        g.value: f"{base}/api/v1/stats/assistance?{period}&group_by={g.value}" for g in GroupBy
    }
    queries["export merchant xlsx"] = (
        f"{base}/api/v1/stats/assistance/export?{period}&group_by=merchant&format=xlsx"
    )
    queries["merchant, Feb–Nov (union path)"] = (
        f"{base}/api/v1/stats/assistance?from={year}-02-01&to={year}-11-30&group_by=merchant"
    )
    out = {}
    for name, url in queries.items():
        timed_get(url, token)  # warm up
        times = []
        for _ in range(requests):
            ms, status = timed_get(url, token)
            assert status == 200, (name, status)
            times.append(ms)
        times.sort()
        out[name] = (statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))])
    return out


def run_one(kind: str, url: str, lines: int | None, requests: int, year: int, logdir: Path) -> None:
    """Fill `url` with `lines` order lines first, or measure what it holds (`lines` None)."""
    timings = asyncio.run(generate(url, lines, year)) if lines else asyncio.run(count_lines(url))
    # Production settings refuse SQLite (it is for development and the demo): development there.
    env = benchlib.server_env(url, **({"ENVIRONMENT": "development"} if kind == "sqlite" else {}))
    server = benchlib.start_server(
        f"stats-{kind}", ["app.main:create_app", "--factory"], env, logdir
    )
    try:
        benchlib.wait_until_up(server)
        token, _ = create_access_token(OFFICIAL_ID, env["SECRET_KEY"], 120)
        results = measure(server.base, token, year, requests)
    finally:
        benchlib.stop_server(server)
    made = (
        f" (insert {timings['insert_s']:.0f} s, rebuild {timings['rebuild_s']:.0f} s)"
        if "insert_s" in timings
        else " (made earlier)"
    )
    print(f"\n{kind}: {int(timings['lines']):,} lines{made}; {requests} requests each")
    print(f"{'query':<34} {'median ms':>10} {'p95 ms':>8}")
    for name, (median, p95) in results.items():
        print(f"{name:<34} {median:>10.1f} {p95:>8.1f}")
    sys.stdout.flush()


async def count_lines(url: str) -> dict[str, float]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            lines = await conn.scalar(select(func.count()).select_from(OrderLine))
    finally:
        await engine.dispose()
    return {"lines": float(lines or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=21)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=benchlib.DEFAULT_PG)
    parser.add_argument("--sqlite-url", help="a SQLite data set made earlier (not refilled)")
    parser.add_argument("--pg-url", help="a PostgreSQL data set made earlier (not refilled)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        if args.only in (None, "sqlite"):
            if args.sqlite_url:
                run_one("sqlite", args.sqlite_url, None, args.requests, args.year, logdir)
            else:
                url = f"sqlite+aiosqlite:///{logdir / 'stats.db'}"
                upgrade(url)
                run_one("sqlite", url, args.lines, args.requests, args.year, logdir)
        if args.only in (None, "postgresql"):
            if args.pg_url:
                run_one("postgresql", args.pg_url, None, args.requests, args.year, logdir)
            else:
                with benchlib.throwaway_database(args.postgres, "shanhai_stats") as url:
                    run_one("postgresql", url, args.lines, args.requests, args.year, logdir)


if __name__ == "__main__":
    main()
