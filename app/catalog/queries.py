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
from collections import OrderedDict
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
    literal_column,
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
    item_cache: ItemCache | None = None,
) -> bytes:
    """Read the page's rows (one statement) and serialise them exactly as the response model
    would. On PostgreSQL with an `item_cache`, only the items whose rows changed since they
    were last rendered are read in full and rendered (see `_render_page_pg`)."""
    if item_cache is not None and conn.dialect.name == "postgresql":
        body = await _render_page_pg(conn, query, params, shape, item_cache)
        if body is not None:
            return body
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


# --- PostgreSQL: a page from the items already rendered -----------------------------------------
#
# A row's `xmin` (the transaction that wrote this version of it) changes with every UPDATE, so
# (product id, product xmin, merchant xmin) names one rendering of an item exactly: its product
# row and its merchant's name. A miss reads the page's ids and stamps (a narrow statement), then
# reads in full and renders only the items not rendered yet, and joins the rendered items.


class ItemCache:
    """Rendered list items (`ProductRead` JSON) by (id, product xmin, merchant xmin), least
    recently used first out."""

    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[Any, str, str], bytes] = OrderedDict()

    def get(self, key: tuple[Any, str, str]) -> bytes | None:
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, key: tuple[Any, str, str], body: bytes) -> None:
        self._items[key] = body
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_PRODUCT_XMIN: ColumnElement[str] = literal_column("products.xmin::text")
_MERCHANT_XMIN: ColumnElement[str] = literal_column("merchants.xmin::text")
_ITEM: TypeAdapter[ProductRead] = TypeAdapter(ProductRead)


@lru_cache(maxsize=4096)
def _stamp_statement(shape: tuple[Any, ...]) -> Select[Any]:
    return _list_statement(*shape).with_only_columns(
        products.c.id,
        _PRODUCT_XMIN,
        _MERCHANT_XMIN,
        products.c.created_at,
        products.c.price_fen,
        products.c.sold_units,
    )


_ITEMS_BY_ID = (
    select(_PRODUCT_XMIN, _MERCHANT_XMIN, merchants.c.name.label("merchant_name"), *PRODUCT_COLUMNS)
    .select_from(products.join(merchants, merchants.c.id == products.c.merchant_id))
    .where(products.c.id.in_(bindparam("ids", expanding=True)))
)


async def _render_page_pg(
    conn: AsyncConnection,
    query: ProductListQuery,
    params: dict[str, Any],
    shape: tuple[Any, ...],
    cache: ItemCache,
) -> bytes | None:
    """The page from rendered items; None when an item changed between the two reads (the
    caller then renders the page from one read)."""
    limit = query.limit
    rows = (await conn.execute(_stamp_statement(shape), params)).all()
    page = rows[:limit]
    keys = [(row[0], row[1], row[2]) for row in page]
    rendered = {key: cache.get(key) for key in keys}
    missing = [key[0] for key, body in rendered.items() if body is None]
    if missing:
        fold = _fold_certification
        for row in await conn.execute(_ITEMS_BY_ID, {"ids": missing}):
            key = (row[3], row[0], row[1])  # id, product xmin, merchant xmin
            if key not in rendered:
                return None  # changed since the first read: not this page's version of it
            item = fold(dict(zip(_LIST_KEYS, row[2:], strict=True)))
            body = _ITEM.dump_json(_ITEM.validate_python(item))
            cache.put(key, body)
            rendered[key] = body
    if any(rendered[key] is None for key in keys):
        return None  # gone since the first read
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = _cursor_for(
            query.sort,
            {"id": last[0], "created_at": last[3], "price_fen": last[4], "sold_units": last[5]},
        )
    cursor_json = b"null" if next_cursor is None else b'"' + next_cursor.encode() + b'"'
    joined = b",".join(rendered[key] or b"" for key in keys)
    return b'{"items":[' + joined + b'],"next_cursor":' + cursor_json + b"}"
