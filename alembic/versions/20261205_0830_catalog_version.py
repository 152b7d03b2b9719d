"""Catalogue version: a counter bumped by triggers in every transaction that changes a list page

Revision ID: c4a7e2f19b3d
Revises: 48bc7733e7c3
Create Date: 2026-12-05 08:30:00+00:00

The public product list is cached per API process as rendered bytes keyed by the sum of
`catalog_version.version`; the triggers below change that sum in the same transaction as any
change to a product row or to a merchant's name or status, so a cached page is never served
after such a change commits (see `app.catalog.pages`).

PostgreSQL: constraint triggers DEFERRABLE INITIALLY DEFERRED, so the counter row is locked only
at commit (a checkout does not hold it for its whole transaction), spread over 16 rows by
backend pid so that concurrent commits rarely wait for each other, and only the first row event
of a transaction updates its row (a transaction-local flag). SQLite serialises writers anyway:
plain triggers on row 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "c4a7e2f19b3d"
down_revision: str | None = "48bc7733e7c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 16  # also in _PG_FUNCTION

_PG_FUNCTION = """
CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction is enough: the flag lives until the transaction ends.
    IF current_setting('shanhai.catalog_version_bumped', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('shanhai.catalog_version_bumped', 'on', true);
    UPDATE catalog_version SET version = version + 1 WHERE shard = pg_backend_pid() % 16;
    RETURN NULL;
END
$$
"""

_PG_TRIGGERS = [
    "CREATE CONSTRAINT TRIGGER products_catalog_version AFTER INSERT OR UPDATE OR DELETE "
    "ON products DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
    "EXECUTE FUNCTION bump_catalog_version()",
    "CREATE CONSTRAINT TRIGGER merchants_catalog_version AFTER UPDATE OF name, status OR DELETE "
    "ON merchants DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
    "EXECUTE FUNCTION bump_catalog_version()",
]

_SQLITE_BUMP = "BEGIN UPDATE catalog_version SET version = version + 1 WHERE shard = 0; END"
_SQLITE_TRIGGERS = {
    "products_catalog_version_insert": "AFTER INSERT ON products",
    "products_catalog_version_update": "AFTER UPDATE ON products",
    "products_catalog_version_delete": "AFTER DELETE ON products",
    "merchants_catalog_version_update": "AFTER UPDATE OF name, status ON merchants",
    "merchants_catalog_version_delete": "AFTER DELETE ON merchants",
}


def upgrade() -> None:
    table = op.create_table(
        "catalog_version",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_catalog_version")),
    )
    op.bulk_insert(table, [{"shard": n, "version": 0} for n in range(SHARDS)])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for name, when in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} {_SQLITE_BUMP}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER merchants_catalog_version ON merchants")
        op.execute("DROP TRIGGER products_catalog_version ON products")
        op.execute("DROP FUNCTION bump_catalog_version()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("catalog_version")
