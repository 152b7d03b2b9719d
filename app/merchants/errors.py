"""Errors of merchant onboarding, each with a fixed status and a stable `code`."""

from __future__ import annotations

from app.core.errors import Conflict, Loc, NotFound, Unprocessable


class MerchantNotFound(NotFound):
    code = "merchant_not_found"


class InvalidUSCC(Unprocessable):
    """422 with the same `errors` list as a validation error, but its own stable code."""

    code = "invalid_uscc"

    def __init__(self, loc: Loc) -> None:
        super().__init__(
            "The unified social credit code is not valid (GB 32100-2015).",
            loc=loc,
            msg="not a valid unified social credit code (统一社会信用代码): check character wrong",
        )


class UsccTaken(Conflict):
    code = "uscc_taken"


class AlreadyMerchant(Conflict):
    code = "already_merchant"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class NotABuyer(Conflict):
    code = "not_a_buyer"


class MemberNotFound(NotFound):
    code = "member_not_found"


class CannotRemoveOwner(Conflict):
    code = "cannot_remove_owner"


class OrdersInProgress(Conflict):
    """A buyer with orders awaiting payment or delivery cannot become a merchant member: a
    merchant member no longer acts as a buyer."""

    code = "orders_in_progress"


class MerchantNotApproved(Conflict):
    """Staff are invited to, and join, an approved merchant only."""

    code = "merchant_not_approved"


class InvitationNotFound(NotFound):
    """No such invitation for the caller: another user's invitation is not found either."""

    code = "invitation_not_found"


class InvitationExpired(Conflict):
    code = "invitation_expired"
