"""The only module that imports `stripe`.

`StripeGateway` wraps the official SDK's async client (HTTPX) with our timeouts, idempotency keys
derived from our own ids, and one mapping of provider failures onto problem+json answers: Stripe
unreachable or timing out is `503 payment_provider_unavailable`, Stripe answering with an error is
`502 payment_provider_error`. Nothing else in the code base knows the SDK's types.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from app.core.errors import AppError, ServiceUnavailable

logger = logging.getLogger("shanhai.stripe")


class PaymentProviderUnavailable(ServiceUnavailable):
    code = "payment_provider_unavailable"


class PaymentProviderError(AppError):
    status = 502
    code = "payment_provider_error"


class InvalidSignature(AppError):
    status = 400
    code = "invalid_signature"


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    status: str
    """Stripe's PaymentIntent status: requires_payment_method, processing, succeeded, canceled…"""
    amount: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    id: str
    status: str
    """pending, requires_action, succeeded, failed or canceled."""
    amount: int
    payment_intent: str | None
    refund_id: str | None = None
    """Our refund's id, from the metadata we sent: finds a refund whose answer we never got."""


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    id: str
    payouts_enabled: bool


@dataclass(frozen=True, slots=True)
class AccountLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    amount: int
    destination: str


def transfer_idempotency_key(settlement_id: uuid.UUID) -> str:
    """The idempotency key of the transfer paying statement `settlement_id`."""
    return f"transfer-{settlement_id}"


def _plain(obj: Any) -> dict[str, Any]:
    to_dict = getattr(obj, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(obj)


def _intent(raw: Any) -> Intent:
    obj = _plain(raw)
    return Intent(
        id=str(obj["id"]),
        status=str(obj["status"]),
        amount=int(obj["amount"]),
        currency=str(obj["currency"]),
        client_secret=obj.get("client_secret"),
        metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
    )


def _refund(raw: Any) -> ProviderRefund:
    obj = _plain(raw)
    return ProviderRefund(
        id=str(obj["id"]),
        status=str(obj.get("status") or "pending"),
        amount=int(obj["amount"]),
        payment_intent=obj.get("payment_intent"),
        refund_id=(obj.get("metadata") or {}).get("refund_id"),
    )


class StripeGateway:
    """Calls to Stripe; each may raise PaymentProviderUnavailable or PaymentProviderError."""

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str | None,
        api_base: str | None = None,
        timeout_seconds: float = 10.0,
        max_network_retries: int = 1,
    ) -> None:
        base = {"api": api_base, "connect": api_base} if api_base else None
        self.webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=stripe.HTTPXClient(timeout=timeout_seconds),
            max_network_retries=max_network_retries,
        )

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            logger.warning("stripe unreachable", extra={"call": what, "error": str(exc)[:200]})
            raise PaymentProviderUnavailable(
                "The payment provider cannot be reached; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        except stripe.StripeError as exc:
            logger.warning(
                "stripe error",
                extra={"call": what, "http_status": exc.http_status, "error": str(exc)[:200]},
            )
            if exc.http_status is None or exc.http_status >= 500:
                raise PaymentProviderUnavailable(
                    "The payment provider failed; try again shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            raise PaymentProviderError(
                f"The payment provider refused the request: {exc.user_message or 'error'}"
            ) from None

    async def create_payment_intent(
        self, *, payment_id: uuid.UUID, amount_fen: int, order_id: uuid.UUID, order_no: str
    ) -> Intent:
        """A CNY PaymentIntent for a payment; the same payment id always gives the same intent."""
        obj = await self._call(
            "payment_intents.create",
            self._client.v1.payment_intents.create_async(
                {
                    "amount": amount_fen,
                    "currency": "cny",
                    "metadata": {
                        "payment_id": str(payment_id),
                        "order_id": str(order_id),
                        "order_no": order_no,
                    },
                },
                {"idempotency_key": f"payment-{payment_id}"},
            ),
        )
        return _intent(obj)

    async def retrieve_payment_intent(self, intent_id: str) -> Intent:
        obj = await self._call(
            "payment_intents.retrieve",
            self._client.v1.payment_intents.retrieve_async(intent_id),
        )
        return _intent(obj)

    async def cancel_payment_intent(self, intent_id: str) -> Intent:
        obj = await self._call(
            "payment_intents.cancel",
            self._client.v1.payment_intents.cancel_async(
                intent_id, None, {"idempotency_key": f"cancel-{intent_id}"}
            ),
        )
        return _intent(obj)

    async def create_refund(
        self,
        *,
        refund_id: uuid.UUID,
        intent_id: str,
        amount_fen: int,
        idempotency_key: str | None = None,
    ) -> ProviderRefund:
        """A (partial) refund of a PaymentIntent. The same idempotency key (by default
        `refund-<refund_id>`) never refunds twice."""
        obj = await self._call(
            "refunds.create",
            self._client.v1.refunds.create_async(
                {
                    "payment_intent": intent_id,
                    "amount": amount_fen,
                    "metadata": {"refund_id": str(refund_id)},
                },
                {"idempotency_key": idempotency_key or f"refund-{refund_id}"},
            ),
        )
        return _refund(obj)

    async def retrieve_refund(self, refund_id: str) -> ProviderRefund:
        obj = await self._call(
            "refunds.retrieve", self._client.v1.refunds.retrieve_async(refund_id)
        )
        return _refund(obj)

    async def list_refunds(self, intent_id: str) -> list[ProviderRefund]:
        """The refunds of a PaymentIntent (its latest 100)."""
        page = await self._call(
            "refunds.list",
            self._client.v1.refunds.list_async({"payment_intent": intent_id, "limit": 100}),
        )
        return [_refund(item) for item in _plain(page).get("data") or []]

    async def create_connected_account(self, *, merchant_id: uuid.UUID) -> ConnectedAccount:
        obj = await self._call(
            "accounts.create",
            self._client.v1.accounts.create_async(
                {
                    "type": "express",
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"merchant_id": str(merchant_id)},
                },
                {"idempotency_key": f"account-{merchant_id}"},
            ),
        )
        return ConnectedAccount(id=str(obj["id"]), payouts_enabled=bool(obj["payouts_enabled"]))

    async def create_account_link(
        self, *, account_id: str, refresh_url: str, return_url: str
    ) -> AccountLink:
        obj = await self._call(
            "account_links.create",
            self._client.v1.account_links.create_async(
                {
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            ),
        )
        return AccountLink(
            url=str(obj["url"]), expires_at=datetime.fromtimestamp(int(obj["expires_at"]), UTC)
        )

    async def retrieve_account(self, account_id: str) -> ConnectedAccount:
        obj = await self._call(
            "accounts.retrieve", self._client.v1.accounts.retrieve_async(account_id)
        )
        return ConnectedAccount(id=str(obj["id"]), payouts_enabled=bool(obj["payouts_enabled"]))

    async def create_transfer(
        self, *, settlement_id: uuid.UUID, amount_fen: int, destination: str
    ) -> Transfer:
        """A CNY transfer to a connected account paying one statement; the same statement id
        always gives the same transfer (Stripe honours the idempotency key)."""
        obj = await self._call(
            "transfers.create",
            self._client.v1.transfers.create_async(
                {
                    "amount": amount_fen,
                    "currency": "cny",
                    "destination": destination,
                    "metadata": {"settlement_id": str(settlement_id)},
                },
                {"idempotency_key": transfer_idempotency_key(settlement_id)},
            ),
        )
        return Transfer(id=str(obj["id"]), amount=int(obj["amount"]), destination=destination)

    def parse_event(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The verified event; `400 invalid_signature` for a bad or stale (> 5 min) signature."""
        if not self.webhook_secret:
            raise PaymentProviderUnavailable("Stripe webhooks are not configured here.")
        if not signature_header:
            raise InvalidSignature("The Stripe-Signature header is missing.")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature_header, self.webhook_secret, tolerance=300
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
            raise InvalidSignature("The Stripe-Signature does not verify.") from None

        try:
            event = json.loads(payload)
        except ValueError:
            raise InvalidSignature("The signed payload is not JSON.") from None
        if not isinstance(event, dict) or "id" not in event or "type" not in event:
            raise InvalidSignature("The signed payload is not a Stripe event.")
        return event


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value exactly as Stripe builds it (tests and tools use it)."""
    return str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp))
