"""Errors of the accounts domain: sign-up, sign-in, throttling and user management.

Every one is an `AccountError`, so the CLI (`shanhai create-user`) can catch them all and print
`detail` and `code`; over HTTP the shared handler renders them as problem+json.
"""

from __future__ import annotations

from typing import Any

from app.core.errors import AppError, Forbidden, Unprocessable
from app.models import Role


def refuse_official(role: Role) -> None:
    """Officials read and export statistics and set targets; anything else is 403 (API.md,
    roles), even where another caller who may not see the resource would get 404."""
    if role == Role.official:
        raise Forbidden("Officials read and export statistics and set targets; nothing else.")


class AccountError(AppError):
    """Base of every accounts error."""

    status = 400
    code = "account_error"


class InvalidAccountData(AccountError, Unprocessable):
    """Input that the HTTP schemas already refuse, re-checked for callers that bypass them (CLI).

    Rendered like a validation error: 422 with `errors: [{loc, msg, type}]`.
    """

    status = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"{field}: {message}", loc=("body", field), msg=message, error_type="value_error"
        )
        self.field = field


class EmailTaken(AccountError):
    status = 409
    code = "email_taken"

    def __init__(self) -> None:
        super().__init__("An account with this e-mail address already exists.")


class _SignInError(AccountError):
    """401s of `POST /auth/token`, with the `WWW-Authenticate` challenge RFC 9110 asks for."""

    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(_SignInError):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("The e-mail address or the password is wrong.")


class AccountDisabled(_SignInError):
    code = "account_disabled"

    def __init__(self) -> None:
        super().__init__("This account is disabled; contact the platform operator.")


class TooManyAttempts(AccountError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        extra: dict[str, Any] = {"retry_after": retry_after}
        super().__init__(
            f"Too many failed sign-in attempts; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            extra=extra,
        )


class ThrottleUnavailable(AccountError):
    """The shared failure counter (Redis or the database) did not answer: refuse rather than let
    sign-in attempts through uncounted."""

    status = 503
    code = "sign_in_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Sign-in is temporarily unavailable; try again shortly.", headers={"Retry-After": "5"}
        )


class UserNotFound(AccountError):
    status = 404
    code = "user_not_found"

    def __init__(self) -> None:
        super().__init__("No such user.")


class NotABuyer(AccountError):
    status = 409
    code = "not_a_buyer"

    def __init__(self) -> None:
        super().__init__(
            "Only buyers, and merchant members who kept their buyer type, have a buyer type."
        )


class CannotDisableSelf(AccountError):
    status = 409
    code = "cannot_disable_self"

    def __init__(self) -> None:
        super().__init__("An admin cannot disable its own account.")
