"""Read side of the catalogue: the column set every product response is built from, and the
public product list (the busiest endpoint).

The public list runs ONE statement (products JOIN merchants, limit + 1 rows) on an autocommit
connection, reads plain rows (no ORM objects) and hands dicts to the response model, which
validates and serialises them in one pass. Statements are built once per filter shape and sort,
with bound parameters only, so SQLAlchemy's compiled cache serves every later request.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.ext.asyncio import AsyncConnection

from app.catalog.schemas import CategoryRead, ProductListQuery, ProductSort
from app.core.pagination import decode_cursor, encode_cursor
from app.core.sql import driver_connection, escape_like
from app.models import Category, Merchant, MerchantStatus, Product, ProductStatus

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


def _list_params(query: ProductListQuery) -> tuple[dict[str, Any], tuple[Any, ...]]:
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


async def list_public_products(
    conn: AsyncConnection, query: ProductListQuery
) -> dict[str, Any] | bytes:
    """One page of the storefront: active products of approved merchants, as
    `{items, next_cursor}` with `ProductRead`-shaped items. `400 invalid_cursor` for a cursor
    that this sort did not give out.

    On PostgreSQL the database builds each item's JSON and the page comes back as the response
    body, ready to send (see `_list_json_pg`); elsewhere, dicts for the response model."""
    params, shape = _list_params(query)
    driver = await driver_connection(conn)
    if driver is not None:
        return await _list_json_pg(driver, query, params, shape)
    limit = query.limit
    statement = _list_statement(*shape)
    rows = (await conn.execute(statement, params)).all()
    keys = _LIST_KEYS
    fold = _fold_certification
    items = [fold(dict(zip(keys, row, strict=True))) for row in rows[:limit]]
    next_cursor = _cursor_for(query.sort, items[-1]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


# --- PostgreSQL: the page's JSON built by the database ------------------------------------------
#
# The busiest endpoint does no work per row in Python: PostgreSQL renders each item exactly as
# `ProductRead` serialises it (same keys in the same order, UTC timestamps with microseconds,
# see `app.core.validators.UtcTimestamp`), the statement is compiled once per filter shape and
# runs as a prepared statement on the asyncpg connection itself, and the items are joined into
# the response body. tests/catalog/test_product_list.py checks the list and `GET
# /products/{id}` agree field for field on both databases.

_TIMESTAMP_FORMAT: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'""")
_DATE_FORMAT: ColumnElement[str] = literal_column("'YYYY-MM-DD'")


def _pg_timestamp(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.to_char(func.timezone(literal_column("'UTC'"), column), _TIMESTAMP_FORMAT)


def _key(name: str) -> ColumnElement[Any]:
    return literal_column(f"'{name}'")


def _pg_item_json() -> ColumnElement[Any]:
    certification = case(
        (products.c.cert_scheme.is_(None), null()),
        else_=func.json_build_object(
            _key("scheme"),
            products.c.cert_scheme,
            _key("certificate_no"),
            products.c.cert_no,
            _key("issuer"),
            products.c.cert_issuer,
            _key("valid_from"),
            func.to_char(products.c.cert_valid_from, _DATE_FORMAT),
            _key("valid_to"),
            func.to_char(products.c.cert_valid_to, _DATE_FORMAT),
        ),
    )
    fields: list[tuple[str, ColumnElement[Any]]] = [
        ("id", products.c.id),
        ("merchant_id", products.c.merchant_id),
        ("merchant_name", merchants.c.name),
        ("name", products.c.name),
        ("description", products.c.description),
        ("category", products.c.category_slug),
        ("unit", products.c.unit),
        ("price_fen", products.c.price_fen),
        ("currency", literal_column("'CNY'")),
        ("stock", products.c.stock),
        ("sold_units", products.c.sold_units),
        ("origin_township", products.c.origin_township),
        ("assistance_class", products.c.assistance_class),
        ("certification", certification),
        ("images", products.c.images),
        ("weight_grams", products.c.weight_grams),
        ("shelf_life_days", products.c.shelf_life_days),
        ("status", products.c.status),
        ("status_reason", products.c.status_reason),
        ("version", products.c.version),
        ("created_at", _pg_timestamp(products.c.created_at)),
        ("updated_at", _pg_timestamp(products.c.updated_at)),
    ]
    args: list[ColumnElement[Any]] = []
    for name, column in fields:
        args += [_key(name), column]
    return cast_(func.json_build_object(*args), Text)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


@lru_cache(maxsize=1024)
def _pg_list_sql(shape: tuple[Any, ...]) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """SQL text, parameter order and constant parameters for one filter shape."""
    statement = _list_statement(*shape).with_only_columns(
        _pg_item_json(),
        products.c.created_at,
        products.c.price_fen,
        products.c.sold_units,
        products.c.id,
    )
    compiled = statement.compile(dialect=_ASYNCPG_DIALECT)
    constants = {k: _plain(v) for k, v in compiled.params.items() if v is not None}
    return str(compiled), tuple(compiled.positiontup or ()), constants


async def _list_json_pg(
    driver: Any,
    query: ProductListQuery,
    params: dict[str, Any],
    shape: tuple[Any, ...],
) -> bytes:
    sql, order, constants = _pg_list_sql(shape)
    args = [params[name] if name in params else constants[name] for name in order]
    rows = await driver.fetch(sql, *args)
    limit = query.limit
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _cursor_for(
            query.sort,
            {
                "created_at": last[1],
                "price_fen": last[2],
                "sold_units": last[3],
                "id": last[4],
            },
        )
    items = ",".join(row[0] for row in rows[:limit])
    cursor_json = "null" if next_cursor is None else f'"{next_cursor}"'
    return f'{{"items":[{items}],"next_cursor":{cursor_json}}}'.encode()
