"""Settlement: statements that pay each merchant what it is owed, their lines and adjustments.

A statement covers a merchant's settleable merchant orders (each settled once: a unique
constraint on `settlement_lines.merchant_order_id`) and the adjustments found since its last
statement: refunds approved after an order was settled, and an earlier statement carried
forward (absorbed once: a unique constraint on `settlement_adjustments.source_settlement_id`).
Its `net_fen` is the sum of its lines less the sum of its adjustments.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt, IdMixin, TimestampMixin
from app.models.types import str_enum


class SettlementStatus(enum.StrEnum):
    pending_payout = "pending_payout"
    paid = "paid"
    carried_forward = "carried_forward"


class PayoutMethod(enum.StrEnum):
    bank = "bank"
    """Paid by bank transfer from the payout batch; `mark-paid` records the bank's reference."""
    stripe = "stripe"
    """A Stripe Connect transfer to the merchant's connected account."""
    none = "none"
    """Nothing to pay: a statement whose net is exactly 0."""


class AdjustmentKind(enum.StrEnum):
    late_refund = "late_refund"
    """Refunds (and their commission effect) on an order an earlier statement settled."""
    carried_forward = "carried_forward"
    """An earlier statement's negative net, deducted here."""


class Settlement(IdMixin, TimestampMixin, Base):
    """One merchant's statement."""

    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint(
            "net_fen = gross_fen - refunds_fen - commission_fen - adjustments_fen",
            name="net_is_gross_less_deductions",
        ),
        CheckConstraint(
            "(status = 'carried_forward') = (net_fen < 0)", name="carried_forward_iff_negative"
        ),
        # One statement per merchant and period: a second run (another machine, the same day)
        # finds the merchant settled for that period.
        UniqueConstraint("merchant_id", "period_end", name="uq_settlements_merchant_period"),
        Index("ix_settlements_created_at_id", "created_at", "id"),
        Index("ix_settlements_status_created_at", "status", "created_at"),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    run_id: Mapped[uuid.UUID]
    """The settlement run that issued it (one run issues one statement per merchant)."""
    period_end: Mapped[date]
    """Merchant orders completed on or before this Asia/Shanghai day (and past the refund
    window when the run happened)."""
    status: Mapped[SettlementStatus] = mapped_column(
        str_enum(SettlementStatus, "settlement_status")
    )
    """pending_payout → paid; carried_forward (negative net) is never paid."""
    gross_fen: Mapped[int] = mapped_column(BigInt)
    """Sum of the settled merchant orders' subtotals."""
    refunds_fen: Mapped[int] = mapped_column(BigInt)
    """Their refunds approved by the run (refunded_fen at settlement)."""
    commission_fen: Mapped[int] = mapped_column(BigInt)
    """Their commission as posted in the ledger at settlement."""
    adjustments_fen: Mapped[int] = mapped_column(BigInt)
    """Late refunds less their commission effect, plus an earlier negative net carried forward."""
    net_fen: Mapped[int] = mapped_column(BigInt)
    """gross − refunds − commission − adjustments: what is paid out."""
    issued_txn_id: Mapped[uuid.UUID | None]
    """The ledger transaction that moved the net from the merchant's payable to `payouts`."""
    payout_method: Mapped[PayoutMethod | None] = mapped_column(
        str_enum(PayoutMethod, "payout_method_kind")
    )
    payout_reference: Mapped[str | None] = mapped_column(String(255))
    """The bank's reference (mark-paid) or the Stripe transfer id."""
    transfer_attempted_at: Mapped[datetime | None]
    """A Stripe transfer was asked for and not refused: only a Stripe retry may finish it."""
    paid_at: Mapped[datetime | None]
    paid_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class SettlementLine(IdMixin, Base):
    """A merchant order settled by a statement, with its amounts at settlement."""

    __tablename__ = "settlement_lines"
    __table_args__ = (
        CheckConstraint(
            "net_fen = gross_fen - refunds_fen - commission_fen",
            name="net_is_gross_less_deductions",
        ),
    )

    settlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("settlements.id", ondelete="RESTRICT"), index=True
    )
    merchant_order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="RESTRICT"), unique=True
    )
    """Unique: a merchant order is settled once, whatever runs at the same moment."""
    completed_at: Mapped[datetime]
    gross_fen: Mapped[int] = mapped_column(BigInt)
    refunds_fen: Mapped[int] = mapped_column(BigInt)
    commission_fen: Mapped[int] = mapped_column(BigInt)
    net_fen: Mapped[int] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SettlementAdjustment(IdMixin, Base):
    """An amount deducted from a statement (negative: added back, e.g. a refund that failed)."""

    __tablename__ = "settlement_adjustments"
    __table_args__ = (
        CheckConstraint(
            "kind = 'carried_forward' OR amount_fen = refunds_fen + commission_fen",
            name="late_refund_amount",
        ),
    )

    settlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("settlements.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[AdjustmentKind] = mapped_column(str_enum(AdjustmentKind, "adjustment_kind"))
    merchant_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="RESTRICT"), index=True
    )
    """late_refund: the settled merchant order whose refunds changed."""
    source_settlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("settlements.id", ondelete="RESTRICT"), unique=True
    )
    """carried_forward: the statement carried forward; unique, so it is deducted once."""
    refunds_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """late_refund: refunds approved since the order was last accounted for."""
    commission_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """late_refund: the change in its ledger commission (negative when refunds lowered it)."""
    amount_fen: Mapped[int] = mapped_column(BigInt)
    """Deducted from the statement: refunds plus the commission change (the commission given
    back lowers it), or the negative net carried forward."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
