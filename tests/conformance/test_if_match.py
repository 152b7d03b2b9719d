"""`If-Match` is an entity-tag list (RFC 9110 §13.1.1) compared strongly against the product's
ETag `"<version>"`."""

from __future__ import annotations

import pytest

from tests.conformance.helpers import API, problem
from tests.fixtures.catalog import make_cast
from tests.fixtures.factories import auth, make_product


async def _patch(client, app, owner, product, tag):
    return await client.patch(
        f"{API}/products/{product.id}",
        json={"unit": "箱"},
        headers={**auth(app, owner), "If-Match": tag},
    )


@pytest.mark.parametrize("tag", ['"3"', "*", '"2", "3"', '"9" ,"3"', ' "3" '])
async def test_a_matching_entity_tag_applies(client, app, session, tag):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, version=3)
    r = await _patch(client, app, cast.owner, product, tag)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"4"'
    assert r.json()["unit"] == "箱"


@pytest.mark.parametrize(
    "tag",
    ["3", 'W/"3"', '"2"', '"2", "4"', '"2", 3', '"3', "3, *", '*, "3"', "\"'3'\""],
)
async def test_anything_else_is_412_and_changes_nothing(client, app, session, tag):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, version=3)
    problem(await _patch(client, app, cast.owner, product, tag), 412, "precondition_failed")
    r = await client.get(f"{API}/products/{product.id}", headers=auth(app, cast.owner))
    assert r.headers["etag"] == '"3"' and r.json()["unit"] == "kg"
