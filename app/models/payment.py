"""Payments (Stripe PaymentIntents and bank transfers), refunds, and the Stripe event inbox."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt, IdMixin, TimestampMixin
from app.models.order import PaymentMethod
from app.models.types import PortableJSON, str_enum


class PaymentStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class RefundStatus(enum.StrEnum):
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    succeeded = "succeeded"
    failed = "failed"


class RefundKind(enum.StrEnum):
    requested = "requested"
    """Asked for by the buyer, decided by the merchant or an admin."""
    cancellation = "cancellation"
    """The whole paid order, when the buyer cancels before shipping."""
    late_payment = "late_payment"
    """A payment that succeeded after its order was cancelled: returned in full."""


class Payment(IdMixin, TimestampMixin, Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # At most one open payment per order: asking again returns it.
        Index(
            "uq_payments_open_per_order",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    provider: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod, "payment_provider"))
    status: Mapped[PaymentStatus] = mapped_column(
        str_enum(PaymentStatus, "payment_status"), default=PaymentStatus.pending
    )
    """pending → succeeded | failed | cancelled."""
    amount_fen: Mapped[int] = mapped_column(BigInt)
    """The order total when the payment was opened."""
    provider_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    """The Stripe PaymentIntent id."""
    client_secret: Mapped[str | None] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    """Bank transfers: the reference the buyer writes on the transfer."""
    bank_reference: Mapped[str | None] = mapped_column(String(100), unique=True)
    """Bank transfers: the bank's reference recorded by the admin who confirmed it. Unique: one
    incoming transfer confirms one payment."""
    confirmed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    succeeded_at: Mapped[datetime | None]
    failure_message: Mapped[str | None] = mapped_column(String(500))


class Refund(IdMixin, TimestampMixin, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_refunds_status_next_attempt_at", "status", "next_attempt_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    payment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), index=True
    )
    merchant_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="RESTRICT"), index=True
    )
    """Set for a buyer's request (one merchant decides it); null for whole-order refunds."""
    kind: Mapped[RefundKind] = mapped_column(str_enum(RefundKind, "refund_kind"))
    status: Mapped[RefundStatus] = mapped_column(
        str_enum(RefundStatus, "refund_status"), default=RefundStatus.requested
    )
    """requested → approved → succeeded | failed; requested → rejected; failed → approved (a
    retry) or succeeded (paid by bank). `approved` and `failed` are both owed to the buyer."""
    amount_fen: Mapped[int] = mapped_column(BigInt)
    """Money to return: the refunded lines' unit price × quantity."""
    reason: Mapped[str] = mapped_column(String(500))
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: Mapped[datetime | None]
    provider_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    """The Stripe refund id (of the latest attempt)."""
    bank_reference: Mapped[str | None] = mapped_column(String(100), unique=True)
    """The bank's reference of the outgoing transfer an admin recorded (`mark-paid`). Unique:
    one transfer pays one refund."""
    succeeded_at: Mapped[datetime | None]
    failure_message: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """How many times the provider was asked (requests that reached it or not)."""
    refusals: Mapped[int] = mapped_column(default=0, server_default="0")
    """How many times the provider refused. Part of the idempotency key: a retry after a refusal
    is a new request (`refund-<id>-<refusals>`), a retry after silence replays the same one."""
    next_attempt_at: Mapped[datetime | None]
    """When the jobs try the provider again (backoff); null: the jobs leave it to an admin."""


class RefundLine(IdMixin, Base):
    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT"), index=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int]
    amount_fen: Mapped[int] = mapped_column(BigInt)


class StripeEvent(Base):
    """The webhook inbox: an event id is stored before it takes effect, so it does so once."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    rejected_reason: Mapped[str | None] = mapped_column(String(500))
    """Why the event was not applied (e.g. the intent's amount is not the payment's)."""
