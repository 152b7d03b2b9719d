"""Sign-in throttling shared by every API process.

Failed sign-ins are counted per key (`account:<email>`, `address:<client ip>`) in a sliding window
of `settings.login_window_seconds`. A key is blocked while it has at least its maximum of failures
in the window, until enough of them have left it (`retry_after`).

Two backends share one small interface, `LoginThrottle`:
- `DatabaseLoginThrottle` (the default): rows of `login_failures`, written in their own short
  transactions on the app's database, so that a failure survives the 401 that rolls the request's
  session back, and no transaction is held while a password is being hashed.
- `RedisLoginThrottle` (when `settings.redis_url` is set): one sorted set per key, scored by time,
  expiring with the window.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from redis.exceptions import RedisError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import ThrottleUnavailable
from app.core.config import Settings
from app.core.db import Database
from app.core.time import utcnow
from app.models import LoginFailure

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ThrottleRule:
    """`key` is blocked once it has `max_failures` failures in the window."""

    key: str
    max_failures: int


def account_key(email: str) -> str:
    return f"account:{email}"


def address_key(address: str) -> str:
    return f"address:{address}"


class LoginThrottle(ABC):
    def __init__(self, window_seconds: int, clock: Clock = utcnow) -> None:
        self.window_seconds = window_seconds
        self.clock = clock

    @abstractmethod
    async def retry_after(self, rules: Sequence[ThrottleRule]) -> int | None:
        """Seconds until every key in `rules` is below its maximum again; None if none is over."""

    @abstractmethod
    async def record_failure(self, keys: Sequence[str]) -> None:
        """Count one failed sign-in against each of `keys` (durably, whatever the request does)."""

    @abstractmethod
    async def clear(self, key: str) -> None:
        """Forget the failures counted against `key` (after a successful sign-in)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (at shutdown)."""

    def _wait(self, blocking_at: float, now: float) -> int:
        # The blocking failure leaves the window at `blocking_at + window`; whole seconds, ≥ 1.
        return max(1, math.ceil(blocking_at + self.window_seconds - now))


class DatabaseLoginThrottle(LoginThrottle):
    """Rows of `login_failures`; each call is its own short transaction on `db`."""

    # Besides the keys it touches, every so many recorded failures prune the whole table.
    PRUNE_EVERY = 64

    def __init__(self, db: Database, window_seconds: int, clock: Clock = utcnow) -> None:
        super().__init__(window_seconds, clock)
        self.db = db
        self._recorded = 0

    async def retry_after(self, rules: Sequence[ThrottleRule]) -> int | None:
        now = self.clock()
        cutoff = now - timedelta(seconds=self.window_seconds)
        waits: list[int] = []
        # Reads on the read engine: no transaction, so no SQLite write lock, for the check.
        async with AsyncSession(self.db.read_engine) as session:
            for rule in rules:
                # The max-th newest failure in the window exists iff the key is over its limit,
                # and the key is free again when that failure leaves the window.
                blocking_at = await session.scalar(
                    select(LoginFailure.at)
                    .where(LoginFailure.key == rule.key, LoginFailure.at > cutoff)
                    .order_by(LoginFailure.at.desc())
                    .offset(rule.max_failures - 1)
                    .limit(1)
                )
                if blocking_at is not None:
                    waits.append(self._wait(blocking_at.timestamp(), now.timestamp()))
        return max(waits) if waits else None

    async def record_failure(self, keys: Sequence[str]) -> None:
        now = self.clock()
        cutoff = now - timedelta(seconds=self.window_seconds)
        self._recorded += 1
        prune_all = self._recorded % self.PRUNE_EVERY == 1
        async with self.db.sessionmaker() as session, session.begin():
            session.add_all(LoginFailure(key=key, at=now) for key in keys)
            stale = delete(LoginFailure).where(LoginFailure.at <= cutoff)
            if not prune_all:
                stale = stale.where(LoginFailure.key.in_(list(keys)))
            await session.execute(stale)

    async def clear(self, key: str) -> None:
        async with self.db.sessionmaker() as session, session.begin():
            await session.execute(delete(LoginFailure).where(LoginFailure.key == key))


class RedisLoginThrottle(LoginThrottle):
    """A sorted set per key (`<prefix><key>`), members scored by their Unix time, expiring with the
    window. A Redis error is `503 sign_in_unavailable`: attempts are never let through uncounted.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        window_seconds: int,
        *,
        prefix: str = "shanhai:login-failures:",
        clock: Clock = utcnow,
    ) -> None:
        super().__init__(window_seconds, clock)
        self.client = client
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return self.prefix + key

    async def retry_after(self, rules: Sequence[ThrottleRule]) -> int | None:
        now = self.clock().timestamp()
        cutoff = now - self.window_seconds
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for rule in rules:
                    pipe.zrevrangebyscore(
                        self._name(rule.key),
                        "+inf",
                        f"({cutoff}",
                        start=rule.max_failures - 1,
                        num=1,
                        withscores=True,
                    )
                results: list[Any] = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ThrottleUnavailable() from exc
        waits = [self._wait(float(found[0][1]), now) for found in results if found]
        return max(waits) if waits else None

    async def record_failure(self, keys: Sequence[str]) -> None:
        now = self.clock().timestamp()
        member = f"{now:.6f}:{uuid.uuid4().hex}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for key in keys:
                    name = self._name(key)
                    pipe.zadd(name, {member: now})
                    pipe.zremrangebyscore(name, "-inf", now - self.window_seconds)
                    pipe.expire(name, self.window_seconds + 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ThrottleUnavailable() from exc

    async def clear(self, key: str) -> None:
        try:
            await self.client.delete(self._name(key))
        except (RedisError, OSError) as exc:
            raise ThrottleUnavailable() from exc

    async def aclose(self) -> None:
        await self.client.aclose()


def build_login_throttle(settings: Settings, db: Database) -> LoginThrottle:
    """Redis when `settings.redis_url` is set, else the database."""
    if settings.redis_url:
        client = aioredis.Redis.from_url(settings.redis_url)
        return RedisLoginThrottle(client, settings.login_window_seconds)
    return DatabaseLoginThrottle(db, settings.login_window_seconds)


def get_login_throttle(request: Request) -> LoginThrottle:
    """The app's throttle, built on first use and kept on `app.state.login_throttle`."""
    state = request.app.state
    throttle: LoginThrottle | None = getattr(state, "login_throttle", None)
    if throttle is None:
        throttle = build_login_throttle(state.settings, state.db)
        state.login_throttle = throttle
    return throttle


@asynccontextmanager
async def login_throttle_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Closes the app's throttle (its Redis connections) at shutdown."""
    yield
    throttle: LoginThrottle | None = getattr(app.state, "login_throttle", None)
    if throttle is not None:
        await throttle.aclose()


def client_address(request: Request, trusted_proxy_hops: int) -> str:
    """The caller's address as a throttling key.

    Without trusted proxies it is the peer address. With `trusted_proxy_hops = n`, it is the
    address `n` entries from the right of `X-Forwarded-For` (the one our outermost trusted proxy
    saw), or its leftmost entry when the header is shorter. IPv6 addresses are counted per /64,
    the block a single subscriber usually holds, so rotating within it does not reset the count.
    """
    address = request.client.host if request.client else "unknown"
    if trusted_proxy_hops > 0:
        forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
        hops = [part.strip() for part in forwarded.split(",") if part.strip()]
        if hops:
            candidate = hops[-min(trusted_proxy_hops, len(hops))]
            if _is_ip(candidate):  # garbage in the header falls back to the peer address
                address = candidate
    return _normalize_ip(address)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _normalize_ip(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
