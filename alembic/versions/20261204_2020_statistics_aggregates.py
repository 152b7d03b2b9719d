"""Consumption-assistance statistics: aggregates, counted merchant orders, yearly targets

Revision ID: 48bc7733e7c3
Revises: 8d3c5e7a1f20
Create Date: 2026-12-04 20:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "48bc7733e7c3"
down_revision: str | None = "8d3c5e7a1f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "stats_buyers",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.Uuid(), nullable=False),
        sa.Column("orders", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "dimension", "grain", "period", "key", "buyer_id", name=op.f("pk_stats_buyers")
        ),
    )
    op.create_table(
        "stats_periods",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("units", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "order_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "buyer_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "dimension", "grain", "period", "key", name=op.f("pk_stats_periods")
        ),
    )
    op.create_table(
        "stats_targets",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "purchased_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "helped_sold_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "purchased_fen >= 0 AND helped_sold_fen >= 0",
            name=op.f("ck_stats_targets_targets_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_stats_targets_updated_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_stats_targets")),
    )
    op.create_table(
        "stats_counted",
        sa.Column("merchant_order_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("indicator", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_stats_counted_merchant_order_id_merchant_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_stats_counted_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("merchant_order_id", name=op.f("pk_stats_counted")),
    )
    with op.batch_alter_table("stats_counted", schema=None) as batch_op:
        batch_op.create_index("ix_stats_counted_order_id", ["order_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("stats_counted", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_counted_order_id")

    op.drop_table("stats_counted")
    op.drop_table("stats_targets")
    op.drop_table("stats_periods")
    op.drop_table("stats_buyers")
