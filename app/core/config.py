"""Settings, read from the environment and an optional `.env` file (API.md, "Running it")."""

from __future__ import annotations

import logging
import secrets
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger("shanhai.config")


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
    # Connections kept per API process (PostgreSQL). A request beyond them waits for one rather
    # than opening and closing a connection of its own (overflow connections churn under load).
    # Keep processes × (size + overflow) under the server's max_connections.
    db_pool_size: int = Field(default=40, ge=1, le=500)
    db_max_overflow: int = Field(default=0, ge=0, le=500)
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
    # The day the jobs settle, Asia/Shanghai: 1 = Monday … 7 = Sunday (ISO weekday).
    settlement_weekday: int = Field(default=1, ge=1, le=7)

    # Login throttling: failures allowed in the window, per account and per client address.
    login_window_seconds: int = Field(default=900, gt=0)
    login_max_failures_per_account: int = Field(default=5, gt=0)
    login_max_failures_per_address: int = Field(default=50, gt=0)

    # How many reverse proxies in front of us may set X-Forwarded-For (0: trust none).
    trusted_proxy_hops: int = Field(default=0, ge=0)
    log_level: str = "INFO"

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
    def _secret(self) -> Settings:
        if not self.secret_key:
            if self.environment == "production":
                raise ValueError("SECRET_KEY is required when ENVIRONMENT=production")
            logger.warning(
                "SECRET_KEY is not set: using a random key, tokens end with this process"
            )
            self.secret_key = secrets.token_urlsafe(48)
        elif self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
