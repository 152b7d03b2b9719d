"""The `shanhai` command: migrate, create-user, seed-demo, jobs, stats, serve."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.db import Database


def _migrate(_: argparse.Namespace) -> int:
    from app.core.migrations import upgrade

    upgrade(get_settings().database_url)
    print("database is at the newest revision")
    return 0


def _read_password() -> str | None:
    """The new account's password, never from the command line (it would stay in the shell's
    history and in every process listing): asked twice on a terminal, otherwise one line of
    standard input (`printf '%s\\n' "$PW" | shanhai create-user …`). None after printing why."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            print("error: the two passwords differ", file=sys.stderr)
            return None
        return first
    line = sys.stdin.readline()
    if not line:
        print("error: no password on standard input (one line is read)", file=sys.stderr)
        return None
    return line.rstrip("\r\n")


async def _create_user(args: argparse.Namespace, password: str) -> int:
    from app.accounts.errors import AccountError
    from app.accounts.service import create_user
    from app.models import BuyerType, Role

    db = Database(get_settings().database_url)
    try:
        async with db.sessionmaker() as session:
            try:
                user = await create_user(
                    session,
                    email=args.email,
                    password=password,
                    display_name=args.display_name or args.email.split("@")[0],
                    role=Role(args.role),
                    region_code=args.region_code,
                    buyer_type=BuyerType(args.buyer_type) if args.buyer_type else None,
                )
            except AccountError as exc:
                print(f"error: {exc.detail} ({exc.code})", file=sys.stderr)
                return 1
            await session.commit()
            print(f"created {user.role} {user.email} ({user.id})")
    finally:
        await db.dispose()
    return 0


async def _seed_demo(_: argparse.Namespace) -> int:
    from app.seed.demo import print_summary, seed_demo

    settings = get_settings()
    if settings.environment == "production":
        print(
            "error: seed-demo refuses to run when ENVIRONMENT=production: it adds demo accounts "
            "whose password is published, and made-up orders",
            file=sys.stderr,
        )
        return 2
    db = Database(settings.database_url)
    try:
        async with db.sessionmaker() as session:
            summary = await seed_demo(session)
            await session.commit()
        print_summary(summary)
    finally:
        await db.dispose()
    return 0


async def _jobs(args: argparse.Namespace) -> int:
    from app.core.logging import configure_logging
    from app.integrations.stripe import StripeGateway
    from app.jobs.runner import JobContext, run_forever, run_once

    settings = get_settings()
    configure_logging(settings.log_level)
    db = Database(settings.database_url)
    gateway = (
        StripeGateway(
            settings.stripe_api_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.stripe_timeout_seconds,
        )
        if settings.stripe_api_key
        else None
    )
    try:
        ctx = JobContext(db=db, settings=settings, gateway=gateway)
        if args.jobs_command == "run-once":
            done = await run_once(ctx)
            print(" ".join(f"{name}={count}" for name, count in done.items()))
        else:
            await run_forever(ctx, args.interval)
    finally:
        await db.dispose()
    return 0


async def _stats(args: argparse.Namespace) -> int:
    """`stats rebuild` recomputes every aggregate; `stats verify` exits 1 on any difference."""
    from app.core.progress import ProgressBar
    from app.statistics.recount import rebuild, verify

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        async with db.sessionmaker() as session:
            if args.stats_command == "rebuild":
                bar = ProgressBar("rebuild") if sys.stderr.isatty() else None
                await rebuild(session, settings.east_region_codes, settings.west_region_codes, bar)
                await session.commit()
                print("statistics rebuilt from the order lines")
                return 0
            problems = await verify(session, settings.east_region_codes, settings.west_region_codes)
    finally:
        await db.dispose()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"statistics differ from a recount ({len(problems)} shown)", file=sys.stderr)
        return 1
    print("statistics agree with a recount of the order lines")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    if not args.no_migrate:
        from app.core.migrations import upgrade

        upgrade(settings.database_url)
    if not os.environ.get("SECRET_KEY") and args.workers > 1:
        # Every worker must sign and verify with the same key.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    print(
        f"Shanhai API on http://{args.host}:{args.port} — docs at http://{args.host}:{args.port}/docs"
    )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        # Never believe X-Forwarded-For in uvicorn (it would from 127.0.0.1): the client address
        # is derived in our code, from TRUSTED_PROXY_HOPS only (app.accounts.throttle).
        proxy_headers=False,
        log_level="warning",
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shanhai", description="Operate the Shanhai API.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="bring the database to the newest revision")

    create = commands.add_parser(
        "create-user",
        help="create an admin or official account; the password is read from standard input "
        "(asked twice on a terminal)",
    )
    create.add_argument("--role", required=True, choices=["admin", "official", "buyer"])
    create.add_argument("--email", required=True)
    create.add_argument("--display-name")
    create.add_argument("--region-code", default="330127")
    create.add_argument("--buyer-type")

    commands.add_parser("seed-demo", help="load the demo marketplace (idempotent)")

    jobs = commands.add_parser("jobs", help="run the scheduled jobs")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_commands.add_parser("run-once", help="run every due job now, then exit")
    run = jobs_commands.add_parser("run", help="keep running the jobs")
    run.add_argument("--interval", type=float, default=30.0, help="seconds between runs")

    stats = commands.add_parser("stats", help="consumption-assistance statistics")
    stats_commands = stats.add_subparsers(dest="stats_command", required=True)
    stats_commands.add_parser("rebuild", help="recompute every aggregate from the order lines")
    stats_commands.add_parser("verify", help="compare the aggregates with a recount (exit 1)")

    serve = commands.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    return parser


def _checked_settings() -> Settings | None:
    """The settings, or None after printing why they are refused (e.g. the production guard)."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"error: {where + ': ' if where else ''}{message}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if _checked_settings() is None:
        return 2
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "create-user":
        password = _read_password()
        if password is None:
            return 1
        return asyncio.run(_create_user(args, password))
    if args.command == "seed-demo":
        return asyncio.run(_seed_demo(args))
    if args.command == "jobs":
        return asyncio.run(_jobs(args))
    if args.command == "stats":
        return asyncio.run(_stats(args))
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
