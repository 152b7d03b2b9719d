"""Orders: one buyer's checkout, split into one merchant order per merchant, with priced lines."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigInt, IdMixin, TimestampMixin
from app.models.catalog import AssistanceClass
from app.models.types import str_enum
from app.models.user import BuyerType


class OrderStatus(enum.StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    completed = "completed"
    cancelled = "cancelled"
    refunded = "refunded"


class MerchantOrderStatus(enum.StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    shipped = "shipped"
    completed = "completed"
    cancelled = "cancelled"


class PaymentMethod(enum.StrEnum):
    stripe = "stripe"
    bank_transfer = "bank_transfer"


class Order(IdMixin, TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_fen > 0", name="total_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= total_fen", name="refund_bounds"),
        Index("ix_orders_status_expires_at", "status", "expires_at"),
        Index("ix_orders_buyer_id_created_at", "buyer_id", "created_at"),
        Index("ix_orders_created_at_id", "created_at", "id"),
    )

    number: Mapped[int] = mapped_column(BigInt, unique=True)
    """Global sequence behind `order_no`; increases with time."""
    order_no: Mapped[str] = mapped_column(String(24), unique=True)
    """Human-readable, e.g. SH2026112800000123 (date in Asia/Shanghai + the sequence)."""
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    buyer_region_code: Mapped[str] = mapped_column(String(6))
    """The buyer's region when ordering: decides the statistics indicator."""
    buyer_type: Mapped[BuyerType] = mapped_column(str_enum(BuyerType, "order_buyer_type"))
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, "order_status"), default=OrderStatus.pending_payment
    )
    """pending_payment → paid → completed; → cancelled; → refunded (everything refunded)."""
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, "payment_method"))
    total_fen: Mapped[int] = mapped_column(BigInt)
    """Sum of the merchant orders' subtotals: what the buyer pays."""
    refunded_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """Money returned to the buyer so far (refunds approved or succeeded)."""
    ship_recipient: Mapped[str] = mapped_column(String(50))
    ship_phone: Mapped[str] = mapped_column(String(16))
    ship_region_code: Mapped[str] = mapped_column(String(6))
    ship_address: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime]
    """Payment deadline: PAYMENT_TIMEOUT_MINUTES after creation."""
    paid_at: Mapped[datetime | None]
    commission_rate_bps: Mapped[int | None]
    """COMMISSION_RATE_BPS frozen when the order was paid."""
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    completed_at: Mapped[datetime | None]


class MerchantOrder(IdMixin, TimestampMixin, Base):
    __tablename__ = "merchant_orders"
    __table_args__ = (
        CheckConstraint("subtotal_fen > 0", name="subtotal_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= subtotal_fen", name="refund_bounds"),
        Index("ix_merchant_orders_status_shipped_at", "status", "shipped_at"),
        Index("ix_merchant_orders_merchant_id_created_at", "merchant_id", "created_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id", ondelete="RESTRICT"))
    status: Mapped[MerchantOrderStatus] = mapped_column(
        str_enum(MerchantOrderStatus, "merchant_order_status"),
        default=MerchantOrderStatus.pending_payment,
    )
    """pending_payment → paid → shipped → completed; → cancelled before shipping."""
    subtotal_fen: Mapped[int] = mapped_column(BigInt)
    """Sum of this merchant's lines: the gross the merchant is owed once paid."""
    refunded_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """Refunds of this merchant order's lines (approved or succeeded)."""
    commission_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """Commission posted to the ledger: rate × (subtotal − refunds), kept current on refunds."""
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_no: Mapped[str | None] = mapped_column(String(60))
    shipped_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class OrderLine(IdMixin, Base):
    """A product bought, with its price and the facts the statistics need, frozen at checkout."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity >= 1 AND quantity <= 9999", name="quantity_range"),
        CheckConstraint("unit_price_fen > 0", name="unit_price_positive"),
        CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity", name="refund_bounds"
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    merchant_order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="RESTRICT"), index=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(10))
    unit_price_fen: Mapped[int] = mapped_column(BigInt)
    """The product's price at checkout; later price changes never touch it."""
    quantity: Mapped[int]
    line_total_fen: Mapped[int] = mapped_column(BigInt)
    refunded_quantity: Mapped[int] = mapped_column(default=0)
    """Units refunded (requested refunds count once approved)."""
    category_slug: Mapped[str] = mapped_column(String(40))
    assistance_class: Mapped[AssistanceClass] = mapped_column(
        str_enum(AssistanceClass, "line_assistance_class")
    )
    origin_township: Mapped[str] = mapped_column(String(40))
    cert_no: Mapped[str | None] = mapped_column(String(60))
    cert_valid_from: Mapped[date | None]
    cert_valid_to: Mapped[date | None]
