"""Checkout and the order lifecycle that involves no payment provider.

Every function that changes an order first locks the order row (`lock_order`), so operations on
one order run one at a time on PostgreSQL (SQLite serialises all writers anyway). Stock is taken
with conditional UPDATEs in product-id order. Nothing here calls the network.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.errors import refuse_official
from app.core.config import Settings
from app.core.errors import AppError, Forbidden
from app.core.idempotency import COMPLETE_SQL, Stored
from app.core.statements import Statements, check_insert
from app.core.time import SHANGHAI, utcnow
from app.models import (
    Merchant,
    MerchantOrder,
    MerchantOrderStatus,
    MerchantStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Product,
    ProductStatus,
    Role,
    User,
)
from app.orders import limits
from app.orders.errors import (
    InsufficientStock,
    InvalidOrderLine,
    OrderNotFound,
    OrderTotalTooLarge,
    ProductUnavailable,
)
from app.orders.schemas import (
    MerchantOrderRead,
    OrderCreate,
    OrderLineRead,
    OrderRead,
    PaymentSummary,
    ShippingAddress,
)
from app.refunds.queries import refunds_of_orders
from app.refunds.schemas import RefundRead


def _merge_lines(data: OrderCreate) -> dict[uuid.UUID, int]:
    quantities: dict[uuid.UUID, int] = {}
    for index, line in enumerate(data.lines):
        quantity = quantities.get(line.product_id, 0) + line.quantity
        if quantity > 9999:
            # Not a stock problem: a line (duplicates merged) holds at most 9999 units. The loc
            # names the line that took the product over the limit.
            raise InvalidOrderLine(
                f"At most 9999 units of product {line.product_id} in one order.",
                loc=("body", "lines", index, "quantity"),
                extra={"product_id": str(line.product_id)},
            )
        quantities[line.product_id] = quantity
    return quantities


_products = cast(Table, Product.__table__)
_merchants = cast(Table, Merchant.__table__)
_orders = cast(Table, Order.__table__)
_merchant_orders = cast(Table, MerchantOrder.__table__)
_order_lines = cast(Table, OrderLine.__table__)

# Reserve and price one product in one statement: the conditional stock update (which locks
# the row) returns the facts the order line freezes; no row means not on sale or short.
_RESERVE = (
    update(_products)
    .where(
        _products.c.id == bindparam("product_id"),
        _products.c.status == ProductStatus.active,
        _products.c.stock >= bindparam("quantity"),
        _merchants.c.id == _products.c.merchant_id,
        _merchants.c.status == MerchantStatus.approved,
    )
    .values(stock=_products.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
    .returning(
        _products.c.id,
        _products.c.merchant_id,
        _products.c.name,
        _products.c.unit,
        _products.c.price_fen,
        _products.c.category_slug,
        _products.c.assistance_class,
        _products.c.origin_township,
        _products.c.cert_no,
        _products.c.cert_valid_from,
        _products.c.cert_valid_to,
    )
)
_ON_SALE = (
    select(_products.c.name, _products.c.unit, _products.c.stock)
    .select_from(_products.join(_merchants, _merchants.c.id == _products.c.merchant_id))
    .where(
        _products.c.id == bindparam("product_id"),
        _products.c.status == ProductStatus.active,
        _merchants.c.status == MerchantStatus.approved,
    )
)
_INSERT_ORDER = insert(_orders)
_INSERT_MERCHANT_ORDERS = insert(_merchant_orders)
_INSERT_LINES = insert(_order_lines)


async def _refusal(db: Statements, product_id: uuid.UUID, quantity: int) -> AppError:
    """Why a product could not be reserved: ProductUnavailable or InsufficientStock."""
    row = await db.first(_ON_SALE, {"product_id": product_id})
    if row is None:
        return ProductUnavailable(
            f"Product {product_id} is not on sale.", extra={"product_id": str(product_id)}
        )
    return InsufficientStock(
        f"Not enough stock of {row['name']} for {quantity} {row['unit']}.",
        extra={"product_id": str(product_id)},
    )


def _too_large(
    data: OrderCreate, products: dict[uuid.UUID, dict[str, Any]], ceiling: int
) -> AppError:
    """The error naming the line (in the buyer's order) at which the total passes `ceiling`."""
    total = 0
    seen: set[uuid.UUID] = set()
    crossing = len(data.lines) - 1
    for index, line in enumerate(data.lines):
        if line.product_id in seen:
            continue  # merged with its first line
        seen.add(line.product_id)
        quantity = sum(x.quantity for x in data.lines if x.product_id == line.product_id)
        total += products[line.product_id]["price_fen"] * quantity
        if total > ceiling:
            crossing = index
            break
    return OrderTotalTooLarge(
        f"An order may come to at most {ceiling} fen; this one comes to more.",
        loc=["body", "lines", crossing, "quantity"],
        limit=ceiling,
    )


async def place_order(
    session: AsyncSession, buyer: User, data: OrderCreate, settings: Settings
) -> OrderRead:
    """Price the lines from the catalogue, reserve all stock or none, and create the order.

    Raises RateLimited (429) and TooManyUnpaidOrders (409) for a buyer over its limits
    (`app.orders.limits`), ProductUnavailable (409) for a product that is not on sale and
    InsufficientStock (409) naming the product whose stock is short (the first such product in id
    order), OrderTotalTooLarge (422); in that order of precedence. Locks the product rows it
    reserves, in id order.

    On PostgreSQL two statements (`_pg_place`): one counts the checkout, reserves and prices every
    product and takes the number; one writes the order, its merchant orders and lines. Elsewhere
    prebuilt Core statements, one per product reserved plus one for the number and one per table
    written.
    """
    read, _ = await _place(session, buyer, data, settings, None)
    return read


async def place_order_claimed(
    session: AsyncSession, buyer: User, data: OrderCreate, settings: Settings, claim_id: uuid.UUID
) -> OrderRead | Stored:
    """`place_order` for `run_idempotent(claimed=...)`: on PostgreSQL the response is stored on
    the claim by the statement that writes the order (`Stored`); elsewhere the order is returned
    for `run_idempotent` to store."""
    read, text = await _place(session, buyer, data, settings, claim_id)
    return Stored(text) if text is not None else read


async def _place(
    session: AsyncSession,
    buyer: User,
    data: OrderCreate,
    settings: Settings,
    claim_id: uuid.UUID | None,
) -> tuple[OrderRead, str | None]:
    if buyer.role != Role.buyer:
        raise Forbidden("Only buyers place orders.")
    quantities = _merge_lines(data)
    # Prebuilt Core statements, no ORM machinery on the checkout path.
    db = await Statements.of(session)
    if db.on_driver:
        return await _pg_place(db, buyer, data, settings, quantities, claim_id)
    await limits.count_checkout(db, buyer.id, settings)
    now = utcnow()
    products = await _reserve(db, quantities, now)
    number = await limits.next_number(db, buyer.id, settings)
    checkout = _build(buyer, data, settings, products, quantities, number, now)
    await db.execute(_INSERT_ORDER, checkout.order)
    await db.execute_many(_INSERT_MERCHANT_ORDERS, checkout.merchant_orders)
    await db.execute_many(_INSERT_LINES, checkout.lines)
    return checkout.read, None


# PostgreSQL: checkout in two statements -----------------------------------------------------------
#
# 1. `_PG_RESERVE` upserts the buyer's checkout counter as `app.core.ratelimit.HIT` does (only
#    when a limit is on; the row stays locked until the order commits), then locks the products
#    in id order (FOR UPDATE after ORDER BY: concurrent checkouts never deadlock; the counter is
#    joined in so that it is taken first), reserves and prices each with the same conditions as
#    `_RESERVE`, and takes the order number only if every product was reserved. One row per
#    product reserved (at least one row: the counter).
# 2. `_pg_write` inserts the order, its merchant orders and its lines from the very rows the
#    portable path inserts (passed as JSON, the columns named by the rows' keys and checked like
#    any prebuilt INSERT: `check_insert`) and completes the idempotency claim with the response,
#    only if the buyer holds fewer than UNPAID_ORDERS_PER_BUYER unpaid orders. Its snapshot is
#    taken after the counter's lock, so the count sees the buyer's every committed order.
# A refusal raises before the transaction commits: it rolls back whatever was reserved.

_PG_RESERVE = """
WITH hit AS (
    INSERT INTO rate_limits AS r (key, window_start_ms, hits, delay_ms, blocked_until_ms)
    SELECT $5::text, $6::bigint, 1, 0, 0 WHERE $4::boolean
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN r.window_start_ms <= $7::bigint THEN 1 ELSE r.hits + 1 END,
        window_start_ms = CASE WHEN r.window_start_ms <= $7::bigint THEN $6::bigint
                               ELSE r.window_start_ms END
    RETURNING r.hits, r.window_start_ms
),
counted AS MATERIALIZED (SELECT count(*) AS n FROM hit),
wanted AS MATERIALIZED (
    SELECT w.id, w.quantity FROM unnest($1::uuid[], $2::integer[]) AS w(id, quantity)
),
locked AS MATERIALIZED (
    SELECT p.id FROM products AS p JOIN wanted AS w ON w.id = p.id CROSS JOIN counted
    ORDER BY p.id FOR UPDATE OF p
),
reserved AS (
    UPDATE products AS p SET stock = p.stock - w.quantity, updated_at = $3
    FROM wanted AS w, locked AS l, merchants AS m
    WHERE w.id = p.id AND l.id = p.id AND m.id = p.merchant_id
        AND p.status = 'active' AND m.status = 'approved' AND p.stock >= w.quantity
    RETURNING p.id, p.merchant_id, p.name, p.unit, p.price_fen, p.category_slug,
        p.assistance_class, p.origin_township, p.cert_no, p.cert_valid_from, p.cert_valid_to
),
numbered AS MATERIALIZED (
    SELECT nextval('order_number_seq') AS number
    WHERE (SELECT count(*) FROM reserved) = cardinality($1::uuid[])
)
SELECT h.hits AS _hits, h.window_start_ms AS _window_start_ms,
    (SELECT number FROM numbered) AS _number, r.*
FROM (SELECT 1) AS one LEFT JOIN hit AS h ON true LEFT JOIN reserved AS r ON true
"""


async def _pg_place(
    db: Statements,
    buyer: User,
    data: OrderCreate,
    settings: Settings,
    quantities: dict[uuid.UUID, int],
    claim_id: uuid.UUID | None,
) -> tuple[OrderRead, str | None]:
    counter = limits.Counter.of(buyer.id, settings)
    now = utcnow()
    ids = sorted(quantities)  # id order: the first refusal in id order is the one named
    rows = await db.fetchrows(
        _PG_RESERVE,
        ids,
        [quantities[i] for i in ids],
        now,
        counter.counted,
        counter.key,
        counter.now,
        counter.cutoff,
    )
    first = rows[0]
    if counter.counted:
        counter.judge_row(int(first["_hits"]), int(first["_window_start_ms"]))
    products = {row["id"]: row for row in rows if row["id"] is not None}
    if first["_number"] is None:
        missing = next(i for i in ids if i not in products)
        raise await _refusal(db, missing, quantities[missing])
    try:
        checkout = _build(buyer, data, settings, products, quantities, int(first["_number"]), now)
    except OrderTotalTooLarge:
        await limits.check_unpaid(db, buyer.id, settings)  # the unpaid limit's 409 comes first
        raise
    text = checkout.read.model_dump_json() if claim_id is not None else None
    (written,) = await db.fetchrows(
        _pg_write(checkout),
        _json(checkout.order),
        _json(checkout.merchant_orders),
        _json(checkout.lines),
        buyer.id,
        settings.unpaid_orders_per_buyer,
        claim_id,
        text,
    )
    limits.refuse_unpaid(int(written["unpaid"]), settings)
    return checkout.read, text


_pg_writes: dict[tuple[tuple[str, ...], ...], str] = {}


def _pg_write(checkout: _Checkout) -> str:
    """The statement writing this shape of rows (keys of each table's rows), built once."""
    shape = (tuple(checkout.order), tuple(checkout.merchant_orders[0]), tuple(checkout.lines[0]))
    sql = _pg_writes.get(shape)
    if sql is None:
        sql = _pg_writes[shape] = _build_pg_write(*shape)
    return sql


_PG_WRITE_HEAD = """
WITH unpaid AS MATERIALIZED (
    SELECT CASE WHEN $5::integer > 0 THEN (
        SELECT count(*) FROM orders WHERE buyer_id = $4::uuid AND status = 'pending_payment'
    ) ELSE 0 END AS n
),
go AS MATERIALIZED (SELECT 1 FROM unpaid WHERE $5::integer = 0 OR n < $5::integer),
"""
_PG_WRITE_TAIL = """,
done AS ({complete} AND EXISTS (SELECT 1 FROM go) RETURNING 1)
SELECT (SELECT n FROM unpaid) AS unpaid
"""


def _build_pg_write(
    order: tuple[str, ...], merchant_order: tuple[str, ...], line: tuple[str, ...]
) -> str:
    """Identifiers only come from our tables and our row dicts' keys; values are parameters."""
    one, many = "json_populate_record", "json_populate_recordset"
    inserts = []
    for name, param, records, statement, table, keys in (
        ("o", "$1", one, _INSERT_ORDER, _orders, order),
        ("mo", "$2", many, _INSERT_MERCHANT_ORDERS, _merchant_orders, merchant_order),
        ("ol", "$3", many, _INSERT_LINES, _order_lines, line),
    ):
        check_insert(statement, keys)  # UnfilledColumns, as for the portable path's INSERTs
        columns = ", ".join(keys)
        values = ", ".join(f"x.{key}" for key in keys)
        inserts.append(
            f"{name} AS (INSERT INTO {table.name} ({columns}) SELECT {values} "  # noqa: S608
            f"FROM go, {records}(NULL::{table.name}, {param}::json) AS x RETURNING 1)"
        )
    complete = COMPLETE_SQL.format(status="201", body="$7::text", claim_id="$6::uuid")
    return _PG_WRITE_HEAD + ",\n".join(inserts) + _PG_WRITE_TAIL.format(complete=complete)


def _json(rows: Any) -> str:
    """Rows as JSON text (UUIDs, timestamps and dates as PostgreSQL reads them back)."""
    return to_json(rows).decode()


async def _reserve(
    db: Statements, quantities: dict[uuid.UUID, int], now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """Take the stock of every product and return the facts each line freezes, by product id.
    Raises the refusal of the first product (in id order) that is off sale or short."""
    products: dict[uuid.UUID, dict[str, Any]] = {}
    for product_id in sorted(quantities):  # id order: concurrent checkouts never deadlock
        quantity = quantities[product_id]
        reserved = await db.first(
            _RESERVE, {"product_id": product_id, "quantity": quantity, "now": now}
        )
        if reserved is None:
            raise await _refusal(db, product_id, quantity)
        products[product_id] = reserved
    return products


@dataclass(slots=True)
class _Checkout:
    """A new order as rows of its three tables, and the response built from those same rows."""

    order: dict[str, Any]
    merchant_orders: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    read: OrderRead


def _build(
    buyer: User,
    data: OrderCreate,
    settings: Settings,
    products: dict[uuid.UUID, dict[str, Any]],
    quantities: dict[uuid.UUID, int],
    number: int,
    now: datetime,
) -> _Checkout:
    """The order split into one part per merchant, lines priced from the reserved products."""
    order_id = uuid.uuid4()
    merchant_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    parts: list[MerchantOrderRead] = []
    for merchant_id, product_ids in _by_merchant(data, products).items():
        mo_id = uuid.uuid4()
        lines = [
            _line_row(order_id, mo_id, products[pid], quantities[pid], len(line_rows) + i)
            for i, pid in enumerate(product_ids)
        ]
        subtotal = sum(line["line_total_fen"] for line in lines)
        merchant_row = _merchant_order_row(order_id, mo_id, merchant_id, subtotal, now)
        line_rows += lines
        merchant_rows.append(merchant_row)
        parts.append(_merchant_order_read(merchant_row, lines))
    total = sum(row["subtotal_fen"] for row in merchant_rows)

    if total > settings.max_order_total_fen:  # no round trip: the reserved stock rolls back
        raise _too_large(data, products, settings.max_order_total_fen)
    expires_at = now + timedelta(minutes=settings.payment_timeout_minutes)
    order_row = _order_row(order_id, number, buyer, data, total, expires_at, now)
    read = OrderRead(
        **_fields(OrderRead, order_row),
        shipping_address=data.shipping_address,
        merchant_orders=parts,
        refunds=[],
        payments=[],
    )
    return _Checkout(order_row, merchant_rows, line_rows, read)


def _by_merchant(
    data: OrderCreate, products: dict[uuid.UUID, dict[str, Any]]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Product ids per merchant, in the buyer's order of lines (merged duplicates once)."""
    groups: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for line in data.lines:
        group = groups[products[line.product_id]["merchant_id"]]
        if line.product_id not in group:
            group.append(line.product_id)
    return groups


def _fields(model: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    """The values of `row` that `model` has fields for (a missing required one fails there)."""
    return {name: row[name] for name in model.model_fields if name in row}


# The rows of a new order: every column of each table is written here, and only here.


def _order_row(
    order_id: uuid.UUID,
    number: int,
    buyer: User,
    data: OrderCreate,
    total: int,
    expires_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    address = data.shipping_address
    return {
        "id": order_id,
        "number": number,
        "order_no": f"SH{now.astimezone(SHANGHAI):%Y%m%d}{number:08d}",
        "buyer_id": buyer.id,
        "buyer_region_code": buyer.region_code,
        "buyer_type": buyer.buyer_type,
        "status": OrderStatus.pending_payment,
        "payment_method": data.payment_method,
        "total_fen": total,
        "refunded_fen": 0,
        "ship_recipient": address.recipient,
        "ship_phone": address.phone,
        "ship_region_code": address.region_code,
        "ship_address": address.address,
        "note": data.note or None,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
        "paid_at": None,
        "commission_rate_bps": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "completed_at": None,
    }


def _merchant_order_row(
    order_id: uuid.UUID, mo_id: uuid.UUID, merchant_id: uuid.UUID, subtotal: int, now: datetime
) -> dict[str, Any]:
    """Carrier, tracking number and the shipping and completion times start NULL."""
    return {
        "id": mo_id,
        "order_id": order_id,
        "merchant_id": merchant_id,
        "status": MerchantOrderStatus.pending_payment,
        "subtotal_fen": subtotal,
        "refunded_fen": 0,
        "commission_fen": 0,
        "created_at": now,
        "updated_at": now,
    }


def _merchant_order_read(row: dict[str, Any], lines: list[dict[str, Any]]) -> MerchantOrderRead:
    return MerchantOrderRead(
        **_fields(MerchantOrderRead, row),
        carrier=None,
        tracking_no=None,
        shipped_at=None,
        completed_at=None,
        lines=[OrderLineRead(**_fields(OrderLineRead, line)) for line in lines],
    )


def _line_row(
    order_id: uuid.UUID,
    mo_id: uuid.UUID,
    product: dict[str, Any],
    quantity: int,
    position: int,
) -> dict[str, Any]:
    """A line freezes the product's name, unit, price and certification at checkout."""
    return {
        "id": uuid.uuid4(),
        "order_id": order_id,
        "merchant_order_id": mo_id,
        "product_id": product["id"],
        "position": position,
        "name": product["name"],
        "unit": product["unit"],
        "unit_price_fen": product["price_fen"],
        "quantity": quantity,
        "line_total_fen": product["price_fen"] * quantity,
        "refunded_quantity": 0,
        "category_slug": product["category_slug"],
        "assistance_class": product["assistance_class"],
        "origin_township": product["origin_township"],
        "cert_no": product["cert_no"],
        "cert_valid_from": product["cert_valid_from"],
        "cert_valid_to": product["cert_valid_to"],
    }


# Reading orders ---------------------------------------------------------------------------------


async def get_visible_order(session: AsyncSession, user: User, order_id: uuid.UUID) -> Order:
    """A buyer sees its own orders, an admin all; anyone else's order is 404 to a buyer."""
    if user.role not in (Role.buyer, Role.admin):
        raise Forbidden("Orders are read by their buyer and by admins.")
    order = await session.get(Order, order_id)
    if order is None or (user.role == Role.buyer and order.buyer_id != user.id):
        raise OrderNotFound("No such order.")
    return order


async def get_order_seen_by(session: AsyncSession, user: User, order_id: uuid.UUID) -> Order:
    """The order if `user` sees it or a part of it: its buyer, an admin, or a member of one of
    its merchants (who sees its merchant order). Anyone else: `404 order_not_found`. For the
    403-or-404 choice of actions the caller's role may not do. Officials: 403."""
    refuse_official(user.role)
    order = await session.get(Order, order_id)
    if order is not None:
        if user.role == Role.admin or (user.role == Role.buyer and order.buyer_id == user.id):
            return order
        if user.role == Role.merchant and user.merchant_id is not None:
            part = await session.scalar(
                select(MerchantOrder.id).where(
                    MerchantOrder.order_id == order.id,
                    MerchantOrder.merchant_id == user.merchant_id,
                )
            )
            if part is not None:
                return order
    raise OrderNotFound("No such order.")


def order_line_read(line: OrderLine) -> OrderLineRead:
    return OrderLineRead(
        id=line.id,
        product_id=line.product_id,
        name=line.name,
        unit=line.unit,
        unit_price_fen=line.unit_price_fen,
        quantity=line.quantity,
        line_total_fen=line.line_total_fen,
        refunded_quantity=line.refunded_quantity,
    )


def shipping_address(order: Order) -> ShippingAddress:
    return ShippingAddress.model_construct(
        recipient=order.ship_recipient,
        phone=order.ship_phone,
        region_code=order.ship_region_code,
        address=order.ship_address,
    )


@dataclass(slots=True)
class _OrderParts:
    merchant_orders: dict[uuid.UUID, list[MerchantOrderRead]]
    refunds: dict[uuid.UUID, list[RefundRead]]
    payments: dict[uuid.UUID, list[PaymentSummary]]


async def _load_parts(session: AsyncSession, order_ids: list[uuid.UUID]) -> _OrderParts:
    """Merchant orders with lines, refunds with lines and payments of these orders: 5 queries."""
    lines_by_mo: dict[uuid.UUID, list[OrderLineRead]] = defaultdict(list)
    for line in await session.scalars(
        select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.position)
    ):
        lines_by_mo[line.merchant_order_id].append(order_line_read(line))
    merchant_orders: dict[uuid.UUID, list[MerchantOrderRead]] = defaultdict(list)
    for mo in await session.scalars(
        select(MerchantOrder)
        .where(MerchantOrder.order_id.in_(order_ids))
        .order_by(MerchantOrder.created_at, MerchantOrder.id)
    ):
        merchant_orders[mo.order_id].append(merchant_order_read(mo, lines_by_mo[mo.id]))
    refunds = await refunds_of_orders(session, order_ids)
    payments: dict[uuid.UUID, list[PaymentSummary]] = defaultdict(list)
    for payment in await session.scalars(
        select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.created_at)
    ):
        payments[payment.order_id].append(
            PaymentSummary(
                id=payment.id,
                provider=payment.provider,
                status=payment.status,
                amount_fen=payment.amount_fen,
                reference=payment.reference,
                bank_reference=payment.bank_reference,
                created_at=payment.created_at,
                succeeded_at=payment.succeeded_at,
            )
        )
    return _OrderParts(merchant_orders, refunds, payments)


def merchant_order_read(mo: MerchantOrder, lines: list[OrderLineRead]) -> MerchantOrderRead:
    return MerchantOrderRead(
        id=mo.id,
        order_id=mo.order_id,
        merchant_id=mo.merchant_id,
        status=mo.status,
        subtotal_fen=mo.subtotal_fen,
        refunded_fen=mo.refunded_fen,
        carrier=mo.carrier,
        tracking_no=mo.tracking_no,
        shipped_at=mo.shipped_at,
        completed_at=mo.completed_at,
        lines=lines,
    )


def _order_read(order: Order, parts: _OrderParts) -> OrderRead:
    return OrderRead(
        id=order.id,
        order_no=order.order_no,
        status=order.status,
        buyer_id=order.buyer_id,
        payment_method=order.payment_method,
        total_fen=order.total_fen,
        refunded_fen=order.refunded_fen,
        shipping_address=shipping_address(order),
        note=order.note,
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        cancel_reason=order.cancel_reason,
        completed_at=order.completed_at,
        created_at=order.created_at,
        merchant_orders=parts.merchant_orders.get(order.id, []),
        refunds=parts.refunds.get(order.id, []),
        payments=parts.payments.get(order.id, []),
    )


async def read_order(session: AsyncSession, order_id: uuid.UUID) -> OrderRead:
    order = await session.scalar(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    )
    if order is None:
        raise OrderNotFound("No such order.")
    return _order_read(order, await _load_parts(session, [order.id]))


async def read_orders(session: AsyncSession, orders: list[Order]) -> list[OrderRead]:
    if not orders:
        return []
    parts = await _load_parts(session, [o.id for o in orders])
    return [_order_read(o, parts) for o in orders]


async def has_orders_in_progress(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user has an order awaiting payment or paid and not yet completed."""
    found = await session.scalar(
        select(Order.id)
        .where(
            Order.buyer_id == user_id,
            Order.status.in_([OrderStatus.pending_payment, OrderStatus.paid]),
        )
        .limit(1)
    )
    return found is not None


def orders_query(user: User, status: OrderStatus | None) -> Select[Order]:
    query = select(Order)
    if user.role == Role.buyer:
        query = query.where(Order.buyer_id == user.id)
    elif user.role != Role.admin:
        raise Forbidden("Orders are listed for their buyer and for admins.")
    if status is not None:
        query = query.where(Order.status == status)
    return query
