"""Read side of the catalogue: the column set every product response is built from, and the
public product list (the busiest endpoint).

The public list reads the catalogue's version (one autocommit statement) and serves the page
rendered at that version from the process's cache (`app.catalog.pages`); only on a miss does it
run ONE statement (products JOIN merchants, limit + 1 rows), read plain rows (no ORM objects)
and validate and serialise them through the response model in one pass, in the API process.
Statements are built once per filter shape and sort, with bound parameters only, so
SQLAlchemy's compiled cache serves every later request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.ext.asyncio import AsyncConnection

from app.catalog.schemas import CategoryRead, ProductListQuery, ProductRead, ProductSort
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.sql import driver_connection, escape_like
from app.models import CatalogVersion, Category, Merchant, MerchantStatus, Product, ProductStatus

products = cast(Table, Product.__table__)
merchants = cast(Table, Merchant.__table__)
categories = cast(Table, Category.__table__)

# Columns of the products table as they appear in a product response (before `certification`
# is folded into one object). Usable in SELECT and in UPDATE/INSERT ... RETURNING.
PRODUCT_COLUMNS: tuple[ColumnElement[Any], ...] = (
    products.c.id,
    products.c.merchant_id,
    products.c.name,
    products.c.description,
    products.c.category_slug.label("category"),
    products.c.unit,
    products.c.price_fen,
    products.c.stock,
    products.c.sold_units,
    products.c.origin_township,
    products.c.assistance_class,
    products.c.cert_scheme,
    products.c.cert_no,
    products.c.cert_issuer,
    products.c.cert_valid_from,
    products.c.cert_valid_to,
    products.c.images,
    products.c.weight_grams,
    products.c.shelf_life_days,
    products.c.status,
    products.c.status_reason,
    products.c.version,
    products.c.created_at,
    products.c.updated_at,
)
_PRODUCT_KEYS: tuple[str, ...] = tuple(str(c.key) for c in PRODUCT_COLUMNS)
_LIST_KEYS = ("merchant_name", *_PRODUCT_KEYS)


def product_dict(row: Sequence[Any], merchant_name: str) -> dict[str, Any]:
    """A `ProductRead`-shaped dict from a row of `PRODUCT_COLUMNS`."""
    data = dict(zip(_PRODUCT_KEYS, row, strict=True))
    data["merchant_name"] = merchant_name
    return _fold_certification(data)


def _fold_certification(data: dict[str, Any]) -> dict[str, Any]:
    scheme = data.pop("cert_scheme")
    number = data.pop("cert_no")
    issuer = data.pop("cert_issuer")
    valid_from = data.pop("cert_valid_from")
    valid_to = data.pop("cert_valid_to")
    data["certification"] = (
        None
        if scheme is None
        else {
            "scheme": scheme,
            "certificate_no": number,
            "issuer": issuer,
            "valid_from": valid_from,
            "valid_to": valid_to,
        }
    )
    return data


async def list_categories(conn: AsyncConnection) -> list[CategoryRead]:
    """Every category, in display order."""
    rows = await conn.execute(
        select(categories.c.slug, categories.c.name).order_by(
            categories.c.position, categories.c.slug
        )
    )
    return [CategoryRead(slug=slug, name=name) for slug, name in rows]


# --- the public list --------------------------------------------------------------------------


# sort -> (key column, descending?)
_SORTS: dict[ProductSort, tuple[Any, bool]] = {
    ProductSort.newest: (products.c.created_at, True),
    ProductSort.price_asc: (products.c.price_fen, False),
    ProductSort.price_desc: (products.c.price_fen, True),
    ProductSort.best_selling: (products.c.sold_units, True),
}
_ASYNCPG_DIALECT = AsyncpgDialect()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=4096)
def _list_statement(
    sort: ProductSort,
    q: bool,
    category: bool,
    merchant_id: bool,
    township: bool,
    min_price: bool,
    max_price: bool,
    in_stock: bool,
    after: bool,
) -> Select[Any]:
    """The list statement for one filter shape, with bound parameters for every value."""
    key, descending = _SORTS[sort]
    conditions: list[ColumnElement[bool]] = [
        products.c.status == ProductStatus.active,
        merchants.c.status == MerchantStatus.approved,
    ]
    if q:
        pattern = bindparam("q", type_=String())
        conditions.append(
            or_(
                products.c.name.ilike(pattern, escape="\\"),
                products.c.description.ilike(pattern, escape="\\"),
            )
        )
    if category:
        conditions.append(products.c.category_slug == bindparam("category", type_=String()))
    if merchant_id:
        conditions.append(
            products.c.merchant_id == bindparam("merchant_id", type_=products.c.merchant_id.type)
        )
    if township:
        conditions.append(products.c.origin_township == bindparam("township", type_=String()))
    if min_price:
        conditions.append(products.c.price_fen >= bindparam("min_price", type_=BigInteger()))
    if max_price:
        conditions.append(products.c.price_fen <= bindparam("max_price", type_=BigInteger()))
    if in_stock:
        conditions.append(products.c.stock > 0)
    if after:
        position = tuple_(
            bindparam("after_key", type_=key.type),
            bindparam("after_id", type_=products.c.id.type),
        )
        row = tuple_(key, products.c.id)
        conditions.append(row < position if descending else row > position)
    order = (key.desc(), products.c.id.desc()) if descending else (key.asc(), products.c.id.asc())
    return (
        select(merchants.c.name.label("merchant_name"), *PRODUCT_COLUMNS)
        .select_from(products.join(merchants, merchants.c.id == products.c.merchant_id))
        .where(and_(*conditions))
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer()))
    )


def _cursor_position(sort: ProductSort, cursor: str) -> tuple[Any, uuid.UUID]:
    key_type = datetime if sort is ProductSort.newest else int
    after_key, after_id = decode_cursor(cursor, sort.value, key_type, uuid.UUID)
    return after_key, after_id


def _cursor_for(sort: ProductSort, item: dict[str, Any]) -> str:
    if sort is ProductSort.newest:
        key: Any = item["created_at"].isoformat()
    elif sort is ProductSort.best_selling:
        key = item["sold_units"]
    else:
        key = item["price_fen"]
    return encode_cursor(sort.value, [key, str(item["id"])])


def list_params(query: ProductListQuery) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The bound values and the statement shape (which filters are present) of a query."""
    sort = query.sort
    params: dict[str, Any] = {"limit": query.limit + 1}
    q = query.q.strip() if query.q is not None else None
    if q:
        params["q"] = f"%{escape_like(q)}%"
    if query.category is not None:
        params["category"] = query.category
    if query.merchant_id is not None:
        params["merchant_id"] = query.merchant_id
    if query.township is not None:
        params["township"] = query.township
    if query.min_price_fen is not None:
        params["min_price"] = query.min_price_fen
    if query.max_price_fen is not None:
        params["max_price"] = query.max_price_fen
    if query.cursor is not None:
        params["after_key"], params["after_id"] = _cursor_position(sort, query.cursor)
    shape = (
        sort,
        bool(q),
        query.category is not None,
        query.merchant_id is not None,
        query.township is not None,
        query.min_price_fen is not None,
        query.max_price_fen is not None,
        query.in_stock,
        query.cursor is not None,
    )
    return params, shape


async def catalog_version(conn: AsyncConnection) -> int:
    """The catalogue's version now (see `app.catalog.pages`): one statement, no transaction."""
    driver = await driver_connection(conn)
    if driver is not None:  # PostgreSQL: a prepared statement on the asyncpg connection
        return int(await driver.fetchval(_VERSION_SQL))
    return int((await conn.execute(_VERSION)).scalar_one())


async def render_page(
    conn: AsyncConnection,
    query: ProductListQuery,
    params: dict[str, Any],
    shape: tuple[Any, ...],
) -> bytes:
    """Read the page's rows (one statement) and serialise them exactly as the response model
    would."""
    limit = query.limit
    rows = (await conn.execute(_list_statement(*shape), params)).all()
    keys = _LIST_KEYS
    fold = _fold_certification
    items = [fold(dict(zip(keys, row, strict=True))) for row in rows[:limit]]
    next_cursor = _cursor_for(query.sort, items[-1]) if len(rows) > limit else None
    page = _PAGE.validate_python({"items": items, "next_cursor": next_cursor})
    return _PAGE.dump_json(page)


catalog_version_table = cast(Table, CatalogVersion.__table__)
_VERSION = select(func.coalesce(func.sum(catalog_version_table.c.version), 0))
_VERSION_SQL = "SELECT coalesce(sum(version), 0) FROM catalog_version"
_PAGE: TypeAdapter[Page[ProductRead]] = TypeAdapter(Page[ProductRead])
