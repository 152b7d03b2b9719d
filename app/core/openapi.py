"""The OpenAPI document, made to tell the truth about errors, auth and idempotency.

FastAPI describes each route from its signature; what it cannot see is added here, in one place,
after the document is built:

* every error response (4xx/5xx) is `application/problem+json` with the one `Problem` schema
  (FastAPI's `HTTPValidationError` is gone: our 422 is a problem with `errors`);
* the answers every route of a kind can give: `400 malformed_json` (JSON bodies),
  `400 invalid_cursor` (lists), `401` (routes that read a token), `413` (bodies over 1 MiB),
  `400 idempotency_key_required` and the `409 idempotency_*` codes (idempotent routes);
* routes that work with or without a token (`openapi_extra=OPTIONAL_AUTH`) declare the token
  optional;
* `Idempotency-Key` is a required header where it is required.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from app.core.errors import PROBLEM_JSON
from app.core.middleware import MAX_BODY_BYTES

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}
"""`openapi_extra` of a route that serves anonymous callers and reads a token when one is sent:
FastAPI lists the bearer scheme; the empty requirement added here says it may be left out."""
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ProblemFieldError(BaseModel):
    """One reason a request was refused, naming the offending input."""

    loc: list[str | int] = Field(
        description='Where: `["body", "lines", 0, "quantity"]`, `["query", "limit"]`, …'
    )
    msg: str = Field(description="What is wrong, for a person.")
    type: str = Field(description="A stable machine-readable kind, e.g. `missing`, `invalid_uscc`.")


class Problem(BaseModel):
    """Every error (RFC 9457), 404 and 405 included. Act on `code`; `detail` is for people.
    Some problems carry more fields, named in the route's description (e.g. `fields`, `from` and
    `to`, `product_id`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://shanhai.example/problems/insufficient-stock"])
    title: str = Field(description="The HTTP status phrase.", examples=["Conflict"])
    status: int = Field(description="The HTTP status code, repeated.", examples=[409])
    detail: str = Field(description="What happened, for a person.")
    code: str = Field(
        description="Stable and machine-readable: `validation_error`, `insufficient_stock`, …",
        examples=["insufficient_stock"],
    )
    errors: list[ProblemFieldError] | SkipJsonSchema[None] = Field(
        default=None,
        description="On every 422: each offending input with its location.",
    )


def _add(responses: dict[str, Any], status: int, code: str, text: str) -> None:
    """Document `status` answering `code`, appending to a description the route already has
    unless it names that code."""
    key = str(status)
    current = responses.get(key)
    if current is None:
        responses[key] = {"description": text}
    elif f"`{code}`" not in current.get("description", ""):
        current["description"] = f"{current.get('description', '')} {text}".strip()


def _errors_are_problems(responses: dict[str, Any]) -> None:
    for key, response in responses.items():
        if key == "default" or int(key) >= 400:
            response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _idempotency(operation: dict[str, Any], responses: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        if param["in"] == "header" and param["name"] == IDEMPOTENCY_HEADER:
            param["required"] = True
            param["schema"] = {"type": "string", "minLength": 1, "maxLength": 255}
            _add(
                responses,
                400,
                "idempotency_key_required",
                "`idempotency_key_required`: no `Idempotency-Key` header.",
            )
            _add(
                responses,
                409,
                "idempotency_key_reused",
                "`idempotency_key_reused` (the key came with another request), "
                "`idempotency_request_in_progress` (its first request is still running).",
            )


def _auth_kind(operation: dict[str, Any]) -> str | None:
    """`required`, `optional` (an empty requirement is listed: the token may be left out; see
    `OPTIONAL_AUTH`) or None."""
    security = operation.get("security") or []
    if not any(security):
        return None
    return "optional" if {} in security else "required"


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    auth = _auth_kind(operation)
    validation = responses.get("422")
    if validation is not None and validation.get("description") == "Validation Error":
        validation["description"] = "`validation_error`: see `errors`."
    invalid = "`invalid_token` (a bad or expired token, or its user is disabled)"
    if auth == "required":
        _add(responses, 401, "not_authenticated", f"`not_authenticated` (no token), {invalid}.")
    elif auth == "optional":
        _add(
            responses,
            401,
            "invalid_token",
            f"{invalid}; without a token the route serves anonymous callers.",
        )
    body = operation.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        _add(responses, 400, "malformed_json", "`malformed_json`: the body is not JSON (or UTF-8).")
    if body:
        _add(
            responses,
            413,
            "payload_too_large",
            f"`payload_too_large`: the body is over {MAX_BODY_BYTES} bytes.",
        )
    names = {p["name"] for p in operation.get("parameters", [])}
    if "cursor" in names:
        _add(responses, 400, "invalid_cursor", "`invalid_cursor`: not a cursor this list gave out.")
    if names or body:
        _add(responses, 422, "validation_error", "`validation_error`: see `errors`.")
    _idempotency(operation, responses)
    _errors_are_problems(responses)


# Descriptions for fields that mean the same wherever they appear; a field's own description wins.
_FIELD_NOTES = {
    "id": "The object's id (UUID).",
    "items": "This page's items.",
    "next_cursor": "Pass as `cursor` for the next page; null on the last page.",
    "currency": "Always `CNY`.",
    "status": "The current status; docs/guide.md lists every status and transition.",
    "name": "Display name.",
    "email": "E-mail address, stored lower-cased.",
    "display_name": "The person's or organisation's name as shown to others.",
    "role": "`buyer`, `merchant`, `admin` or `official`.",
    "merchant_role": "`owner` or `staff`, for a merchant member.",
    "buyer_type": "The kind of buyer; organisations are verified by an admin.",
    "kind": "The kind of market entity.",
    "reason": "Why, in a sentence; shown to the other party.",
    "lines": "The lines, in order.",
    "quantity": "Units, at least 1.",
    "unit": "The selling unit, e.g. 斤, kg, 盒.",
    "note": "Free text from the buyer.",
    "township": "The township (乡/镇) in the western county.",
    "address": "Street address.",
    "recipient": "Who receives the parcel.",
    "carrier": "The carrier, e.g. 顺丰.",
    "tracking_no": "The carrier's tracking number.",
    "bank_name": "The bank and branch, e.g. 中国农业银行巴塘县支行.",
    "account_name": "The account holder's name.",
    "account_no_masked": "The account number, masked: `****` and its last four digits.",
    "bank_reference": "The bank's reference of the transfer.",
    "scheme": "The certification scheme, e.g. 消费帮扶产品认定.",
    "certificate_no": "The certificate's number.",
    "issuer": "Who issued the certificate.",
    "households": "Households linked to the merchant's income (利益联结).",
    "poverty_alleviated": "Of `households`, formerly poor households (脱贫户).",
    "monitored": "Of `households`, households under monitoring (监测户).",
    "access_token": "Send as `Authorization: Bearer <access_token>`.",
    "token_type": "Always `bearer`.",
    "expires_in": "Seconds until the token expires.",
    "at": "When, RFC 3339 with offset.",
    "type": "A URI naming the kind of problem.",
    "account_no": "The full account number to transfer to.",
    "reference": "Quote this reference with the transfer, so it can be matched to the order.",
    "pay_before": "The payment deadline.",
    "slug": "The category's stable id, used by products.",
    "valid_from": "First day of validity, `YYYY-MM-DD`.",
    "valid_to": "Last day of validity, inclusive, `YYYY-MM-DD`.",
    "account": "The ledger account: `platform_cash`, `merchant_payable`, "
    "`platform_commission`, `refunds_in_transit`, `payouts`.",
    "accounts": "Every ledger account with its signed balance.",
    "legal_representative": "The legal representative (法定代表人).",
    "linked_households": "Households benefiting (counts only, never personal data).",
    "bank_account": "The account payouts go to by bank transfer.",
    "order_no": "Human-readable order number, unique and increasing with time.",
    "order_status": "The status of the whole order.",
    "shipping_address": "Where the parcel goes.",
    "uscc": "Unified social credit code (统一社会信用代码).",
    "region_code": "6-digit administrative division code (行政区划代码).",
    "contact_phone": "Mainland mobile number, E.164 (`+86…`).",
    "phone": "Mainland mobile number, E.164 (`+86…`).",
    "status_reason": "Why the merchant was rejected or suspended; null otherwise.",
    "onboarding_url": "Open this Stripe page to finish the payout account; it expires.",
    "payment_method": "`stripe` (card) or `bank_transfer`.",
    "refunded_quantity": "Units already refunded.",
    "cancel_reason": "Why the order was cancelled, e.g. `payment_timeout`, `buyer_cancelled`.",
    "merchant_orders": "One per merchant in the order.",
    "refunds": "The order's refunds, in every status.",
    "payments": "The order's payment attempts.",
    "provider": "`stripe` or `bank_transfer`.",
    "client_secret": "For Stripe.js to confirm the card payment in the browser.",
    "provider_reference": "The provider's id (the Stripe PaymentIntent id).",
    "instructions": "How to pay by bank transfer.",
    "method": "How payouts reach the merchant: `bank_transfer` or `stripe`.",
    "payouts_enabled": "Whether the connected account can receive payouts.",
    "assistance_class": "`agricultural` (农畜牧产品) or `handicraft` (特色手工艺品).",
    "certification": "The product's assistance certification (消费帮扶产品认定), if any.",
    "weight_grams": "Shipping weight in grams.",
    "shelf_life_days": "Shelf life in days.",
    "merchant_name": "The selling merchant's name.",
    "description": "The description, plain text.",
    "stock": "Units available now.",
    "sold_units": "Units sold so far.",
    "origin_township": "Where the product comes from (its township in the western county).",
    "images": "Image URLs.",
    "reject_reason": "Why the refund was rejected.",
    "failure_message": "What the provider said when the refund failed.",
    "delta": "Units added (positive) or removed (negative).",
    "stock_after": "The stock once the adjustment was made.",
    "disabled": "A disabled account cannot sign in and its tokens stop working.",
    "grant_type": "`password`, or left out.",
    "password": "The password, at least 10 characters.",
    "from": "First day of the range, inclusive (Asia/Shanghai).",
    "to": "Last day of the range, inclusive (Asia/Shanghai).",
    "group_by": "What the rows are grouped by.",
    "rows": "One row per key of the grouping.",
    "indicator": "`purchased` (采购) or `helped_sold` (帮助销售).",
    "label": "Display name, in Chinese.",
    "year": "Calendar year.",
    "as_of": "When the figures were read.",
    "indicators": "One entry per indicator.",
    "period_end": "Last day of the settled period, inclusive (Asia/Shanghai).",
    "payout_method": "`stripe` or `bank_transfer`; null until paid.",
    "adjustments": "Deductions for refunds after an earlier statement, and carried-forward nets.",
    "settlements": "The statements this run issued.",
}


def _describe_fields(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        for name, prop in schema.get("properties", {}).items():
            if "description" in prop:
                continue
            if name in _FIELD_NOTES:
                prop["description"] = _FIELD_NOTES[name]
            elif name.endswith("_fen"):
                prop["description"] = "Amount in fen (分, 1/100 yuan), CNY."
            elif name.endswith("_at"):
                prop["description"] = "When, RFC 3339 with offset; null until it happens."
            elif name.endswith("_id"):
                prop["description"] = f"The id of the {name[:-3].replace('_', ' ')} (UUID)."


def complete_openapi(document: dict[str, Any]) -> None:
    """Complete FastAPI's document in place, as the module doc says."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    _describe_fields(schemas)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document_operation(operation)


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document (rebuilt by FastAPI when routes change), completed once."""
    build = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not completed or completed[0] is not document:
            complete_openapi(document)
            completed[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def path_methods(document: dict[str, Any], path: str) -> set[str] | None:
    """The methods the document lists for the path template matching `path`, or None."""
    for template, path_item in document.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods = {m.upper() for m in path_item if m in _METHODS}
            return methods | ({"HEAD"} if "GET" in methods else set())
    return None
