"""Checkout's abuse limits: `CHECKOUTS_PER_HOUR_PER_BUYER` and `UNPAID_ORDERS_PER_BUYER`.

Both run inside the order's own transaction, at the cost of one extra round trip:

1. `count_checkout` counts the checkout on the buyer's `rate_limits` row (one prebuilt upsert).
   Over the hourly limit it is `429 rate_limited`. On PostgreSQL the upsert also locks that row
   until the order commits or rolls back, so one buyer's checkouts pass this point one at a time
   (other buyers are not held up). A checkout that fails rolls its count back: what is counted is
   orders placed.
2. `next_number` takes the order number and, in the same statement, counts the buyer's open
   unpaid orders. Its snapshot is taken after the lock above, so it sees every order of this buyer
   committed before; a buyer already holding `UNPAID_ORDERS_PER_BUYER` is refused with
   `409 too_many_unpaid_orders`. SQLite serialises writers anyway.

With both limits at 0 neither runs and checkout costs what it did.

On PostgreSQL checkout folds both into its own statements (`app.orders.service`): the counter's
upsert into the statement that reserves the stock (it runs, and takes the buyer's lock, before
any product is locked), the unpaid count into the later statement that writes the order, whose
snapshot is taken after that lock. `Counter` and `refuse_unpaid` hold the rules for both ways.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, select

from app.core.config import Settings
from app.core.ratelimit import Hit, RateLimited, hit_in_transaction, hit_of, now_ms
from app.core.sql import next_serial
from app.core.statements import Statements
from app.models import Order, OrderStatus
from app.orders.errors import TooManyUnpaidOrders

HOUR = 3600
# Counted but never refused, when only the unpaid-orders limit is on (the row lock is needed).
_NO_LIMIT = 2**31 - 1

_NUMBER = next_serial("order_number_seq", cast(Table, Order.__table__).c.number)
_NEXT_NUMBER = select(_NUMBER)
_UNPAID = (
    select(func.count())
    .select_from(Order)
    .where(Order.buyer_id == bindparam("buyer_id"), Order.status == OrderStatus.pending_payment)
    .scalar_subquery()
)
_NUMBER_AND_UNPAID = select(_NUMBER.label("number"), _UNPAID.label("unpaid"))
_UNPAID_ONLY = select(_UNPAID.label("unpaid"))


def _limited(settings: Settings) -> bool:
    return settings.unpaid_orders_per_buyer > 0 or settings.checkouts_per_hour_per_buyer > 0


@dataclass(frozen=True, slots=True)
class Counter:
    """The buyer's checkout counter: whether it is counted, its key, limit and clock."""

    counted: bool
    key: str
    limit: int
    now: int

    @classmethod
    def of(cls, buyer_id: uuid.UUID, settings: Settings) -> Counter:
        limit = settings.checkouts_per_hour_per_buyer or _NO_LIMIT
        return cls(_limited(settings), f"checkout:{buyer_id}", limit, now_ms())

    @property
    def cutoff(self) -> int:
        return self.now - HOUR * 1000

    def judge_row(self, hits: int, window_start_ms: int) -> None:
        """`judge` the counter as an upsert like `HIT` left it."""
        self.judge(hit_of(self.key, self.limit, HOUR, self.now, hits, window_start_ms))

    def judge(self, hit: Hit) -> None:
        """`RateLimited` (429) over `CHECKOUTS_PER_HOUR_PER_BUYER`."""
        if not hit.allowed:
            raise RateLimited(
                f"At most {self.limit} checkouts an hour; this buyer has reached it.",
                hit.retry_after,
            )


async def count_checkout(db: Statements, buyer_id: uuid.UUID, settings: Settings) -> None:
    """Count this checkout for the buyer (and lock the buyer's counter); `RateLimited` (429) over
    `CHECKOUTS_PER_HOUR_PER_BUYER`. Nothing to do with both limits off."""
    counter = Counter.of(buyer_id, settings)
    if not counter.counted:
        return
    counter.judge(await hit_in_transaction(db, counter.key, counter.limit, HOUR, counter.now))


def refuse_unpaid(unpaid: int, settings: Settings) -> None:
    """`TooManyUnpaidOrders` (409) when the buyer already holds `UNPAID_ORDERS_PER_BUYER` open
    unpaid orders (no limit at 0)."""
    limit = settings.unpaid_orders_per_buyer
    if limit and unpaid >= limit:
        raise TooManyUnpaidOrders(
            f"This buyer already has {limit} unpaid orders; pay or cancel one first.",
            extra={"limit": limit},
        )


async def check_unpaid(db: Statements, buyer_id: uuid.UUID, settings: Settings) -> None:
    """`refuse_unpaid` on a count of its own (one statement; none with the limit off)."""
    if settings.unpaid_orders_per_buyer:
        refuse_unpaid(int(await db.scalar(_UNPAID_ONLY, {"buyer_id": buyer_id})), settings)


async def next_number(db: Statements, buyer_id: uuid.UUID, settings: Settings) -> int:
    """The order's number; `TooManyUnpaidOrders` (409) when the buyer already holds
    `UNPAID_ORDERS_PER_BUYER` open unpaid orders. One statement either way."""
    limit = settings.unpaid_orders_per_buyer
    if limit == 0:
        return int(await db.scalar(_NEXT_NUMBER))
    row = await db.first(_NUMBER_AND_UNPAID, {"buyer_id": buyer_id})
    assert row is not None
    refuse_unpaid(int(row["unpaid"]), settings)
    return int(row["number"])
