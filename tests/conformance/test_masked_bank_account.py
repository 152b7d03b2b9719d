"""A merchant read shows `bank_account: {bank_name, account_name, account_no}` with the number
masked to its last four digits; the full number never leaves the service in a merchant read."""

from __future__ import annotations

from app.models import Role
from tests.conformance.helpers import API
from tests.fixtures.factories import auth, make_user
from tests.fixtures.merchants import application

FULL = "6228480000000009876"


async def test_the_account_number_is_masked_for_owner_and_admin(client, app, session):
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    body = application()
    body["bank_account"]["account_no"] = FULL
    created = await client.post(f"{API}/merchants", json=body, headers=auth(app, buyer))
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    expected = {
        "bank_name": body["bank_account"]["bank_name"],
        "account_name": body["bank_account"]["account_name"],
        "account_no": "****9876",
    }
    assert created.json()["bank_account"] == expected
    for reader in (buyer, admin):
        r = await client.get(f"{API}/merchants/{merchant_id}", headers=auth(app, reader))
        assert r.status_code == 200
        assert r.json()["bank_account"] == expected
        assert FULL not in r.text
    listed = await client.get(f"{API}/merchants", headers=auth(app, admin))
    assert [m["bank_account"] for m in listed.json()["items"]] == [expected]
    assert FULL not in listed.text

    # A change of account by the owner answers masked too.
    r = await client.patch(
        f"{API}/merchants/{merchant_id}",
        json={"bank_account": expected | {"account_no": "6217 0000 1111 2222"}},
        headers=auth(app, buyer),
    )
    assert r.status_code == 200, r.text
    assert r.json()["bank_account"]["account_no"] == "****2222"


def test_the_openapi_document_describes_the_masked_field(app):
    schema = app.openapi()["components"]["schemas"]["BankAccountRead"]
    assert set(schema["required"]) == {"bank_name", "account_name", "account_no"}
    assert "account_no_masked" not in schema["properties"]
    assert schema["properties"]["account_no"]["pattern"] == r"^\*{4}[0-9]{4}$"
