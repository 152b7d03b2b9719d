"""Settings, read from the environment and an optional `.env` file (see the README)."""

from __future__ import annotations

import logging
import secrets
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.money import STRIPE_MAX_CNY_FEN

logger = logging.getLogger("shanhai.config")

TEST_MODE_STRIPE_PREFIXES = ("sk_test_", "rk_test_")


def _split_codes(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [str(value)]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./shanhai.db"
    # A read replica (e.g. PostgreSQL streaming replication) for the public catalogue and the
    # statistics reads; every write and every read that must see the caller's own writes stays
    # on DATABASE_URL. Unset: everything on DATABASE_URL.
    database_replica_url: str | None = None
    # Connections kept per API process (PostgreSQL). A request beyond them waits for one rather
    # than opening and closing a connection of its own (overflow connections churn under load).
    # Keep processes × (size + overflow) under the server's max_connections.
    db_pool_size: int = Field(default=40, ge=1, le=500)
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    # How long a request waits for a free pooled connection, and for a new connection to open,
    # before it is answered `503 database_unavailable`: an outage fails requests fast.
    db_pool_timeout_seconds: float = Field(default=10, gt=0, le=120)
    db_connect_timeout_seconds: float = Field(default=5, gt=0, le=120)
    secret_key: str = ""
    access_token_minutes: float = Field(default=60, gt=0)
    redis_url: str | None = None

    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = Field(default=10, gt=0, le=60)

    # Where buyers send bank transfers (shown in the payment instructions).
    platform_bank_name: str = "中国农业银行淳安县支行"
    platform_bank_account_name: str = "淳安县山海消费帮扶服务有限公司"
    platform_bank_account_no: str = "19-110101-04-000000-1"
    public_base_url: str = "http://127.0.0.1:8000"

    east_region_codes: Annotated[list[str], NoDecode] = ["330127"]
    west_region_codes: Annotated[list[str], NoDecode] = ["513335"]

    payment_timeout_minutes: float = Field(default=30, gt=0)
    auto_complete_days: float = Field(default=10, ge=0)
    refund_window_days: float = Field(default=7, ge=0)
    commission_rate_bps: int = Field(default=0, ge=0, le=10_000)
    # How long an owner's invitation to join its merchant as staff can be accepted.
    invitation_ttl_days: float = Field(default=7, gt=0, le=90)
    # The ceiling of a product price, a line total and an order total, in fen: at most Stripe's
    # limit in CNY (so far below 2**63); beyond it is a 422 at the edge.
    max_order_total_fen: int = Field(default=STRIPE_MAX_CNY_FEN, ge=1, le=STRIPE_MAX_CNY_FEN)
    # The day the jobs settle, Asia/Shanghai: 1 = Monday … 7 = Sunday (ISO weekday).
    settlement_weekday: int = Field(default=1, ge=1, le=7)

    # Login throttling: failures allowed in the window, per account and per client address.
    login_window_seconds: int = Field(default=900, gt=0, le=86_400)
    login_max_failures_per_account: int = Field(default=5, gt=0)
    login_max_failures_per_address: int = Field(default=50, gt=0)
    # The account as a whole is never locked: past its failures, attempts are spaced 1 s, 2 s, …
    # up to this many seconds apart (app.accounts.throttle).
    login_account_max_delay_seconds: float = Field(default=60, gt=0, le=3600)

    # Abuse limits (0 = no limit): open unpaid orders per buyer, checkouts per buyer per hour,
    # sign-ups per client address per hour.
    unpaid_orders_per_buyer: int = Field(default=5, ge=0)
    checkouts_per_hour_per_buyer: int = Field(default=60, ge=0)
    signups_per_hour_per_address: int = Field(default=20, ge=0)

    # How many reverse proxies in front of us may set X-Forwarded-For (0: trust none).
    trusted_proxy_hops: int = Field(default=0, ge=0)
    log_level: str = "INFO"
    # /docs, /redoc and /openapi.json; unset means on, except in production.
    docs_enabled: bool | None = None

    @field_validator("east_region_codes", "west_region_codes", mode="before")
    @classmethod
    def _codes(cls, value: object) -> object:
        return _split_codes(value)

    @field_validator("east_region_codes", "west_region_codes")
    @classmethod
    def _codes_are_divisions(cls, value: list[str]) -> list[str]:
        for code in value:
            if len(code) != 6 or not code.isdigit():
                raise ValueError(f"{code!r} is not a 6-digit division code")
        return value

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        """Production refuses to start on a setting that is only fit for development, naming
        every one at once so the operator fixes them in one go."""
        if self.environment != "production":
            return self
        problems = []
        if self.is_sqlite:
            problems.append(
                "DATABASE_URL is SQLite; production runs on PostgreSQL (postgresql+asyncpg://…)"
            )
        if self.stripe_api_key and self.stripe_api_key.startswith(TEST_MODE_STRIPE_PREFIXES):
            problems.append(
                "STRIPE_API_KEY is a test-mode key (sk_test_…/rk_test_…); use the live key"
            )
        if not self.secret_key:
            problems.append("SECRET_KEY is not set (32 or more random characters)")
        elif len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be at least 32 characters in production")
        if problems:
            raise ValueError("ENVIRONMENT=production refuses to start: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _secret(self) -> Settings:
        if not self.secret_key:
            logger.warning(
                "SECRET_KEY is not set: using a random key, tokens end with this process"
            )
            self.secret_key = secrets.token_urlsafe(48)
        return self

    @property
    def docs_on(self) -> bool:
        """Whether /docs, /redoc and /openapi.json are served: `DOCS_ENABLED` if set, otherwise
        on everywhere but in production."""
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.environment != "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
