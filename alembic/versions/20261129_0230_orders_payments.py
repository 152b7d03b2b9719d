"""orders payments refunds ledger

Revision ID: 27869e94fb61
Revises: 0d195221bc78
Create Date: 2026-11-29 01:58:17.273010+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import app.models.base
from alembic import op

revision: str = "27869e94fb61"
down_revision: str | None = "0d195221bc78"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "in_progress",
                "completed",
                name="idempotency_status",
                native_enum=False,
                create_constraint=True,
                length=19,
            ),
            nullable=False,
        ),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index("uq_idempotency_keys_user_key", ["user_id", "key"], unique=True)

    op.create_table(
        "orders",
        sa.Column("number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_no", sa.String(length=24), nullable=False),
        sa.Column("buyer_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_region_code", sa.String(length=6), nullable=False),
        sa.Column(
            "buyer_type",
            sa.Enum(
                "individual",
                "budget_unit",
                "union",
                "enterprise",
                "public_institution",
                "social_org",
                name="order_buyer_type",
                native_enum=False,
                create_constraint=True,
                length=26,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending_payment",
                "paid",
                "completed",
                "cancelled",
                "refunded",
                name="order_status",
                native_enum=False,
                create_constraint=True,
                length=23,
            ),
            nullable=False,
        ),
        sa.Column(
            "payment_method",
            sa.Enum(
                "stripe",
                "bank_transfer",
                name="payment_method",
                native_enum=False,
                create_constraint=True,
                length=21,
            ),
            nullable=False,
        ),
        sa.Column(
            "total_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunded_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ship_recipient", sa.String(length=50), nullable=False),
        sa.Column("ship_phone", sa.String(length=16), nullable=False),
        sa.Column("ship_region_code", sa.String(length=6), nullable=False),
        sa.Column("ship_address", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("commission_rate_bps", sa.Integer(), nullable=True),
        sa.Column("cancelled_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("completed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= total_fen", name=op.f("ck_orders_refund_bounds")
        ),
        sa.CheckConstraint("total_fen > 0", name=op.f("ck_orders_total_positive")),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["users.id"], name=op.f("fk_orders_buyer_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
        sa.UniqueConstraint("order_no", name=op.f("uq_orders_order_no")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_buyer_id_created_at", ["buyer_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_orders_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_orders_status_expires_at", ["status", "expires_at"], unique=False)

    op.create_table(
        "merchant_orders",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending_payment",
                "paid",
                "shipped",
                "completed",
                "cancelled",
                name="merchant_order_status",
                native_enum=False,
                create_constraint=True,
                length=23,
            ),
            nullable=False,
        ),
        sa.Column(
            "subtotal_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunded_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "commission_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("carrier", sa.String(length=40), nullable=True),
        sa.Column("tracking_no", sa.String(length=60), nullable=True),
        sa.Column("shipped_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= subtotal_fen",
            name=op.f("ck_merchant_orders_refund_bounds"),
        ),
        sa.CheckConstraint("subtotal_fen > 0", name=op.f("ck_merchant_orders_subtotal_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_orders_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_merchant_orders_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_orders")),
    )
    with op.batch_alter_table("merchant_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_merchant_orders_merchant_id_created_at", ["merchant_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_merchant_orders_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            "ix_merchant_orders_status_shipped_at", ["status", "shipped_at"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column(
            "provider",
            sa.Enum(
                "stripe",
                "bank_transfer",
                name="payment_provider",
                native_enum=False,
                create_constraint=True,
                length=21,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                "cancelled",
                name="payment_status",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("client_secret", sa.String(length=255), nullable=True),
        sa.Column("reference", sa.String(length=40), nullable=True),
        sa.Column("bank_reference", sa.String(length=100), nullable=True),
        sa.Column("confirmed_by", sa.Uuid(), nullable=True),
        sa.Column("succeeded_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["confirmed_by"],
            ["users.id"],
            name=op.f("fk_payments_confirmed_by_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_payments_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("provider_reference", name=op.f("uq_payments_provider_reference")),
        sa.UniqueConstraint("reference", name=op.f("uq_payments_reference")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            "uq_payments_open_per_order",
            ["order_id"],
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_order_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=False),
        sa.Column(
            "unit_price_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "line_total_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("refunded_quantity", sa.Integer(), nullable=False),
        sa.Column("category_slug", sa.String(length=40), nullable=False),
        sa.Column(
            "assistance_class",
            sa.Enum(
                "agricultural",
                "handicraft",
                name="line_assistance_class",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("origin_township", sa.String(length=40), nullable=False),
        sa.Column("cert_no", sa.String(length=60), nullable=True),
        sa.Column("cert_valid_from", sa.Date(), nullable=True),
        sa.Column("cert_valid_to", sa.Date(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "quantity >= 1 AND quantity <= 9999", name=op.f("ck_order_lines_quantity_range")
        ),
        sa.CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name=op.f("ck_order_lines_refund_bounds"),
        ),
        sa.CheckConstraint("unit_price_fen > 0", name=op.f("ck_order_lines_unit_price_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_order_lines_merchant_order_id_merchant_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_order_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_lines_merchant_order_id"), ["merchant_order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_order_lines_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_lines_product_id"), ["product_id"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_order_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "requested",
                "cancellation",
                "late_payment",
                name="refund_kind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "approved",
                "rejected",
                "succeeded",
                "failed",
                name="refund_status",
                native_enum=False,
                create_constraint=True,
                length=17,
            ),
            nullable=False,
        ),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("succeeded_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_refunds_decided_by_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_refunds_merchant_order_id_merchant_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_refunds_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_refunds_payment_id_payments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_refunds_requested_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("provider_reference", name=op.f("uq_refunds_provider_reference")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refunds_merchant_order_id"), ["merchant_order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("txn_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column(
            "account",
            sa.Enum(
                "platform_cash",
                "merchant_payable",
                "platform_commission",
                "refunds_in_transit",
                "payouts",
                name="ledger_account",
                native_enum=False,
                create_constraint=True,
                length=27,
            ),
            nullable=False,
        ),
        sa.Column("merchant_id", sa.Uuid(), nullable=True),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("merchant_order_id", sa.Uuid(), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen <> 0", name=op.f("ck_ledger_entries_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_ledger_entries_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_order_id"],
            ["merchant_orders.id"],
            name=op.f("fk_ledger_entries_merchant_order_id_merchant_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_ledger_entries_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_ledger_entries_payment_id_payments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_ledger_entries_refund_id_refunds"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entries_account_merchant_id", ["account", "merchant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_merchant_order_id"), ["merchant_order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ledger_entries_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_txn_id"), ["txn_id"], unique=False)

    op.create_table(
        "refund_lines",
        sa.Column("refund_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "amount_fen", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_refund_lines_amount_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_refund_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_lines.id"],
            name=op.f("fk_refund_lines_order_line_id_order_lines"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_refund_lines_refund_id_refunds"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_lines")),
    )
    with op.batch_alter_table("refund_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refund_lines_order_line_id"), ["order_line_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refund_lines_refund_id"), ["refund_id"], unique=False)

    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_account_id", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("payouts_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_merchants_stripe_account_id"), ["stripe_account_id"]
        )

    if op.get_bind().dialect.name == "postgresql":
        # Order numbers: a sequence takes no row lock, so concurrent checkouts never queue on it.
        op.execute("CREATE SEQUENCE order_number_seq")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE order_number_seq")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_merchants_stripe_account_id"), type_="unique")
        batch_op.drop_column("payouts_enabled")
        batch_op.drop_column("stripe_account_id")

    with op.batch_alter_table("refund_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_lines_refund_id"))
        batch_op.drop_index(batch_op.f("ix_refund_lines_order_line_id"))

    op.drop_table("refund_lines")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_txn_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_order_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_merchant_order_id"))
        batch_op.drop_index("ix_ledger_entries_account_merchant_id")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_payment_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_merchant_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_product_id"))
        batch_op.drop_index(batch_op.f("ix_order_lines_order_id"))
        batch_op.drop_index(batch_op.f("ix_order_lines_merchant_order_id"))

    op.drop_table("order_lines")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payments_open_per_order",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_payments_order_id"))

    op.drop_table("payments")
    with op.batch_alter_table("merchant_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_orders_status_shipped_at")
        batch_op.drop_index(batch_op.f("ix_merchant_orders_order_id"))
        batch_op.drop_index("ix_merchant_orders_merchant_id_created_at")

    op.drop_table("merchant_orders")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_expires_at")
        batch_op.drop_index("ix_orders_created_at_id")
        batch_op.drop_index("ix_orders_buyer_id_created_at")

    op.drop_table("orders")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_idempotency_keys_user_key")
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))

    op.drop_table("idempotency_keys")
    op.drop_table("stripe_events")
