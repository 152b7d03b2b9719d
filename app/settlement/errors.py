"""Errors of settlement."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, Unprocessable


class SettlementNotFound(NotFound):
    code = "settlement_not_found"


class PeriodEndInFuture(Unprocessable):
    code = "period_end_in_future"


class SettlementAlreadyPaid(Conflict):
    code = "settlement_already_paid"


class SettlementNotPayable(Conflict):
    """A carried-forward statement: its negative net is deducted from the next one."""

    code = "settlement_not_payable"


class PayoutsNotEnabled(Conflict):
    code = "payouts_not_enabled"


class PayoutsOnHold(Conflict):
    code = "payouts_on_hold"


class PayoutInProgress(Conflict):
    """A Stripe transfer was asked for and its outcome is unknown: only a Stripe retry (same
    idempotency key) may finish it, so it can never be paid twice."""

    code = "payout_in_progress"
