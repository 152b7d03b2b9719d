"""Request and response bodies of the accounts endpoints, and the input rules they share with the
service (which re-checks them for callers that bypass HTTP, such as the CLI)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.core.validators import MainlandMobile, RegionCode
from app.models import BuyerType, MerchantRole, Role

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
DISPLAY_NAME_MAX_LENGTH = 100

# local@domain.tld, checked only after the length bound, so the regex never sees more than 254
# characters. Local part: RFC 5322 dot-atom (no quoted strings, no leading/trailing/double dots),
# at most 64 characters. Domain: LDH labels of 1–63 characters not starting or ending with a
# hyphen, at least two of them, the last alphabetic (or an IDNA `xn--` label). Every repetition
# is anchored on a separator, so matching is linear: no catastrophic backtracking.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)"
    rf"@(?P<domain>(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}}))"
)


def normalize_email(value: str) -> str:
    """`value` trimmed and lower-cased if it is a plausible address; ValueError otherwise."""
    email = value.strip()
    if not email or len(email) > EMAIL_MAX_LENGTH:
        raise ValueError(f"an e-mail address has 1–{EMAIL_MAX_LENGTH} characters")
    match = _EMAIL.fullmatch(email)
    if match is None or len(match["local"]) > 64:
        raise ValueError("not an e-mail address of the form local@domain.tld")
    return email.lower()


def check_password(value: str) -> str:
    if not PASSWORD_MIN_LENGTH <= len(value) <= PASSWORD_MAX_LENGTH:
        raise ValueError(f"a password has {PASSWORD_MIN_LENGTH}–{PASSWORD_MAX_LENGTH} characters")
    return value


def normalize_display_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX_LENGTH:
        raise ValueError(f"a display name has 1–{DISPLAY_NAME_MAX_LENGTH} visible characters")
    return name


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=EMAIL_MAX_LENGTH),
    AfterValidator(normalize_email),
    Field(
        description="E-mail address, the login name; stored lower-cased, unique in any case.",
        examples=["li.wei@example.cn"],
    ),
]
Password = Annotated[
    str,
    StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    Field(
        description=f"{PASSWORD_MIN_LENGTH}–{PASSWORD_MAX_LENGTH} characters.",
        json_schema_extra={"format": "password"},
        examples=["correct horse battery"],
    ),
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH),
    Field(
        description=f"1–{DISPLAY_NAME_MAX_LENGTH} characters, surrounding blanks removed.",
        examples=["李伟"],
    ),
]


class RegisterRequest(BaseModel):
    """A buyer's self sign-up."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    display_name: DisplayName
    phone: MainlandMobile | None = None
    region_code: RegionCode


class UserCreate(BaseModel):
    """An account created by an admin: another admin, an official, or an organisation buyer."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    display_name: DisplayName
    role: Role = Field(
        description="`admin`, `official` or `buyer`; merchant members come from onboarding "
        "(`POST /merchants`, `POST /merchants/{id}/members`), so `merchant` is refused (422)."
    )
    buyer_type: BuyerType | None = Field(
        default=None,
        description="Required when `role` is `buyer`; must be absent for `admin` and `official`.",
    )
    region_code: RegionCode
    phone: MainlandMobile | None = None

    @field_validator("role")
    @classmethod
    def _not_merchant(cls, role: Role) -> Role:
        if role == Role.merchant:
            raise ValueError("merchant accounts are created by merchant onboarding")
        return role

    @model_validator(mode="after")
    def _buyer_type_matches_role(self) -> UserCreate:
        if self.role == Role.buyer and self.buyer_type is None:
            raise ValueError("buyer_type is required for a buyer")
        if self.role != Role.buyer and self.buyer_type is not None:
            raise ValueError(f"buyer_type must be absent for an {self.role}")
        return self


class UserUpdate(BaseModel):
    """Fields an admin may change; absent fields stay as they are, `null` is refused."""

    model_config = ConfigDict(extra="forbid")

    buyer_type: BuyerType | SkipJsonSchema[None] = Field(
        default=None,
        description="For a buyer, or a merchant member who kept one, once the organisation is "
        "verified; on anyone else `409 not_a_buyer`.",
    )
    disabled: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="`true` stops the user's tokens at once and refuses sign-in "
        "(`401 account_disabled`); `false` enables it again. An admin cannot disable itself.",
    )
    display_name: DisplayName | SkipJsonSchema[None] = None

    @field_validator("buyer_type", "disabled", "display_name")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields that were sent: omitting a field leaves it alone, `null` is an error.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    phone: str | None = Field(description="E.164, e.g. `+8613800000000`.")
    role: Role
    buyer_type: BuyerType | None
    region_code: str
    merchant_id: uuid.UUID | None
    merchant_role: MerchantRole | None
    disabled: bool
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
