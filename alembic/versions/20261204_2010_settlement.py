"""settlement statements, their lines and adjustments

Revision ID: 8d3c5e7a1f20
Revises: 7c4e2a91d5f0
Create Date: 2026-12-04 20:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "8d3c5e7a1f20"
down_revision: str | None = "7c4e2a91d5f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settlements",
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending_payout",
                "paid",
                "carried_forward",
                name="settlement_status",
                native_enum=False,
                create_constraint=True,
                length=23,
            ),
            nullable=False,
        ),
        sa.Column(
            "gross_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunds_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commission_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "adjustments_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("net_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("issued_txn_id", sa.Uuid(), nullable=True),
        sa.Column(
            "payout_method",
            sa.Enum(
                "bank",
                "stripe",
                "none",
                name="payout_method_kind",
                native_enum=False,
                create_constraint=True,
                length=14,
            ),
            nullable=True,
        ),
        sa.Column("payout_reference", sa.String(length=255), nullable=True),
        sa.Column(
            "transfer_attempted_at", app.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("paid_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'carried_forward') = (net_fen < 0)",
            name=op.f("ck_settlements_carried_forward_iff_negative"),
        ),
        sa.CheckConstraint(
            "net_fen = gross_fen - refunds_fen - commission_fen - adjustments_fen",
            name=op.f("ck_settlements_net_is_gross_less_deductions"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_settlements_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["paid_by"],
            ["users.id"],
            name=op.f("fk_settlements_paid_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint("merchant_id", "period_end", name="uq_settlements_merchant_period"),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index("ix_settlements_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_settlements_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            "ix_settlements_status_created_at", ["status", "created_at"], unique=False
        )

    op.create_table(
        "settlement_adjustments",
        sa.Column("settlement_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "late_refund",
                "carried_forward",
                name="adjustment_kind",
                native_enum=False,
                create_constraint=True,
                length=23,
            ),
            nullable=False,
        ),
        sa.Column("merchant_order_id", sa.Uuid(), nullable=True),
        sa.Column("source_settlement_id", sa.Uuid(), nullable=True),
        sa.Column(
            "refunds_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commission_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "kind = 'carried_forward' OR amount_fen = refunds_fen + commission_fen",
            name=op.f("ck_settlement_adjustments_late_refund_amount"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_settlement_adjustments_merchant_order_id_merchant_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_adjustments_settlement_id_settlements"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["source_settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_adjustments_source_settlement_id_settlements"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_adjustments")),
        sa.UniqueConstraint(
            "source_settlement_id", name=op.f("uq_settlement_adjustments_source_settlement_id")
        ),
    )
    with op.batch_alter_table("settlement_adjustments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_adjustments_merchant_order_id"),
            ["merchant_order_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_adjustments_settlement_id"), ["settlement_id"], unique=False
        )

    op.create_table(
        "settlement_lines",
        sa.Column("settlement_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_order_id", sa.Uuid(), nullable=False),
        sa.Column("completed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "gross_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunds_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commission_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("net_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "net_fen = gross_fen - refunds_fen - commission_fen",
            name=op.f("ck_settlement_lines_net_is_gross_less_deductions"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_settlement_lines_merchant_order_id_merchant_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_lines_settlement_id_settlements"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_lines")),
        sa.UniqueConstraint(
            "merchant_order_id", name=op.f("uq_settlement_lines_merchant_order_id")
        ),
    )
    with op.batch_alter_table("settlement_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_lines_settlement_id"), ["settlement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_lines_settlement_id"))

    op.drop_table("settlement_lines")
    with op.batch_alter_table("settlement_adjustments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_adjustments_settlement_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_adjustments_merchant_order_id"))

    op.drop_table("settlement_adjustments")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index("ix_settlements_status_created_at")
        batch_op.drop_index(batch_op.f("ix_settlements_merchant_id"))
        batch_op.drop_index("ix_settlements_created_at_id")

    op.drop_table("settlements")
