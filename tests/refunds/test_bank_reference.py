"""One incoming bank transfer confirms one payment, also when two admins confirm at once; the
admin sees the buyer's reference beside the bank's."""

from __future__ import annotations

import asyncio

from tests.fixtures.factories import auth
from tests.fixtures.orders import (
    API,
    balances_by_account,
    get_order,
    open_payment,
    place,
    place_two_lines,
)


async def _confirm(client, app, admin, payment_id: str, amount: int, reference: str):
    return await client.post(
        f"{API}/payments/{payment_id}/confirm",
        json={"amount_fen": amount, "bank_reference": reference},
        headers=auth(app, admin),
    )


async def test_a_bank_reference_confirms_one_payment(client, app, cast):
    first = await place_two_lines(client, app, cast)
    second = await place(client, app, cast["buyer"], [(cast["p1"], 1)])
    pay1 = await open_payment(client, app, cast["buyer"], first)
    pay2 = await open_payment(client, app, cast["buyer"], second)

    r = await _confirm(client, app, cast["admin"], pay1["payment_id"], 30000, "ICBC-0001")
    assert r.status_code == 200, r.text
    assert (r.json()["reference"], r.json()["bank_reference"]) == (pay1["reference"], "ICBC-0001")

    ledger = await balances_by_account(client, app, cast["admin"])
    r = await _confirm(client, app, cast["admin"], pay2["payment_id"], 4500, "ICBC-0001")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "bank_reference_used"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await get_order(client, app, cast["buyer"], second["id"]))["status"] == (
        "pending_payment"
    )
    assert await balances_by_account(client, app, cast["admin"]) == ledger

    # the admin's view of the order's payment shows both references
    [shown] = (await get_order(client, app, cast["admin"], first["id"]))["payments"]
    assert (shown["reference"], shown["bank_reference"]) == (pay1["reference"], "ICBC-0001")


async def test_two_concurrent_confirmations_with_one_reference(client, app, cast):
    first = await place(client, app, cast["buyer"], [(cast["p1"], 1)])
    second = await place(client, app, cast["buyer"], [(cast["p1"], 2)])
    pay1 = await open_payment(client, app, cast["buyer"], first)
    pay2 = await open_payment(client, app, cast["buyer"], second)
    answers = await asyncio.gather(
        _confirm(client, app, cast["admin"], pay1["payment_id"], 4500, "ABC-RACE"),
        _confirm(client, app, cast["admin"], pay2["payment_id"], 9000, "ABC-RACE"),
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    assert [r.json()["code"] for r in answers if r.status_code == 409] == ["bank_reference_used"]
    statuses = sorted(
        [(await get_order(client, app, cast["buyer"], o["id"]))["status"] for o in (first, second)]
    )
    assert statuses == ["paid", "pending_payment"]
