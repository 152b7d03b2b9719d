"""A request killed (kill -9) after it claimed its Idempotency-Key: the retry proceeds at once.

The first API process (`shanhai serve`) is stuck in a call to a "Stripe" that accepts the
connection and never answers, holding the claim of the buyer's key; it is then killed with
SIGKILL. The buyer's retry with the same key, on a second process talking to localstripe, opens the
payment at once instead of being told `Retry-After: 1` for two minutes. While the first process
still lives, its claim is respected (409, no second Stripe call).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from app.core.security import create_access_token
from app.core.time import utcnow
from app.models import IdempotencyKey, IdempotencyStatus, User
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.orders import idem, order_body
from tests.fixtures.servers import SECRET, serving
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET

API = "/api/v1"


class SilentServer:
    """Accepts TCP connections on a loopback port and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _stripe(base: str, timeout: str) -> dict[str, str]:
    return {
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": base,
        "STRIPE_TIMEOUT_SECONDS": timeout,
    }


def _bearer(user: User) -> dict[str, str]:
    token, _ = create_access_token(user.id, SECRET, 60)
    return {"Authorization": f"Bearer {token}"}


async def _retry(base: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        return await c.post(path, json={}, headers=headers)


async def test_a_retry_after_kill_9_proceeds_at_once(
    client,
    app,
    session,
    database_url,
    silent,
    localstripe: LocalStripe,
):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=5)
    buyer = await make_user(session)
    r = await client.post(
        f"{API}/orders",
        json=order_body([(product, 1)], method="stripe"),
        headers={**auth(app, buyer), **idem()},
    )
    assert r.status_code == 201, r.text
    path = f"{API}/orders/{r.json()['id']}/payments"
    headers = {**_bearer(buyer), "Idempotency-Key": "pay-once"}
    on_postgres = database_url.startswith("postgresql")

    with serving(database_url, **_stripe(silent.url, "60")) as first:
        stuck = asyncio.create_task(_retry(first.base, path, headers))
        deadline = time.monotonic() + 30
        while not silent.accepted.is_set():  # the request holds its claim, waiting on "Stripe"
            assert time.monotonic() < deadline, first.tail()
            assert not stuck.done(), stuck.result().text
            await asyncio.sleep(0.05)

        # Alive: the claim is respected, on the claimant's own process ...
        busy = await _retry(first.base, path, headers)
        assert busy.status_code == 409, busy.text
        assert busy.json()["code"] == "idempotency_request_in_progress"
        assert int(busy.headers["retry-after"]) >= 1

        if on_postgres:
            # ... and on another one (the claimant's lock is held by its live connection).
            with serving(database_url, **_stripe(localstripe.url, "5")) as other:
                busy = await _retry(other.base, path, headers)
                assert busy.status_code == 409, busy.text

        first.kill()
        with pytest.raises(httpx.HTTPError):
            await stuck

    # SQLite is one serving process: the next one starts after the crash.
    with serving(database_url, **_stripe(localstripe.url, "5")) as second:
        started = time.monotonic()
        retried = await _retry(second.base, path, headers)
        assert retried.status_code == 201, retried.text + second.tail()
        assert time.monotonic() - started < 60  # not the 120 s of a stale claim
        body = retried.json()
        assert body["provider"] == "stripe" and body["client_secret"]
        again = await _retry(second.base, path, headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["payment_id"] == body["payment_id"]


async def test_an_unknown_claimant_is_waited_for_as_long_as_it_really_takes(client, app, session):
    """A claim without a recorded claimant (made before claimants were recorded) can only be
    taken over once stale: Retry-After says when, not "1"."""
    buyer = await make_user(session)
    path = f"{API}/orders/00000000-0000-0000-0000-000000000001/payments"
    # The same request as the one that claimed the key (sha256 of method, path and body).
    fingerprint = json.dumps(["POST", path, {}], sort_keys=True, separators=(",", ":"))
    claimed = utcnow() - timedelta(seconds=30)
    session.add(
        IdempotencyKey(
            user_id=buyer.id,
            key="old-claim",
            request_hash=hashlib.sha256(fingerprint.encode()).hexdigest(),
            status=IdempotencyStatus.in_progress,
            created_at=claimed,
            expires_at=claimed + timedelta(hours=24),
        )
    )
    await session.commit()
    r = await client.post(
        path,
        json={},
        headers={**auth(app, buyer), "Idempotency-Key": "old-claim"},
    )
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_request_in_progress"
    assert 60 <= int(r.headers["retry-after"]) <= 90  # 120 s after the claim, not 1
