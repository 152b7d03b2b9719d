"""merchants.payouts_on_hold

Revision ID: 5b1f0c2a9d3e
Revises: 27869e94fb61
Create Date: 2026-12-04 19:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "5b1f0c2a9d3e"
down_revision: str | None = "27869e94fb61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.add_column(
            sa.Column("payouts_on_hold", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("merchants") as batch_op:
        batch_op.drop_column("payouts_on_hold")
