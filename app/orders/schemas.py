"""Orders, merchant orders and their lines, as the storefront and the back office see them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.validators import MainlandMobile, RegionCode
from app.models import (
    MerchantOrderStatus,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
)
from app.refunds.schemas import RefundRead

Str50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Str200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: Str50
    phone: MainlandMobile
    region_code: RegionCode
    address: Str200


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    quantity: int = Field(ge=1, le=9999, strict=True)


class OrderCreate(BaseModel):
    """A checkout. Prices come from the server; the same product twice is one line."""

    model_config = ConfigDict(extra="forbid")

    lines: list[OrderLineCreate] = Field(min_length=1, max_length=100)
    shipping_address: ShippingAddress
    payment_method: PaymentMethod
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class OrderLineRead(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    unit: str
    unit_price_fen: int
    quantity: int
    line_total_fen: int
    refunded_quantity: int


class MerchantOrderRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    merchant_id: uuid.UUID
    status: MerchantOrderStatus
    subtotal_fen: int
    refunded_fen: int
    carrier: str | None
    tracking_no: str | None
    shipped_at: datetime | None
    completed_at: datetime | None
    lines: list[OrderLineRead]


class PaymentSummary(BaseModel):
    id: uuid.UUID
    provider: PaymentMethod
    status: PaymentStatus
    amount_fen: int
    reference: str | None = Field(
        default=None, description="Bank transfers: the reference the buyer writes on it."
    )
    bank_reference: str | None = Field(
        default=None, description="Bank transfers: the bank's reference of the transfer received."
    )
    created_at: datetime
    succeeded_at: datetime | None


class OrderRead(BaseModel):
    id: uuid.UUID
    order_no: str
    status: OrderStatus
    buyer_id: uuid.UUID
    payment_method: PaymentMethod
    total_fen: int
    refunded_fen: int
    currency: Literal["CNY"] = "CNY"
    shipping_address: ShippingAddress
    note: str | None
    expires_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    completed_at: datetime | None
    created_at: datetime
    merchant_orders: list[MerchantOrderRead]
    refunds: list[RefundRead]
    payments: list[PaymentSummary]


class MerchantOrderListItem(MerchantOrderRead):
    """A merchant's view of its part of an order, with what it needs to ship it."""

    order_no: str
    order_status: OrderStatus
    shipping_address: ShippingAddress
    note: str | None
    created_at: datetime


class ShipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    tracking_no: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[A-Za-z0-9-]+$"
        ),
    ]


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
