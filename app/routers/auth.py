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
    login_throttle_lifespan,
)
from app.core.db import Session, get_database

router = APIRouter(tags=["auth"], lifespan=login_throttle_lifespan)


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
    responses={409: {"description": "`email_taken`: an account already uses this e-mail."}},
)
async def register(data: RegisterRequest, session: Session) -> UserRead:
    """Sign up as a buyer.

    The account is an `individual` buyer; an admin sets another `buyer_type` once an organisation
    is verified. The e-mail address is stored lower-cased and must be unused whatever its case
    (`409 email_taken`); `phone`, if given, is a mainland mobile number stored as E.164 (`+86…`).
    Sign in afterwards with `POST /auth/token`.
    """
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
    and per client address over a sliding window shared by every API process; past the limit
    (5 per account, 50 per address, per 15 minutes by default) the answer is
    `429 too_many_attempts` with `Retry-After` (seconds until the oldest counted failure leaves the
    window), whatever the password. A successful sign-in clears the account's count.
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
