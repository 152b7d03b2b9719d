"""HTTP endpoints: sign-up, sign-in and the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.accounts import service
from app.accounts.deps import CurrentUser
from app.accounts.schemas import (
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    RegisterRequest,
    Token,
    UserRead,
)
from app.accounts.throttle import (
    LoginThrottle,
    client_address,
    get_login_throttle,
    get_rate_limiter,
    rate_limiter_lifespan,
)
from app.core.db import Session, get_database
from app.core.ratelimit import RateLimiter

router = APIRouter(tags=["auth"], lifespan=rate_limiter_lifespan)


class PasswordForm(OAuth2PasswordRequestForm):
    """The OAuth2 password grant form, with every field bounded."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$", max_length=8)] = None,
        username: Annotated[
            str, Form(max_length=EMAIL_MAX_LENGTH, description="The account's e-mail address.")
        ],
        password: Annotated[
            str, Form(max_length=PASSWORD_MAX_LENGTH, json_schema_extra={"format": "password"})
        ],
        scope: Annotated[str, Form(max_length=200, description="Ignored.")] = "",
        client_id: Annotated[str | None, Form(max_length=200, description="Ignored.")] = None,
        client_secret: Annotated[
            str | None,
            Form(max_length=200, json_schema_extra={"format": "password"}, description="Ignored."),
        ] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserRead,
    responses={
        409: {"description": "`email_taken`: an account already uses this e-mail."},
        429: {"description": "`rate_limited`; `Retry-After` says when to try again."},
    },
)
async def register(
    data: RegisterRequest,
    session: Session,
    request: Request,
    limiter: Annotated[RateLimiter, Depends(get_rate_limiter)],
) -> UserRead:
    """Sign up as a buyer.

    The account is an `individual` buyer; an admin sets another `buyer_type` once an organisation
    is verified. The e-mail address is stored lower-cased and must be unused whatever its case
    (`409 email_taken`); `phone`, if given, is a mainland mobile number stored as E.164 (`+86…`).
    Sign in afterwards with `POST /auth/token`.

    Every sign-up attempt (refused ones included) counts against the client address:
    more than `SIGNUPS_PER_HOUR_PER_ADDRESS` (20 by default) in an hour is `429 rate_limited` with
    `Retry-After`, the seconds until that hour ends.
    """
    settings = request.app.state.settings
    await service.count_signup(
        limiter, settings, client_address(request, settings.trusted_proxy_hops)
    )
    user = await service.register_buyer(session, data)
    return UserRead.model_validate(user)


@router.post(
    "/auth/token",
    response_model=Token,
    responses={
        401: {"description": "`invalid_credentials`, or `account_disabled`."},
        429: {"description": "`too_many_attempts`; `Retry-After` says when to try again."},
        503: {"description": "`sign_in_unavailable`: the failure counter did not answer."},
    },
)
async def token(
    form: Annotated[PasswordForm, Depends()],
    request: Request,
    response: Response,
    throttle: Annotated[LoginThrottle, Depends(get_login_throttle)],
) -> Token:
    """Exchange e-mail (`username`) and password for a bearer token (OAuth2 password grant, form
    encoded).

    A wrong e-mail and a wrong password get the same `401 invalid_credentials`; a disabled account
    with the right password gets `401 account_disabled`. Failed attempts are counted per account
    before the password is checked, shared by every API process: 5 failures of one account from
    one address, or 50 from one address, in 15 minutes (by default) close them until that window
    ends; the account as a whole is never locked, but past 5 failures from anywhere its attempts
    are spaced 1 s, 2 s, 4 s … up to 60 s apart. A refused attempt is `429 too_many_attempts` with
    `Retry-After` (the exact seconds until it would be counted again), whatever the password. A
    right password does not count as a failure.
    `scope`, `client_id` and `client_secret` are accepted and ignored.
    """
    settings = request.app.state.settings
    result = await service.issue_token(
        get_database(request),
        throttle,
        settings,
        email=form.username,
        password=form.password,
        address=client_address(request, settings.trusted_proxy_hops),
    )
    response.headers["Cache-Control"] = "no-store"
    return result


@router.get("/me", response_model=UserRead, tags=["users"])
async def me(user: CurrentUser) -> UserRead:
    """The signed-in caller's account.

    401 without a token or with an invalid, expired or disabled user's one: the account is re-read
    on every request, so disabling it takes effect at once.
    """
    return UserRead.model_validate(user)
