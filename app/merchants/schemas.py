"""Request and response bodies of merchant onboarding."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.accounts.schemas import Email
from app.core.validators import MainlandMobile, RegionCode
from app.models import (
    InvitationStatus,
    Merchant,
    MerchantInvitation,
    MerchantKind,
    MerchantRole,
    MerchantStatus,
    User,
)

MAX_HOUSEHOLDS = 1_000_000


def _text(max_length: int) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Name = Annotated[str, _text(100)]
PersonName = Annotated[str, _text(50)]
Township = Annotated[str, _text(40)]
Address = Annotated[str, _text(200)]
Reason = Annotated[str, _text(500)]

USCC_PATTERN = (
    r"^\s*[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{10}\s*$"
)
ACCOUNT_NO_PATTERN = r"^( *[0-9]){8,34} *$"

Uscc = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(
        description=(
            "Unified social credit code (统一社会信用代码), 18 characters of "
            "`0-9A-HJ-NP-RTUWXY` (no I, O, S, V, Z), the 3rd to 8th digits. Surrounding spaces "
            "are removed and letters upper-cased; a code of another shape, or whose check "
            "character is wrong, is `422 invalid_uscc`. N-prefixed codes of village collectives "
            "are accepted."
        ),
        examples=["91350100M000100Y43"],
        json_schema_extra={"pattern": USCC_PATTERN},
    ),
]


def _account_no(value: str) -> str:
    digits = value.replace(" ", "")
    if not re.fullmatch(r"[0-9]{8,34}", digits):
        raise ValueError("an account number is 8–34 digits (spaces are ignored)")
    return digits


AccountNo = Annotated[
    str,
    StringConstraints(max_length=64, pattern=ACCOUNT_NO_PATTERN),
    AfterValidator(_account_no),
    Field(description="8–34 digits; spaces are ignored.", examples=["6228 4800 0000 0001 234"]),
]
Households = Annotated[int, Field(ge=0, le=MAX_HOUSEHOLDS)]


class LinkedHouseholds(BaseModel):
    """Households linked to the merchant's income (利益联结): counts only, never personal data.
    `poverty_alleviated` (脱贫户) and `monitored` (监测户) are each part of `households`."""

    model_config = ConfigDict(extra="forbid")

    households: Households
    poverty_alleviated: Households
    monitored: Households

    @model_validator(mode="after")
    def _parts_within_total(self) -> Self:
        if self.poverty_alleviated > self.households:
            raise ValueError("poverty_alleviated cannot exceed households")
        if self.monitored > self.households:
            raise ValueError("monitored cannot exceed households")
        return self


class BankAccountIn(BaseModel):
    """The account payouts go to by bank transfer."""

    model_config = ConfigDict(extra="forbid")

    bank_name: Name
    account_name: Name
    account_no: AccountNo


class BankAccountRead(BaseModel):
    """The payout account as it is shown: `account_no` is always masked to its last four
    digits (`****1234`); the full number is never returned by a merchant read."""

    bank_name: str
    account_name: str
    account_no: str = Field(
        description="Masked: `****` and the last four digits.",
        pattern=r"^\*{4}[0-9]{4}$",
        examples=["****1234"],
    )


def mask_account_no(account_no: str) -> str:
    return "****" + account_no[-4:]


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: MerchantKind
    uscc: Uscc
    legal_representative: PersonName
    contact_phone: MainlandMobile
    region_code: RegionCode
    township: Township
    address: Address
    linked_households: LinkedHouseholds
    bank_account: BankAccountIn


class MerchantUpdate(BaseModel):
    """Fields to change; absent fields stay as they are. `linked_households` and `bank_account`
    are replaced whole. An owner may send only `contact_phone`, `address` and `bank_account`."""

    model_config = ConfigDict(extra="forbid")

    name: Name | SkipJsonSchema[None] = None
    kind: MerchantKind | SkipJsonSchema[None] = None
    uscc: Uscc | SkipJsonSchema[None] = None
    legal_representative: PersonName | SkipJsonSchema[None] = None
    contact_phone: MainlandMobile | SkipJsonSchema[None] = None
    region_code: RegionCode | SkipJsonSchema[None] = None
    township: Township | SkipJsonSchema[None] = None
    address: Address | SkipJsonSchema[None] = None
    linked_households: LinkedHouseholds | SkipJsonSchema[None] = None
    bank_account: BankAccountIn | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self


class MerchantPublic(BaseModel):
    """What anyone may see of an approved merchant."""

    id: uuid.UUID
    name: str
    kind: MerchantKind
    uscc: str
    region_code: str
    township: str
    linked_households: LinkedHouseholds
    status: MerchantStatus
    created_at: datetime

    @classmethod
    def from_model(cls, m: Merchant) -> MerchantPublic:
        return cls(
            id=m.id,
            name=m.name,
            kind=m.kind,
            uscc=m.uscc,
            region_code=m.region_code,
            township=m.township,
            linked_households=_households(m),
            status=m.status,
            created_at=m.created_at,
        )


class MerchantRejection(BaseModel):
    """One rejection of the merchant's application, kept when the owner applies again."""

    reason: str = Field(description="The admin's reason, as the owner saw it then.")
    at: datetime
    by: uuid.UUID | None = Field(description="The admin who rejected it.")


class MerchantRead(BaseModel):
    """The whole merchant, for its members and admins; the bank account number is masked."""

    id: uuid.UUID
    name: str
    kind: MerchantKind
    uscc: str
    legal_representative: str
    contact_phone: str
    region_code: str
    township: str
    address: str
    linked_households: LinkedHouseholds
    bank_account: BankAccountRead
    status: MerchantStatus
    status_reason: str | None
    payouts_on_hold: bool = Field(
        description="True after the owner changed the bank account, until an admin verifies it: "
        "no payout reaches the merchant meanwhile."
    )
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    rejections: list[MerchantRejection] = Field(
        default_factory=list,
        description="Every earlier rejection, oldest first: a rejected merchant may correct its "
        "application and resubmit it, and the admin reviewing it again sees why it was refused.",
    )

    @classmethod
    def from_model(
        cls, m: Merchant, rejections: list[MerchantRejection] | None = None
    ) -> MerchantRead:
        return cls(
            id=m.id,
            name=m.name,
            kind=m.kind,
            uscc=m.uscc,
            legal_representative=m.legal_representative,
            contact_phone=m.contact_phone,
            region_code=m.region_code,
            township=m.township,
            address=m.address,
            linked_households=_households(m),
            bank_account=BankAccountRead(
                bank_name=m.bank_name,
                account_name=m.bank_account_name,
                account_no=mask_account_no(m.bank_account_no),
            ),
            status=m.status,
            status_reason=m.status_reason,
            payouts_on_hold=m.payouts_on_hold,
            created_at=m.created_at,
            updated_at=m.updated_at,
            approved_at=m.approved_at,
            rejections=rejections or [],
        )


def _households(m: Merchant) -> LinkedHouseholds:
    # model_construct: stored counts are not re-validated on the way out.
    return LinkedHouseholds.model_construct(
        households=m.households,
        poverty_alleviated=m.poverty_alleviated_households,
        monitored=m.monitored_households,
    )


class EmptyAction(BaseModel):
    """An action without fields: `{}` (a missing body counts as `{}`)."""

    model_config = ConfigDict(extra="forbid")


class ReasonAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="1–500 characters; shown to the merchant's members.")


class MemberCreate(BaseModel):
    """An invitation to join the merchant as staff."""

    model_config = ConfigDict(extra="forbid")

    email: Email = Field(
        description="The e-mail address to invite (case-insensitive); it need not have an "
        "account yet."
    )
    role: Literal["staff"] = Field(
        default="staff", description='Only `"staff"`: a merchant has exactly one owner.'
    )


class InvitationSent(BaseModel):
    """The answer to an invitation: the same whether or not the address has an account, and
    whatever that account is."""

    email: str
    role: Literal["staff"] = "staff"
    expires_at: datetime = Field(description="Until when the invitation can be accepted.")


class InvitationRead(BaseModel):
    """An invitation, as the invited account sees it."""

    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    role: Literal["staff"] = "staff"
    status: Literal["pending", "accepted", "declined", "replaced", "expired"] = Field(
        description="`expired`: still pending past `expires_at`, it can no longer be answered; "
        "`replaced`: the owner invited the address again and the newer invitation counts."
    )
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_model(cls, inv: MerchantInvitation, merchant_name: str, now: datetime) -> Self:
        status = inv.status.value
        if inv.status == InvitationStatus.pending and inv.expires_at <= now:
            status = "expired"
        return cls(
            id=inv.id,
            merchant_id=inv.merchant_id,
            merchant_name=merchant_name,
            status=status,
            created_at=inv.created_at,
            expires_at=inv.expires_at,
            decided_at=inv.decided_at,
        )


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    merchant_role: MerchantRole

    @classmethod
    def from_model(cls, u: User) -> MemberRead:
        assert u.merchant_role is not None
        return cls(
            user_id=u.id, email=u.email, display_name=u.display_name, merchant_role=u.merchant_role
        )
