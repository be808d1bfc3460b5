"""The portal shows each item's quality (realism scores, projection, final-vs-preview PSNR) on
the batch and item pages and their JSON, and orders a batch by realism on request."""

from __future__ import annotations

import re

from sqlalchemy import update

from shared.models import Item
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
    data = browser.get(f"/portal/batches/{batch_id}.json?sort=realism").get_json()
    assert [i["id"] for i in data["items"]] == [b, a, c] and data["sort"] == "realism"
    assert data["items"][0]["realism"]["final"] == {"logit": 1.0, "score": 0.7311}
    assert data["items"][2]["quality_text"] == ""
    # An unknown order is upload order (the portal is lenient; the API says 400).
    odd = browser.get(f"/portal/batches/{batch_id}.json?sort=colour").get_json()
    assert [i["id"] for i in odd["items"]] == [a, b, c]

    item_page = browser.get(f"/items/{b}").get_data(as_text=True)
    assert 'id="item-quality"' in item_page and "PSNR 28.2 dB" in item_page
    assert browser.get(f"/portal/items/{b}.json").get_json()["consistency"]["psnr"] == 28.25
