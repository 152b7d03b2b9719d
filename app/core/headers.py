"""Security headers on every response, and `Cache-Control: no-store` on every API response that
may carry personal data. Pure ASGI, like the request-context middleware, and outside it, so its
own 413 and 500 answers get the headers too.

The caching rule: every `/api/v1` response is `no-store`, except the public catalogue reads
(`GET`/`HEAD` of `/categories`, `/products`, `/products/{id}`, `/merchants`, `/merchants/{id}`)
made without an `Authorization` header: those are the same for every anonymous caller and carry
no personal data, so shared caches may keep them. Signed in, the same reads may carry private
fields (a merchant's members see its bank account, an admin every merchant), so they are
`no-store` too.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX: Final = "/api/v1"
_PUBLIC_READ = re.compile(r"^/api/v1/(categories|products|merchants)(/[^/]+)?/?$")
_ALWAYS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_HSTS: Final = (b"strict-transport-security", b"max-age=31536000")
_NO_STORE: Final = (b"cache-control", b"no-store")


def is_public_read(scope: Scope) -> bool:
    """An anonymous GET/HEAD of the public catalogue: the one API answer that may be cached."""
    if scope["method"] not in ("GET", "HEAD") or not _PUBLIC_READ.match(scope["path"]):
        return False
    return not any(key == b"authorization" for key, _ in scope.get("headers", ()))


def came_over_tls(scope: Scope, trusted_proxy_hops: int) -> bool:
    """Whether the client's connection was TLS: the server's own scheme, or, behind trusted
    proxies only (`TRUSTED_PROXY_HOPS` > 0), the scheme our nearest proxy reports in
    `X-Forwarded-Proto`. Browsers ignore HSTS received over plain HTTP anyway, so a forged
    header gains nothing."""
    if scope.get("scheme") == "https":
        return True
    if trusted_proxy_hops <= 0:
        return False
    for key, value in scope.get("headers", ()):
        if key == b"x-forwarded-proto":
            proto: str = value.decode("latin-1")
            return proto.split(",")[-1].strip().lower() == "https"
    return False


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted_proxy_hops: int = 0) -> None:
        self.app = app
        self.trusted_proxy_hops = trusted_proxy_hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = list(_ALWAYS)
        if came_over_tls(scope, self.trusted_proxy_hops):
            added.append(_HSTS)
        no_store = scope["path"].startswith(API_PREFIX) and not is_public_read(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if no_store:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append(_NO_STORE)
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in added if h[0] not in present)  # a page's own wins
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
