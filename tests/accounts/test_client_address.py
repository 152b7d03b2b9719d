"""`TRUSTED_PROXY_HOPS=0`: no `X-Forwarded-For` is believed, from any peer — 127.0.0.1 included.

An attacker who can reach the API directly (or through a proxy that passes the header on) must
not escape the per-address limits by writing a new address into `X-Forwarded-For` on every
request. Shown on the real server (`shanhai serve`, as the Dockerfile and compose run it) and
through ASGI with the peer at 127.0.0.1.
"""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.fixtures.accounts import TOKEN_URL, client_at
from tests.fixtures.servers import ROOT, serving


async def _rotate(client: httpx.AsyncClient, attempts: int) -> list[httpx.Response]:
    """Failed sign-ins on fresh accounts, each claiming another client address."""
    return [
        await client.post(
            TOKEN_URL,
            data={"username": f"stuffed{i}@example.cn", "password": "a guessed password"},
            headers={"X-Forwarded-For": f"192.0.2.{i + 1}"},
        )
        for i in range(attempts)
    ]


async def test_the_served_api_ignores_forwarded_for_without_trusted_proxies(database_url, app):
    # (`app`: its teardown empties the tables the server wrote.)
    with serving(database_url, LOGIN_MAX_FAILURES_PER_ADDRESS="3") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
            answers = await _rotate(client, 5)
        codes = [r.status_code for r in answers]
        # All come from 127.0.0.1 whatever the header says: the fourth is over the address limit.
        assert codes == [401, 401, 401, 429, 429], server.tail()
    assert answers[3].json()["code"] == "too_many_attempts"


async def test_a_loopback_peer_is_not_a_trusted_proxy(app: FastAPI):
    app.state.settings.login_max_failures_per_address = 3
    async with client_at(app, "127.0.0.1") as client:
        codes = [r.status_code for r in await _rotate(client, 5)]
    assert codes == [401, 401, 401, 429, 429]


def test_every_way_we_serve_goes_through_shanhai_serve():
    """The Dockerfile and compose start `shanhai serve` (proxy headers off in uvicorn) and never
    switch uvicorn's own X-Forwarded-For handling back on."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "compose.yaml").read_text()
    cmd = re.findall(r"^CMD (.*)$", dockerfile, flags=re.M)
    assert cmd and '"shanhai", "serve"' in cmd[-1]
    assert '["shanhai", "serve"' in compose
    for text in (dockerfile, compose, (ROOT / "app" / "cli.py").read_text()):
        assert "proxy-headers" not in text.replace("no-proxy-headers", "")
        assert "proxy_headers=True" not in text
        assert "forwarded-allow-ips" not in text.lower().replace("_", "-")
