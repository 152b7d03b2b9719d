"""Pieces every router declares the same way: the empty action body and the documented answers
shared by many routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from app.orders.schemas import EmptyBody

NoFields = Annotated[EmptyBody | None, Body(description="`{}`, or no body.")]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "`not_authenticated` / `invalid_token`."},
    403: {"description": "`forbidden`: the caller's role may not do this."},
}

PROVIDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    502: {"description": "`payment_provider_error`: Stripe refused the request."},
    503: {
        "description": "`payment_provider_unavailable`: Stripe is not configured, unreachable "
        "or failing; retry with the same Idempotency-Key."
    },
}
