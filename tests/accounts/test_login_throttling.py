"""Sign-in throttling from the attacker's side: concurrency, many addresses, and the owner.

Every test runs on both stores (the database and Redis). The policy (app.accounts.throttle):
5 failures per (account, address) per window close that pair; the account as a whole is only
ever slowed down (1 s, 2 s, 4 s … up to LOGIN_ACCOUNT_MAX_DELAY_SECONDS between attempts).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.accounts import ThrottleBackend, client_at, sign_in
from tests.fixtures.factories import PASSWORD, make_user


@pytest.fixture(params=["database", "redis"])
async def backend(request, app: FastAPI) -> AsyncIterator[ThrottleBackend]:
    chosen = ThrottleBackend(request.param)
    chosen.install(app)
    try:
        yield chosen
    finally:
        await chosen.close()


class Clock:
    """Unix milliseconds that the test moves (the database store only)."""

    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


async def _simultaneous(clients: list[httpx.AsyncClient], email: str) -> Counter[int]:
    answers = await asyncio.gather(*(sign_in(c, email, "a guessed password") for c in clients))
    for r in answers:
        if r.status_code == 429:
            assert r.json()["code"] == "too_many_attempts"
            assert int(r.headers["retry-after"]) >= 1
    return Counter(r.status_code for r in answers)


async def test_twenty_simultaneous_guesses_check_at_most_five_passwords(client, session, backend):
    await make_user(session, email="target@example.cn")
    codes = await _simultaneous([client] * 20, "target@example.cn")
    # A 401 is a password that was checked: exactly the five the limit allows, no more.
    assert codes == Counter({401: 5, 429: 15})


async def test_twenty_addresses_at_once_check_at_most_five_passwords(app, session):
    """The account-wide gate, with the clock held still (the 1 s delay never runs out while the
    twenty argon2 checks queue up on a busy machine)."""
    ThrottleBackend("database").install(app, Clock())
    await make_user(session, email="target@example.cn")
    clients = [client_at(app, f"198.51.100.{i + 1}") for i in range(20)]
    try:
        codes = await _simultaneous(clients, "target@example.cn")
    finally:
        for c in clients:
            await c.aclose()
    assert codes == Counter({401: 5, 429: 15})


async def test_an_attacker_locks_out_only_himself(app, client, session, backend):
    """Five failures from the attacker's address close that pair for the window; the owner, at
    another address, signs in as soon as the account's short delay (1 s) has passed."""
    await make_user(session, email="owner@example.cn")
    for _ in range(5):
        assert (await sign_in(client, "owner@example.cn", "a guess")).status_code == 401
    refused = await sign_in(client, "owner@example.cn", PASSWORD)
    window = app.state.settings.login_window_seconds
    assert refused.status_code == 429
    assert window - 10 <= int(refused.headers["retry-after"]) <= window

    async with client_at(app, "198.51.100.77") as owner:
        first = await sign_in(owner, "owner@example.cn", PASSWORD)
        if first.status_code == 429:  # within the account's one-second delay
            assert int(first.headers["retry-after"]) == 1
            await asyncio.sleep(1)
            first = await sign_in(owner, "owner@example.cn", PASSWORD)
        assert first.status_code == 200
    # The attacker's pair stays closed.
    assert (await sign_in(client, "owner@example.cn", PASSWORD)).status_code == 429


async def test_the_account_delay_grows_is_capped_and_never_locks(app, session):
    """Guesses from ever new addresses, each sent the moment the previous answer allowed: the
    waits grow 1, 2, 4, 8 and stop at the cap; a guess one second early is still refused; the
    owner gets in whenever the gate is open."""
    clock = Clock()
    backend = ThrottleBackend("database")
    backend.install(app, clock)
    app.state.settings.login_account_max_delay_seconds = 8
    await make_user(session, email="popular@example.cn")
    waits: list[int] = []
    for i in range(12):
        async with client_at(app, f"192.0.2.{i + 1}") as guesser:
            r = await sign_in(guesser, "popular@example.cn", "a guess")
            if r.status_code == 429:
                wait = int(r.headers["retry-after"])
                waits.append(wait)
                clock.advance(wait - 1)
                early = await sign_in(guesser, "popular@example.cn", "a guess")
                assert early.status_code == 429
                clock.advance(1)
                r = await sign_in(guesser, "popular@example.cn", "a guess")
            assert r.status_code == 401
    assert waits == [1, 2, 4, 8, 8, 8, 8]

    async with client_at(app, "198.51.100.200") as owner:
        r = await sign_in(owner, "popular@example.cn", PASSWORD)
        assert r.status_code == 429
        clock.advance(int(r.headers["retry-after"]))
        assert (await sign_in(owner, "popular@example.cn", PASSWORD)).status_code == 200
        # The owner's success resets the account's delay.
        assert (await sign_in(owner, "popular@example.cn", PASSWORD)).status_code == 200


async def test_retry_after_is_exact_for_a_closed_pair(app, client, session):
    clock = Clock()
    ThrottleBackend("database").install(app, clock)
    await make_user(session, email="patient@example.cn")
    for _ in range(5):
        assert (await sign_in(client, "patient@example.cn", "a guess")).status_code == 401
        clock.advance(10)
    r = await sign_in(client, "patient@example.cn", PASSWORD)
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert wait == app.state.settings.login_window_seconds - 50
    clock.advance(wait - 1)
    assert (await sign_in(client, "patient@example.cn", PASSWORD)).status_code == 429
    clock.advance(1)
    assert (await sign_in(client, "patient@example.cn", PASSWORD)).status_code == 200
