"""Assertions and route tables shared by the conformance tests."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code); returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


def unprocessable(r: httpx.Response, code: str, loc: list[str | int]) -> dict[str, Any]:
    """A 422 with `code` whose `errors` name `loc`, each error a `{loc, msg, type}`."""
    body = problem(r, 422, code)
    errors = body["errors"]
    assert errors, body
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}, error
        assert isinstance(error["msg"], str) and error["msg"]
    assert loc in [e["loc"] for e in errors], errors
    return body


# Every operation of the API, by how it answers a caller who may not act (API.md, "auth"). The
# permissions matrix (test_permissions_matrix.py) checks each cell; the 404/403 test
# (test_not_found_or_forbidden.py) checks both sides on resources of every status.
SEE_OR_ACT = {  # 404 to who may not see, 403 to who sees but may not act
    "PATCH /api/v1/merchants/{merchant_id}",
    "POST /api/v1/merchants/{merchant_id}/approve",
    "POST /api/v1/merchants/{merchant_id}/reject",
    "POST /api/v1/merchants/{merchant_id}/suspend",
    "POST /api/v1/merchants/{merchant_id}/reinstate",
    "POST /api/v1/merchants/{merchant_id}/resubmit",
    "POST /api/v1/merchants/{merchant_id}/verify-bank-account",
    "POST /api/v1/merchants/{merchant_id}/members",
    "GET /api/v1/merchants/{merchant_id}/members",
    "DELETE /api/v1/merchants/{merchant_id}/members/{user_id}",
    "POST /api/v1/merchants/{merchant_id}/payout-account",
    "GET /api/v1/merchants/{merchant_id}/payout-account",
    "GET /api/v1/merchants/{merchant_id}/orders",
    "POST /api/v1/products/{product_id}/approve",
    "POST /api/v1/products/{product_id}/reject",
    "PATCH /api/v1/products/{product_id}",
    "POST /api/v1/products/{product_id}/activate",
    "POST /api/v1/products/{product_id}/deactivate",
    "POST /api/v1/products/{product_id}/stock-adjustments",
    "GET /api/v1/products/{product_id}/stock-adjustments",
    "GET /api/v1/orders/{order_id}",
    "POST /api/v1/orders/{order_id}/cancel",
    "POST /api/v1/orders/{order_id}/payments",
    "POST /api/v1/orders/{order_id}/refunds",
    "POST /api/v1/merchant-orders/{merchant_order_id}/ship",
    "POST /api/v1/merchant-orders/{merchant_order_id}/confirm-receipt",
    "POST /api/v1/payments/{payment_id}/confirm",
    "POST /api/v1/refunds/{refund_id}/approve",
    "POST /api/v1/refunds/{refund_id}/reject",
    "POST /api/v1/refunds/{refund_id}/retry",
    "POST /api/v1/refunds/{refund_id}/mark-paid",
    "GET /api/v1/settlements/{settlement_id}",
    "GET /api/v1/settlements/{settlement_id}/export",
    "POST /api/v1/invitations/{invitation_id}/accept",
    "POST /api/v1/invitations/{invitation_id}/decline",
}
ROLE_ONLY = {  # no resource of someone else's is named, or the role decides: 403, never 404
    "POST /api/v1/users",
    "GET /api/v1/users",
    "GET /api/v1/users/{user_id}",
    "PATCH /api/v1/users/{user_id}",
    "GET /api/v1/audit-events",
    "GET /api/v1/ledger/balances",
    "POST /api/v1/merchants",
    "GET /api/v1/merchants/{merchant_id}/products",
    "POST /api/v1/products",
    "POST /api/v1/orders",
    "GET /api/v1/orders",
    "GET /api/v1/refunds",
    "POST /api/v1/settlements/runs",
    "GET /api/v1/settlements",
    "GET /api/v1/settlements/export",
    "POST /api/v1/settlements/{settlement_id}/payout",
    "POST /api/v1/settlements/{settlement_id}/mark-paid",
    "GET /api/v1/stats/assistance",
    "PUT /api/v1/stats/targets/{year}",
    "GET /api/v1/stats/assistance/progress",
    "GET /api/v1/stats/assistance/export",
}
OPEN = {  # anyone, or what is public (or the caller's own)
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "POST /api/v1/auth/register",
    "POST /api/v1/auth/token",
    "GET /api/v1/me",
    "GET /api/v1/me/invitations",
    "GET /api/v1/merchants",
    "GET /api/v1/merchants/{merchant_id}",
    "GET /api/v1/categories",
    "GET /api/v1/products",
    "GET /api/v1/products/{product_id}",
    "POST /api/v1/webhooks/stripe",
}
