"""The portal shows each item's quality (realism scores, projection, final-vs-preview PSNR) on
the batch and item pages and their JSON, and orders a batch by realism on request."""

from __future__ import annotations

import re

from sqlalchemy import update

from shared.store.tables import Item
from tests.portal.test_portal import create_batch, item_ids
from web.extensions import services


def _set(app, item_id: str, **values) -> None:
    with services(app).sessions.begin() as session:
        session.execute(update(Item).where(Item.id == item_id).values(**values))


def test_batch_and_item_pages_show_quality_and_sort_by_realism(app, browser):
    browser.sign_in("alice")
    browser.get("/batches/new")
    batch_id = create_batch(browser, names=("a.png", "b.png", "c.png"))
    a, b, c = item_ids(app, batch_id)
    _set(app, a, preview_realism=-2.0)
    _set(app, b, preview_realism=0.0, final_realism=1.0,
         projection={"method": "encoder+refine", "error": 0.01234, "resolution": 64},
         consistency={"psnr": 28.25, "lpips": 0.1234, "resolution": 32})

    page = browser.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Realism preview 0.12" in page  # sigmoid(-2)
    assert ("Realism preview 0.50, final 0.73 · Projected by encoder+refine, error 0.0123 · "
            "Final vs preview PSNR 28.2 dB, LPIPS 0.123") in page
    order = re.findall(r'id="item-([0-9a-f]{32})"', page)
    assert order == [a, b, c]

    ranked = browser.get(f"/batches/{batch_id}?sort=realism").get_data(as_text=True)
    assert re.findall(r'id="item-([0-9a-f]{32})"', ranked) == [b, a, c]
    assert "sort=realism" in ranked  # the page polls the same order
    assert f'data-json-url="/api/v1/batches/{batch_id}?sort=realism"' in ranked
    data = browser.get(f"/api/v1/batches/{batch_id}?sort=realism").get_json()
    assert [i["id"] for i in data["items"]] == [b, a, c]
    assert data["items"][0]["realism"]["final"] == {"logit": 1.0, "score": 0.7311}
    # An unknown order is upload order on the page (lenient), and the page polls upload order.
    odd = browser.get(f"/batches/{batch_id}?sort=colour").get_data(as_text=True)
    assert re.findall(r'id="item-([0-9a-f]{32})"', odd) == [a, b, c]
    assert f'data-json-url="/api/v1/batches/{batch_id}?sort=position"' in odd

    item_page = browser.get(f"/items/{b}").get_data(as_text=True)
    assert 'id="item-quality"' in item_page and "PSNR 28.2 dB" in item_page
    assert browser.get(f"/api/v1/items/{b}").get_json()["consistency"]["psnr"] == 28.25
