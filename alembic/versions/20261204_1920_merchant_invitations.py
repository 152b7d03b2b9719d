"""merchant_invitations: staff join a merchant only by accepting an invitation

Revision ID: 8c2e4f1a7b90
Revises: 8c4e7a1d2f90
Create Date: 2026-12-04 19:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "8c2e4f1a7b90"
down_revision: str | None = "8c4e7a1d2f90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "merchant_invitations",
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("invited_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "declined",
                "replaced",
                name="invitation_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_merchant_invitations_invited_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_invitations_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_invitations")),
    )
    with op.batch_alter_table("merchant_invitations") as batch_op:
        batch_op.create_index(batch_op.f("ix_merchant_invitations_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_merchant_invitations_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            "uq_merchant_invitations_pending",
            ["merchant_id", "email"],
            unique=True,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("merchant_invitations") as batch_op:
        batch_op.drop_index("uq_merchant_invitations_pending")
        batch_op.drop_index(batch_op.f("ix_merchant_invitations_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_merchant_invitations_email"))
    op.drop_table("merchant_invitations")
