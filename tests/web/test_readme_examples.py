"""The README's first API example works verbatim: its recipe is accepted by the default model
(``Settings().model``) and by ``tiny-random`` (what ``make run`` uses without weights)."""

from __future__ import annotations

import json
import re

import pytest
from web_api_helpers import image_bytes, upload

from shared.platform.settings import Settings
from shared.recipe.parse import default_costs
from tests.conftest import REPO
from web.auth import create_token, create_user
from web.extensions import services


@pytest.fixture
def database_url(sqlite_url, migrated_databases):
    return migrated_databases.sqlite_copy(sqlite_url)


def _first_recipe() -> dict:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## REST API in one minute", 1)[1]
    return json.loads(re.search(r"-F 'recipe=(\{.*\})'", section)[1])


@pytest.mark.parametrize("model", sorted({Settings().model, "tiny-random"}))
def test_the_first_upload_of_the_readme_is_accepted(app_factory, model):
    recipe = _first_recipe()
    assert recipe["edits"] and recipe["preview"]  # the example still shows edits and a cost
    app = app_factory(model=model)
    with services(app).sessions.begin() as session:
        token = create_token(session, create_user(session, "alice"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    created = upload(client, headers, [(image_bytes(), "a.png"), (image_bytes(), "b.png")],
                     recipe=recipe)
    assert created.status_code == 201, created.json
    batch = client.get(f"/api/v1/batches/{created.json['id']}", headers=headers).json
    current = client.get("/api/v1/models/current").json
    assert current["name"] == model
    # The resolution left out is the model's default preview resolution.
    assert batch["recipe"]["preview"] == {"channels": 0.5, "resolution": default_costs(
        current["resolution"])[0].resolution}
