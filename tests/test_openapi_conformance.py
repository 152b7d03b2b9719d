"""The OpenAPI document tells the truth: schemathesis generates requests for every operation from
`/openapi.json` and sends each, in-process (ASGI), as anonymous, buyer, merchant owner, official
and admin. No answer may be a server error, and every answer's status code, content type and body
must be the ones the document describes for that operation.

Random ids only reach the 404s, so the fuzzing is given a world of real resources (the
permissions matrix's: a merchant, its product, a paid order with a refund, a settled order, a
statement, an invitation): half of the generated cases have their path ids, product ids and line
ids replaced by real ones, so that checkout, payment, refunds, shipping, onboarding and settlement
are fuzzed past their rejection paths; and each operation is also sent once as the matrix declares
a valid call, for every role. At least 90 % of the operations must answer 2xx at least once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
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
from tests.conformance.helpers import API
from tests.conformance.test_permissions_matrix import ROUTES
from tests.conformance.world import World, build_world
from tests.conftest import clean_and_dispose
from tests.fixtures.catalog import product_body
from tests.fixtures.factories import PASSWORD
from tests.fixtures.localstripe import LocalStripe
from tests.fixtures.merchants import application
from tests.fixtures.orders import ADDRESS, idem
from tests.fixtures.stripe import API_KEY, WEBHOOK_SECRET, FakeConnect, event, sign_payload

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 12


ROLES = ("anonymous", "buyer", "owner", "official", "admin")
# Where a generated path parameter may be given a real id: the world's ids it can stand for.
REAL_IDS = {
    "order_id": ("order_id", "done_order_id"),
    "merchant_order_id": ("merchant_order_id", "done_merchant_order_id"),
    "user_id": ("buyer_id", "other_buyer_id", "staff_id"),
}
MIN_SHARE_2XX = 0.9
REASON = {"reason": "资料不全"}
ENABLED = {"payouts_enabled": True}


async def _world(settings: Settings) -> World:
    """The matrix's world, built through a second app on the same database (whose connections
    end with this event loop; the app under test runs on schemathesis's)."""
    builder = create_app(settings)
    engine = create_engine(settings.database_url, for_writes=False)
    transport = httpx.ASGITransport(app=builder, client=("203.0.113.9", 50000))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            AsyncSession(engine, expire_on_commit=False) as session,
        ):
            return await build_world(client, builder, session)
    finally:
        await engine.dispose()
        await builder.state.db.dispose()


@dataclass
class Tally:
    """What the run found: failures, and the operations that answered 2xx at least once."""

    failures: list[str] = field(default_factory=list)
    succeeded: set[str] = field(default_factory=set)
    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def send(self, case: schemathesis.Case, label: str, role: str) -> Any:
        """The response, checked against the document (None when it fails a check)."""
        try:
            response = case.call_and_validate(checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:
            self.failures.append(f"{label} as {role}: {exc}\n  {case.as_curl_command()}")
            if len(self.failures) > 400:
                raise
            return None
        if 200 <= response.status_code < 300:
            self.succeeded.add(label)
        else:
            code = response.json().get("code") if response.status_code >= 400 else ""
            self.answers[label][f"{response.status_code} {code}"] += 1
        return response


def _with_role(case: schemathesis.Case, world: World, role: str) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = headers | world.auth(role)


def _real(value: Any, world: World, pick: int) -> Any:
    """`value` with every product id and order line id in it replaced by a real one."""
    if isinstance(value, dict):
        out = {k: _real(v, world, pick) for k, v in value.items()}
        if "product_id" in out:
            out["product_id"] = world.ids["product_id"]
        if "order_line_id" in out:
            lines = [line["id"] for mo in world.order["merchant_orders"] for line in mo["lines"]]
            out["order_line_id"] = lines[pick % len(lines)]
        return out
    if isinstance(value, list):
        return [_real(v, world, pick) for v in value]
    return value


def _use_real_ids(case: schemathesis.Case, world: World, pick: int) -> None:
    for name in list(case.path_parameters or {}):
        choices = REAL_IDS.get(name, (name,))
        key = choices[pick % len(choices)]
        if key in world.ids:
            case.path_parameters[name] = world.ids[key]
    if not isinstance(case.body, NotSet):
        case.body = _real(case.body, world, pick)


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
    world = asyncio.run(_world(app.state.settings))
    try:
        yield app, world
    finally:
        # The app's connections live on schemathesis's event loop: end its lifespan there (it
        # disposes of the engine), then empty the tables from this thread with a new engine.
        asgi.shutdown_lifespans()
        asyncio.run(clean_and_dispose(app))


def _run_operation(operation, world: World, tally: Tally) -> None:
    """Send bounded generated examples of one operation as every role, half of them with real
    ids; then the matrix's valid call of it as every role."""

    # Valid requests and invalid ones (which must be refused with a documented 4xx, never a 5xx).
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy, real=st.booleans(), pick=st.integers(0, 5))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case, real: bool, pick: int) -> None:
        if real:
            _use_real_ids(case, world, pick)
        for role in ROLES:
            _with_role(case, world, role)
            tally.send(case, operation.label, role)

    run()
    _send_declared(operation, world, tally)


def _send_declared(operation, world: World, tally: Tally) -> None:
    """The call the permissions matrix makes of this operation (real ids, a valid body), as
    every role, checked against the document like any generated case."""
    route = ROUTES[operation.label]
    names = re.findall(r"{(\w+)}", operation.path)
    for role in ROLES:
        body = route.body(world, role) if callable(route.body) else route.body
        case = operation.Case(
            path_parameters={n: world.ids[route.ids.get(n, n)] for n in names},
            query=dict(route.params or {}),
            headers=idem() if route.idempotent else {},
            **({"body": body, "media_type": "application/json"} if body is not None else {}),
        )
        _with_role(case, world, role)
        tally.send(case, operation.label, role)


class Journey:
    """Valid calls in the order a marketplace lives them, each checked against the document and
    required to succeed: what the fuzzing alone cannot reach (a pending merchant to approve, a
    paid order to ship, a requested refund to approve, a statement to pay)."""

    def __init__(self, operations: dict[str, Any], world: World, tally: Tally) -> None:
        self.operations, self.world, self.tally = operations, world, tally

    def call(
        self,
        label: str,
        caller: str,
        *,
        path: dict[str, str] | None = None,
        body: Any = None,
        form: dict[str, str] | None = None,
        idempotent: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """`caller` is a role of the world or a bearer token."""
        operation = self.operations[f"{label.split(' ', 1)[0]} {API}{label.split(' ', 1)[1]}"]
        if caller in self.world.users or caller == "anonymous":
            headers = (headers or {}) | self.world.auth(caller)
        else:
            headers = (headers or {}) | {"Authorization": f"Bearer {caller}"}
        if form is not None:
            content = {"body": form, "media_type": "application/x-www-form-urlencoded"}
        elif body is not None:
            content = {"body": body, "media_type": "application/json"}
        else:
            content = {}
        case = operation.Case(
            path_parameters=path or {},
            headers=headers | (idem() if idempotent else {}),
            **content,
        )
        response = self.tally.send(case, operation.label, "journey")
        assert response is not None and 200 <= response.status_code < 300, (
            f"{operation.label}: {response.status_code if response else 'failed'} "
            f"{response.text if response else self.tally.failures[-1]}"
        )
        return dict(response.json()) if response.content else {}

    def sign_up(self) -> str:
        """A new buyer's access token."""
        account = {
            "email": f"fuzz-{uuid.uuid4().hex[:10]}@example.cn",
            "password": PASSWORD,
            "display_name": "新买家",
            "region_code": "330127",
        }
        self.call("POST /auth/register", "anonymous", body=account)
        form = {"username": account["email"], "password": PASSWORD}
        return str(self.call("POST /auth/token", "anonymous", form=form)["access_token"])


def _live_through(journey: Journey, connect: FakeConnect) -> None:
    world, ids = journey.world, journey.world.ids
    # Onboarding: apply, rejected, resubmitted, approved.
    applicant = journey.sign_up()
    merchant = {"merchant_id": journey.call("POST /merchants", applicant, body=application())["id"]}
    journey.call("POST /merchants/{merchant_id}/reject", "admin", path=merchant, body=REASON)
    journey.call("POST /merchants/{merchant_id}/resubmit", applicant, path=merchant)
    journey.call("POST /merchants/{merchant_id}/approve", "admin", path=merchant)
    # Catalogue review: rejected, edited (back to review), approved; off and on sale.
    product = {"product_id": journey.call("POST /products", "owner", body=product_body())["id"]}
    journey.call("POST /products/{product_id}/reject", "admin", path=product, body=REASON)
    journey.call("PATCH /products/{product_id}", "owner", path=product, body={"unit": "箱"})
    journey.call("POST /products/{product_id}/approve", "admin", path=product)
    journey.call("POST /products/{product_id}/deactivate", "owner", path=product)
    journey.call("POST /products/{product_id}/activate", "owner", path=product)
    # Checkout, bank payment, shipping, receipt; a refund rejected, another paid back by bank.
    lines = {"lines": [{"product_id": ids["product_id"], "quantity": 2}]}
    body = {**lines, "shipping_address": ADDRESS, "payment_method": "bank_transfer"}
    order = journey.call("POST /orders", "buyer", body=body, idempotent=True)
    at = {"order_id": order["id"]}
    payment = journey.call("POST /orders/{order_id}/payments", "buyer", path=at, idempotent=True)
    journey.call(
        "POST /payments/{payment_id}/confirm",
        "admin",
        path={"payment_id": payment["payment_id"]},
        body={"amount_fen": order["total_fen"], "bank_reference": f"REF-{uuid.uuid4().hex[:12]}"},
    )
    part = {"merchant_order_id": order["merchant_orders"][0]["id"]}
    shipped = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    journey.call("POST /merchant-orders/{merchant_order_id}/ship", "owner", path=part, body=shipped)
    journey.call("POST /merchant-orders/{merchant_order_id}/confirm-receipt", "buyer", path=part)
    line = order["merchant_orders"][0]["lines"][0]["id"]
    asked = {"lines": [{"order_line_id": line, "quantity": 1}], "reason": "包装破损"}
    for verdict in ("reject", "approve"):
        refund = {
            "refund_id": journey.call(
                "POST /orders/{order_id}/refunds", "buyer", path=at, body=asked, idempotent=True
            )["id"]
        }
        verdict_body = REASON if verdict == "reject" else None
        journey.call(
            f"POST /refunds/{{refund_id}}/{verdict}", "owner", path=refund, body=verdict_body
        )
    reference = {"bank_reference": f"REF-{uuid.uuid4().hex[:12]}"}
    journey.call("POST /refunds/{refund_id}/mark-paid", "admin", path=refund, body=reference)
    # Staff: one invitation accepted, one declined.
    mine = {"merchant_id": ids["merchant_id"]}
    for answer in ("accept", "decline"):
        invitee = journey.sign_up()
        email = journey.call("GET /me", invitee)["email"]
        invite = {"email": email, "role": "staff"}
        journey.call("POST /merchants/{merchant_id}/members", "owner", path=mine, body=invite)
        (invitation,) = journey.call("GET /me/invitations", invitee)["items"]
        path = {"invitation_id": invitation["id"]}
        journey.call(f"POST /invitations/{{invitation_id}}/{answer}", invitee, path=path)
    # Settlement: the statement paid by a Stripe transfer once the merchant can take payouts.
    journey.call("POST /merchants/{merchant_id}/payout-account", "owner", path=mine)
    for account in list(connect.accounts):  # Stripe tells us by a signed webhook
        connect.set_payouts_enabled(account, True)
        updated = event("account.updated", {"id": account, "object": "account"} | ENABLED)
        payload = json.dumps(updated).encode()
        signature = sign_payload(payload.decode(), WEBHOOK_SECRET, int(time.time()))
        headers = {"Stripe-Signature": signature}
        journey.call("POST /webhooks/stripe", "anonymous", body=payload, headers=headers)
    statement = {"settlement_id": ids["settlement_id"]}
    journey.call("POST /settlements/{settlement_id}/payout", "admin", path=statement)
    assert world.users


def test_every_operation_as_every_role(conformance) -> None:
    app, world = conformance
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    _live_through(Journey({op.label: op for op in operations}, world, tally), app.state.stripe)
    for operation in operations:
        _run_operation(operation, world, tally)
    assert not tally.failures, "\n\n".join(tally.failures)
    missing = sorted({op.label for op in operations} - tally.succeeded)
    share = 1 - len(missing) / len(operations)
    never = "\n".join(f"{op}: {dict(tally.answers[op].most_common(4))}" for op in missing)
    assert share >= MIN_SHARE_2XX, f"2xx on {share:.0%} of the operations; never on:\n{never}"
