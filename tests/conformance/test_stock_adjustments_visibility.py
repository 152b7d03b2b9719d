"""The 404/403 rule on a product's stock adjustments: a buyer or another merchant's member who
sees the product (on sale) is refused with 403; one who cannot see it (not on sale) gets 404."""

from __future__ import annotations

from app.models import ProductStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user

API = "/api/v1"


async def test_who_sees_the_product_gets_403_who_does_not_gets_404(client, app, session):
    merchant, owner = await make_merchant(session)
    _, stranger_owner = await make_merchant(session)
    buyer = await make_user(session, role=Role.buyer)
    on_sale = await make_product(session, merchant)
    hidden = await make_product(session, merchant, status=ProductStatus.pending_review)
    for caller in (buyer, stranger_owner):
        seen = await client.get(
            f"{API}/products/{on_sale.id}/stock-adjustments", headers=auth(app, caller)
        )
        assert seen.status_code == 403, seen.text
        unseen = await client.get(
            f"{API}/products/{hidden.id}/stock-adjustments", headers=auth(app, caller)
        )
        assert unseen.status_code == 404, unseen.text
        assert unseen.json()["code"] == "product_not_found"
    mine = await client.get(
        f"{API}/products/{hidden.id}/stock-adjustments", headers=auth(app, owner)
    )
    assert mine.status_code == 200
