"""The OpenAPI document tells the truth: schemathesis generates requests for every operation from
`/openapi.json` and sends each, in-process (ASGI), as anonymous, buyer, merchant owner, official
and admin. No answer may be a server error, and every answer's status code, content type and body
must be the ones the document describes for that operation.

Random ids mostly answer 404 (or 403/409): that is fine as long as the document says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from app.models import MerchantStatus, Role
from tests.conftest import clean_and_dispose
from tests.fixtures.factories import make_merchant, make_product, make_user, token_for
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET, FakeConnect

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 12


async def _cast(app: FastAPI, database_url: str) -> dict[str, str | None]:
    """One account per role (and a product on sale); the Authorization header of each."""
    engine = create_engine(database_url, for_writes=False)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            merchant, owner = await make_merchant(session, status=MerchantStatus.approved)
            await make_product(session, merchant)
            buyer = await make_user(session)
            official = await make_user(session, role=Role.official)
            admin = await make_user(session, role=Role.admin)
            await session.commit()
    finally:
        await engine.dispose()
    roles: dict[str, str | None] = {"anonymous": None}
    for name, user in (
        ("buyer", buyer),
        ("owner", owner),
        ("official", official),
        ("admin", admin),
    ):
        roles[name] = f"Bearer {token_for(app, user)}"
    return roles


@pytest.fixture(scope="module")
def conformance(
    database_url: str,
    localstripe: LocalStripe,
) -> Iterator[tuple[FastAPI, dict[str, str | None]]]:
    app = create_app(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            database_url=database_url,
            secret_key="test-secret-key-that-is-long-enough-0123456789",
            stripe_api_key=API_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            stripe_api_base=localstripe.url,
            stripe_timeout_seconds=2,
        )
    )
    # Stripe Connect (payout accounts), which localstripe lacks: the recording gateway.
    app.state.stripe = FakeConnect(localstripe.url)
    roles = asyncio.run(_cast(app, database_url))
    try:
        yield app, roles
    finally:
        # The app's connections live on schemathesis's event loop: end its lifespan there (it
        # disposes of the engine), then empty the tables from this thread with a new engine.
        asgi.shutdown_lifespans()
        asyncio.run(clean_and_dispose(app))


def _run_operation(operation, roles: dict[str, str | None], failures: list[str]) -> None:
    """Send bounded generated examples of one operation as every role; collect failures."""

    # Valid requests and invalid ones (which must be refused with a documented 4xx, never a 5xx).
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        for name, authorization in roles.items():
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
            if authorization is not None:
                case.headers["Authorization"] = authorization
            try:
                case.call_and_validate(checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} as {name}: {exc}\n  {case.as_curl_command()}")
                if len(failures) > 400:
                    raise

    run()


def test_every_operation_as_every_role(conformance) -> None:
    app, roles = conformance
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        _run_operation(operation, roles, failures)
    assert not failures, "\n\n".join(failures)
