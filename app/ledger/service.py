"""Posting to the ledger and reading balances.

Every movement of money is one call to `post`: entries that sum to zero, inserted in the caller's
transaction, never updated. Balances are sums of entries, so they are provable from the rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import LedgerAccount, LedgerEntry, LedgerKind

_entries = cast(Table, LedgerEntry.__table__)  # Core inserts: no ORM bulk machinery per posting


@dataclass(frozen=True, slots=True)
class Leg:
    account: LedgerAccount
    amount_fen: int
    merchant_id: uuid.UUID | None = None
    merchant_order_id: uuid.UUID | None = None


class UnbalancedPosting(Exception):
    """A bug, never a client error: a posting whose legs do not sum to zero."""


async def post(
    session: AsyncSession,
    kind: LedgerKind,
    legs: list[Leg],
    *,
    order_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert one balanced transaction; zero legs are dropped. Returns its `txn_id`."""
    legs = [leg for leg in legs if leg.amount_fen != 0]
    if sum(leg.amount_fen for leg in legs) != 0:
        raise UnbalancedPosting(f"{kind}: legs sum to {sum(leg.amount_fen for leg in legs)}")
    txn_id = uuid.uuid4()
    if legs:
        await session.execute(
            insert(_entries),
            [
                {
                    "txn_id": txn_id,
                    "kind": kind,
                    "account": leg.account,
                    "merchant_id": leg.merchant_id,
                    "merchant_order_id": leg.merchant_order_id,
                    "amount_fen": leg.amount_fen,
                    "order_id": order_id,
                    "payment_id": payment_id,
                    "refund_id": refund_id,
                }
                for leg in legs
            ],
        )
    return txn_id


@dataclass(frozen=True, slots=True)
class Balance:
    account: LedgerAccount
    merchant_id: uuid.UUID | None
    balance_fen: int


async def balances(session: AsyncSession) -> list[Balance]:
    """Every account's balance (merchant payables per merchant), zero balances included."""
    rows = await session.execute(
        select(LedgerEntry.account, LedgerEntry.merchant_id, func.sum(LedgerEntry.amount_fen))
        .group_by(LedgerEntry.account, LedgerEntry.merchant_id)
        .order_by(LedgerEntry.account, LedgerEntry.merchant_id)
    )
    return [
        Balance(LedgerAccount(account), merchant_id, int(total))
        for account, merchant_id, total in rows
    ]
