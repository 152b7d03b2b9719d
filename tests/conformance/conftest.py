"""Contract conformance tests: what a client written against the contract checks. The ledger must
balance after each of them, as after every order test."""

from __future__ import annotations

from tests.orders.conftest import ledger_balances

__all__ = ["ledger_balances"]
