"""Consumption-assistance statistics: aggregates kept in the transaction of every payment and
refund, and the yearly targets.

`stats_periods` holds sums per period × dimension key at four grains (a Shanghai day, month,
quarter, year); `stats_buyers` holds, per month/quarter/year × dimension key, each buyer's count
of contributing orders, so that `buyer_count` stays an exact distinct count updated by +1/−1
when a buyer's count leaves or reaches 0. `stats_counted` remembers which merchant orders counted
when paid (and under which indicator, on which day), so a refund takes back exactly what the
payment added.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt


class StatsPeriod(Base):
    __tablename__ = "stats_periods"

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    """`total` (key ''), `indicator`, `buyer_type`, `buyer_region`, `product_class`,
    `category`, `merchant`, `township`."""
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    """`day`, `month`, `quarter` or `year` (Asia/Shanghai)."""
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    """`2026-03-15`, `2026-03`, `2026-Q1`, `2026`."""
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInt, default=0)
    """Paid amount less approved refunds of the counted lines paid in the period."""
    units: Mapped[int] = mapped_column(BigInt, default=0)
    """Units paid less units refunded."""
    order_count: Mapped[int] = mapped_column(BigInt, default=0)
    """Orders with a counted, not wholly refunded line under the key (an order has one day)."""
    buyer_count: Mapped[int] = mapped_column(BigInt, default=0)
    """Distinct buyers of those orders; kept for month, quarter and year (0 for days)."""


class StatsBuyer(Base):
    __tablename__ = "stats_buyers"
    # No CHECK (orders >= 0): both databases check the proposed row of an upsert, and a refund
    # proposes −1 to add to a positive count.

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    """`month`, `quarter` or `year`."""
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(BigInt, default=0)
    """The buyer's orders counting under the key in the period (a reference count)."""


class StatsCounted(Base):
    __tablename__ = "stats_counted"
    __table_args__ = (Index("ix_stats_counted_order_id", "order_id"),)

    merchant_order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))
    """The Asia/Shanghai day of the payment: the statistics period of the order."""
    indicator: Mapped[str] = mapped_column(String(16))
    """`purchased` or `helped_sold`, from the buyer's region frozen on the order."""


class StatsTarget(Base):
    __tablename__ = "stats_targets"
    __table_args__ = (
        CheckConstraint("purchased_fen >= 0 AND helped_sold_fen >= 0", name="targets_not_negative"),
    )

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    purchased_fen: Mapped[int] = mapped_column(BigInt)
    """The year's target for 采购 (bought by the eastern county's buyers), in fen."""
    helped_sold_fen: Mapped[int] = mapped_column(BigInt)
    """The year's target for 帮助销售 (sold to everyone else), in fen."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
