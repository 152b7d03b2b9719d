"""Refund tests: the ledger balances after every test (the order tests' check), the two-merchant
cast, and the app with Stripe against localstripe."""

from __future__ import annotations

from tests.orders.conftest import app_with, cast, ledger_balances  # noqa: F401 (fixtures)
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    shop,
    stripe_app,
    stripe_client,
    stripe_settings,
)
