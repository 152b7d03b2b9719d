"""Sign-in throttling, on the shared rate limiter (`app.core.ratelimit`).

Every attempt is counted atomically *before* the password is checked, so twenty simultaneous
attempts against a limit of five check at most five passwords; a right password gives its attempt
back, so what stays counted are failures. The policy, in this order:

1. **(account, client address)**: `LOGIN_MAX_FAILURES_PER_ACCOUNT` failures in
   `LOGIN_WINDOW_SECONDS` close that pair until its window ends (`429 too_many_attempts`,
   `Retry-After` = the seconds left). An attacker locks out only himself, never the owner at
   another address.
2. **client address**: `LOGIN_MAX_FAILURES_PER_ADDRESS` failures in the window, across accounts.
3. **account as a whole** (attempts from many addresses): never a lock-out, only a short, growing
   delay. After `LOGIN_MAX_FAILURES_PER_ACCOUNT` failures in the window from any addresses, each
   further attempt must wait 1 s, then 2, 4, … up to `LOGIN_ACCOUNT_MAX_DELAY_SECONDS` after the
   previous one that passed; the window ending resets it.

A right password clears its pair and the account's delay, and gives the address its attempt back.
A refused attempt is counted nowhere else (the counts it took are given back), so waiting as told
always works.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request

from app.accounts.errors import ThrottleUnavailable, TooManyAttempts
from app.core.config import Settings
from app.core.ratelimit import Hit, LimiterUnavailable, RateLimiter, build_rate_limiter

ACCOUNT_DELAY_BASE_MS = 1000


def pair_key(email: str, address: str) -> str:
    return f"login:pair:{email}|{address}"


def address_key(address: str) -> str:
    return f"login:address:{address}"


def account_key(email: str) -> str:
    return f"login:account:{email}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """A counted sign-in attempt, to give back if the password was right."""

    email: str
    pair: Hit
    address: Hit


class LoginThrottle:
    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self.limiter = limiter
        self.window = settings.login_window_seconds
        self.per_account = settings.login_max_failures_per_account
        self.per_address = settings.login_max_failures_per_address
        self.max_delay_ms = int(settings.login_account_max_delay_seconds * 1000)

    async def begin(self, email: str, address: str) -> Attempt:
        """Count the attempt, or raise `TooManyAttempts` (429) / `ThrottleUnavailable` (503)."""
        try:
            return await self._begin(email, address)
        except LimiterUnavailable as exc:
            raise ThrottleUnavailable() from exc

    async def _begin(self, email: str, address: str) -> Attempt:
        pair = await self.limiter.hit(pair_key(email, address), self.per_account, self.window)
        if not pair.allowed:
            raise TooManyAttempts(pair.retry_after)
        by_address = await self.limiter.hit(address_key(address), self.per_address, self.window)
        if not by_address.allowed:
            await self.limiter.refund(pair)
            raise TooManyAttempts(by_address.retry_after)
        wait = await self.limiter.gate(
            account_key(email),
            free=self.per_account,
            window_seconds=self.window,
            base_ms=ACCOUNT_DELAY_BASE_MS,
            cap_ms=max(self.max_delay_ms, ACCOUNT_DELAY_BASE_MS),
        )
        if wait is not None:
            await self.limiter.refund(pair)
            await self.limiter.refund(by_address)
            raise TooManyAttempts(wait)
        return Attempt(email, pair, by_address)

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the attempt was not a failure, and whoever knows the password
        starts afresh on this account (its pair with this address, and the account's delay)."""
        try:
            await self.limiter.clear(attempt.pair.key)
            await self.limiter.refund(attempt.address)
            await self.limiter.clear(account_key(attempt.email))
        except LimiterUnavailable as exc:
            raise ThrottleUnavailable() from exc


def get_rate_limiter(request: Request) -> RateLimiter:
    """The app's limiter (Redis with `REDIS_URL`, else the database), built on first use and kept
    on `app.state.rate_limiter`."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None:
        limiter = build_rate_limiter(state.settings.redis_url, state.db)
        state.rate_limiter = limiter
    return limiter


def get_login_throttle(request: Request) -> LoginThrottle:
    return LoginThrottle(get_rate_limiter(request), request.app.state.settings)


@asynccontextmanager
async def rate_limiter_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Closes the app's limiter (its Redis connections) at shutdown."""
    yield
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.aclose()


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
