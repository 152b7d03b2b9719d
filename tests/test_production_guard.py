"""ENVIRONMENT=production refuses settings fit only for development, `seed-demo` refuses to run
there, and the API documentation can be turned off (and is off by default in production)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.cli import main
from app.core.config import Settings, get_settings
from app.main import create_app

PG = "postgresql+asyncpg://shanhai@127.0.0.1:1/shanhai"  # never reached
SECRET = "production-secret-key-0123456789-abcdefghij"


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": PG,
        "secret_key": SECRET,
        "stripe_api_key": "sk_live_0123456789",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        ({"database_url": "sqlite+aiosqlite:///./shanhai.db"}, "DATABASE_URL is SQLite"),
        ({"stripe_api_key": "sk_test_abc"}, "STRIPE_API_KEY is a test-mode key"),
        ({"stripe_api_key": "rk_test_abc"}, "STRIPE_API_KEY is a test-mode key"),
        ({"secret_key": ""}, "SECRET_KEY is not set"),
        ({"secret_key": "short"}, "at least 32 characters"),
    ],
)
def test_production_refuses_development_settings(overrides: dict[str, Any], hint: str) -> None:
    with pytest.raises(ValidationError) as exc:
        production(**overrides)
    assert "ENVIRONMENT=production refuses to start" in str(exc.value)
    assert hint in str(exc.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as exc:
        production(database_url="sqlite:///x.db", stripe_api_key="sk_test_1", secret_key="")
    text = str(exc.value)
    assert "SQLite" in text and "test-mode" in text and "SECRET_KEY" in text


def test_the_same_settings_are_fine_outside_production() -> None:
    s = production(
        environment="development", database_url="sqlite:///x.db", stripe_api_key="sk_test_1"
    )
    assert s.is_sqlite and s.docs_on
    assert production().environment == "production"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    get_settings.cache_clear()
    try:
        yield monkeypatch
    finally:
        get_settings.cache_clear()


def test_the_app_and_the_command_refuse_to_start_on_sqlite(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "prod.db"
    env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    with pytest.raises(ValidationError, match="refuses to start"):
        create_app()
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "ENVIRONMENT=production refuses to start" in err and "SQLite" in err
    assert not db.exists()


def test_seed_demo_refuses_to_run_in_production(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DATABASE_URL", PG)
    assert main(["seed-demo"]) == 2
    assert "seed-demo refuses to run when ENVIRONMENT=production" in capsys.readouterr().err


async def _docs_status(settings: Settings) -> list[int]:
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return [(await c.get(p)).status_code for p in ("/docs", "/redoc", "/openapi.json")]
    finally:
        await app.state.db.dispose()


async def test_docs_on_by_default_and_off_by_setting(settings: Settings) -> None:
    assert await _docs_status(settings) == [200, 200, 200]
    off = settings.model_copy(update={"docs_enabled": False})
    assert await _docs_status(off) == [404, 404, 404]


async def test_docs_off_by_default_in_production() -> None:
    assert await _docs_status(production()) == [404, 404, 404]
    assert await _docs_status(production(docs_enabled=True)) == [200, 200, 200]
