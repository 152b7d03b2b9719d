"""Refund retries and bank references: refunds.attempts, refusals, next_attempt_at and
bank_reference (unique); payments.bank_reference unique; stripe_events.rejected_reason.

Revision ID: 7c4e2a91d5f0
Revises: 8c2e4f1a7b90
Create Date: 2026-12-04 19:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "7c4e2a91d5f0"
down_revision: str | None = "8c2e4f1a7b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.add_column(
            sa.Column("bank_reference", sa.String(length=100), nullable=True),
        )
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        )
        batch_op.add_column(
            sa.Column("refusals", sa.Integer(), server_default="0", nullable=False),
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", app.models.base.UTCDateTime(), nullable=True),
        )
        batch_op.create_unique_constraint("uq_refunds_bank_reference", ["bank_reference"])
        batch_op.create_index(
            "ix_refunds_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    # Existing duplicates (one transfer confirming several payments) must be resolved by hand
    # before this runs: the upgrade fails on them rather than guessing which payment is right.
    with op.batch_alter_table("payments") as batch_op:
        batch_op.create_unique_constraint("uq_payments_bank_reference", ["bank_reference"])
    with op.batch_alter_table("stripe_events") as batch_op:
        batch_op.add_column(sa.Column("rejected_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stripe_events") as batch_op:
        batch_op.drop_column("rejected_reason")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_constraint("uq_payments_bank_reference", type_="unique")
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.drop_index("ix_refunds_status_next_attempt_at")
        batch_op.drop_constraint("uq_refunds_bank_reference", type_="unique")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("refusals")
        batch_op.drop_column("attempts")
        batch_op.drop_column("bank_reference")
