"""The one mechanism behind every abuse limit: sign-in, sign-up and checkout.

Two primitives, each one atomic step in the store, so that concurrent requests on any number of
processes can never both take the last unit:

- `hit(key, limit, window)`: a fixed window anchored at the key's first hit. The attempt is
  counted *before* the work it guards; it is allowed while the count is at most `limit`, and a
  refused one learns `retry_after`, the seconds until the window ends (exact: the next attempt
  after that starts a new window). `refund` gives a counted attempt back (a sign-in that turned out
  to be right is not a failure).
- `gate(key, free, window, base, cap)`: the first `free - 1` attempts in the window pass at once;
  from the `free`-th on, each passing attempt closes the gate for a delay that starts at `base`
  and doubles up to `cap`. A closed gate refuses without counting, with the exact time it opens.

Backends: `DatabaseRateLimiter` (the default) keeps one `rate_limits` row per key, changed by one
`INSERT … ON CONFLICT DO UPDATE … RETURNING` in a short transaction of its own (committed whatever
the request does); `RedisRateLimiter` (with `REDIS_URL`) runs one Lua script per step. Checkout
counts inside its own order transaction instead (`hit_in_transaction`), because the counter's row
lock is also what keeps one buyer's concurrent checkouts in line (`app.orders.limits`).

Why not the `limits` library: its moving windows and async Redis storage are good, but it has no
database storage (the embedded default would need ours anyway, so two mechanisms), no way to give
an attempt back, and nothing like the growing gate; the Lua scripts here are some thirty lines.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import BigInteger, Insert, Table, bindparam, case, delete, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.errors import AppError
from app.core.sql import upsert
from app.core.statements import Statements
from app.models import RateLimit

Clock = Callable[[], int]
"""Unix time in milliseconds."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _seconds(ms: int) -> int:
    """Whole seconds, rounded up, at least 1: a Retry-After never shorter than the real wait."""
    return max(1, math.ceil(ms / 1000))


class LimiterUnavailable(AppError):
    """The shared counter did not answer: refuse rather than let attempts through uncounted."""

    status = 503
    code = "rate_limiter_unavailable"

    def __init__(self) -> None:
        super().__init__("Try again shortly.", headers={"Retry-After": "5"})


class RateLimited(AppError):
    """Too many requests of one kind (sign-ups per address, checkouts per buyer)."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(
            f"{detail} Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


@dataclass(frozen=True, slots=True)
class Hit:
    key: str
    hits: int
    window_start_ms: int
    allowed: bool
    retry_after: int
    """Seconds until the window ends (meaningful when refused)."""


def _hit(key: str, limit: int, window_ms: int, now: int, hits: int, start: int) -> Hit:
    return Hit(key, hits, start, hits <= limit, _seconds(start + window_ms - now))


def hit_of(key: str, limit: int, window_seconds: float, now: int, hits: int, start: int) -> Hit:
    """The `Hit` of a counter a caller's own statement upserted as `HIT` does and read back."""
    return _hit(key, limit, int(window_seconds * 1000), now, hits, start)


class RateLimiter(ABC):
    @abstractmethod
    async def hit(self, key: str, limit: int, window_seconds: float) -> Hit:
        """Count one attempt against `key` and say whether it is within `limit`."""

    @abstractmethod
    async def refund(self, hit: Hit) -> None:
        """Give back the attempt `hit` counted (if its window is still the current one)."""

    @abstractmethod
    async def clear(self, key: str) -> None:
        """Forget everything counted against `key` (a window or a gate)."""

    @abstractmethod
    async def gate(
        self, key: str, *, free: int, window_seconds: float, base_ms: int, cap_ms: int
    ) -> int | None:
        """Pass (None) or refuse with the seconds until the gate opens; see the module doc."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections (at shutdown)."""


# The database store ------------------------------------------------------------------------------

_rl = cast(Table, RateLimit.__table__)
_now = sql_cast(bindparam("now"), BigInteger)
_expired = _rl.c.window_start_ms <= sql_cast(bindparam("cutoff"), BigInteger)


def _hit_statement() -> Insert:
    statement = upsert(
        _rl,
        [_rl.c.key],
        {
            "hits": case((_expired, 1), else_=_rl.c.hits + 1),
            "window_start_ms": case((_expired, _now), else_=_rl.c.window_start_ms),
        },
    )
    return statement.values(
        key=bindparam("rl_key"),
        window_start_ms=bindparam("now"),
        hits=1,
        delay_ms=0,
        blocked_until_ms=0,
    ).returning(_rl.c.hits, _rl.c.window_start_ms)


def _gate_statement() -> Insert:
    new_hits = case((_expired, 1), else_=_rl.c.hits + 1)
    base = sql_cast(bindparam("base_ms"), BigInteger)
    cap = sql_cast(bindparam("cap_ms"), BigInteger)
    new_delay = case(
        (new_hits < bindparam("free"), 0),
        (or_(_expired, _rl.c.delay_ms == 0), base),
        (_rl.c.delay_ms * 2 > cap, cap),
        else_=_rl.c.delay_ms * 2,
    )
    statement = upsert(
        _rl,
        [_rl.c.key],
        {
            "hits": new_hits,
            "window_start_ms": case((_expired, _now), else_=_rl.c.window_start_ms),
            "delay_ms": new_delay,
            # Nothing to wait for below `free` (0, not "now": a concurrent attempt whose
            # clock was read a moment earlier must not be refused).
            "blocked_until_ms": case((new_hits < bindparam("free"), 0), else_=_now + new_delay),
        },
        where=_rl.c.blocked_until_ms <= _now,
    )
    return statement.values(
        key=bindparam("rl_key"),
        window_start_ms=bindparam("now"),
        hits=1,
        delay_ms=bindparam("first_delay_ms"),
        blocked_until_ms=bindparam("first_blocked_until_ms"),
    ).returning(_rl.c.hits)


HIT = _hit_statement()
GATE = _gate_statement()
_REFUND = (
    update(_rl).where(_rl.c.key == bindparam("rl_key"), _rl.c.hits > 0).values(hits=_rl.c.hits - 1)
)
_CLEAR = (
    update(_rl)
    .where(_rl.c.key == bindparam("rl_key"))
    .values(hits=0, delay_ms=0, blocked_until_ms=0)
)
_BLOCKED_UNTIL = select(_rl.c.blocked_until_ms).where(_rl.c.key == bindparam("rl_key"))


async def hit_in_transaction(
    db: Statements, key: str, limit: int, window_seconds: float, now: int
) -> Hit:
    """`hit` inside the caller's transaction: the count commits or rolls back with it, and the
    key's row stays locked (PostgreSQL) until then. One prebuilt statement."""
    window_ms = int(window_seconds * 1000)
    row = await db.first(HIT, {"rl_key": key, "now": now, "cutoff": now - window_ms})
    assert row is not None
    return _hit(key, limit, window_ms, now, int(row["hits"]), int(row["window_start_ms"]))


# Every window and gate is shorter than this (the longest is the hour of checkouts and sign-ups,
# and LOGIN_WINDOW_SECONDS is at most a day): a row older than it counts nothing any more.
STALE_AFTER_MS = 24 * 3600 * 1000


async def purge_stale_counters(session: AsyncSession) -> int:
    """Delete counters whose window ended long ago and that block nothing (a job). How many."""
    now = now_ms()
    result = await session.execute(
        delete(_rl).where(
            _rl.c.window_start_ms < now - STALE_AFTER_MS, _rl.c.blocked_until_ms < now
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


class DatabaseRateLimiter(RateLimiter):
    """`rate_limits` rows; each step is one statement in a short transaction of its own."""

    def __init__(self, db: Database, clock: Clock = now_ms) -> None:
        self.db = db
        self.clock = clock

    async def hit(self, key: str, limit: int, window_seconds: float) -> Hit:
        async with self.db.sessionmaker() as session, session.begin():
            return await hit_in_transaction(
                await Statements.of(session), key, limit, window_seconds, self.clock()
            )

    async def refund(self, hit: Hit) -> None:
        async with self.db.sessionmaker() as session, session.begin():
            await session.execute(
                _REFUND.where(_rl.c.window_start_ms == hit.window_start_ms), {"rl_key": hit.key}
            )

    async def clear(self, key: str) -> None:
        async with self.db.sessionmaker() as session, session.begin():
            await session.execute(_CLEAR, {"rl_key": key})

    async def gate(
        self, key: str, *, free: int, window_seconds: float, base_ms: int, cap_ms: int
    ) -> int | None:
        now = self.clock()
        first_delay = base_ms if free <= 1 else 0
        params = {
            "rl_key": key,
            "now": now,
            "cutoff": now - int(window_seconds * 1000),
            "free": free,
            "base_ms": base_ms,
            "cap_ms": cap_ms,
            "first_delay_ms": first_delay,
            "first_blocked_until_ms": now + first_delay if first_delay else 0,
        }
        async with self.db.sessionmaker() as session, session.begin():
            db = await Statements.of(session)
            if await db.first(GATE, params) is not None:
                return None
            until = await db.scalar(_BLOCKED_UNTIL, {"rl_key": key})
        return _seconds(int(until or now) - now)


# The Redis store ---------------------------------------------------------------------------------

_HIT_LUA = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""
_REFUND_LUA = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""
# KEYS: the counter hash, the block key. ARGV: window_ms, free, base_ms, cap_ms.
_GATE_LUA = """
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return blocked end
local n = redis.call('HINCRBY', KEYS[1], 'hits', 1)
if n == 1 then
  redis.call('HSET', KEYS[1], 'delay', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if n >= tonumber(ARGV[2]) then
  local d = tonumber(redis.call('HGET', KEYS[1], 'delay') or '0')
  if d == 0 then d = tonumber(ARGV[3]) else d = math.min(d * 2, tonumber(ARGV[4])) end
  redis.call('HSET', KEYS[1], 'delay', d)
  redis.call('SET', KEYS[2], '1', 'PX', d)
end
return 0
"""


class RedisRateLimiter(RateLimiter):
    """One Lua script per step (atomic in Redis); times are Redis's own key expiries. A Redis
    error is `LimiterUnavailable` (503): attempts are never let through uncounted."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "shanhai:limits:") -> None:
        self.client = client
        self.prefix = prefix
        self._hit = client.register_script(_HIT_LUA)
        self._refund = client.register_script(_REFUND_LUA)
        self._gate = client.register_script(_GATE_LUA)

    async def _run(self, script: Any, keys: list[str], args: list[int]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable() from exc

    async def hit(self, key: str, limit: int, window_seconds: float) -> Hit:
        window_ms = int(window_seconds * 1000)
        hits, ttl = await self._run(self._hit, [self.prefix + key], [window_ms])
        now = now_ms()  # only to express the window start; the wait is Redis's own TTL
        return _hit(key, limit, window_ms, now, int(hits), now + int(ttl) - window_ms)

    async def refund(self, hit: Hit) -> None:
        await self._run(self._refund, [self.prefix + hit.key], [])

    async def clear(self, key: str) -> None:
        gate = self.prefix + "{" + key + "}"
        try:
            await self.client.delete(self.prefix + key, gate, gate + ":blocked")
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable() from exc

    async def gate(
        self, key: str, *, free: int, window_seconds: float, base_ms: int, cap_ms: int
    ) -> int | None:
        name = self.prefix + "{" + key + "}"
        args = [int(window_seconds * 1000), free, base_ms, cap_ms]
        blocked = int(await self._run(self._gate, [name, name + ":blocked"], args))
        return _seconds(blocked) if blocked > 0 else None

    async def aclose(self) -> None:
        await self.client.aclose()


def build_rate_limiter(redis_url: str | None, db: Database) -> RateLimiter:
    """Redis when `redis_url` is set, else the database."""
    if redis_url:
        return RedisRateLimiter(aioredis.Redis.from_url(redis_url))
    return DatabaseRateLimiter(db)
