"""Photos of a model with an imported e4e / pSp encoder are encoded by it (the item says
``projection.method`` = ``e4e``), and a final's refinement starts from that encoder's code
(``e4e+refine``): the pipeline in-process on tiny-random with a random-weight e4e encoder."""

from __future__ import annotations

import copy

import torch

from shared.commands.batches import Upload
from shared.recipe.parse import parse_recipe
from shared.store.tables import User
from tests.conftest import batches_for, pipeline_runtime
from tests.worker.conftest import items_of
from worker.anycost.style_encoder import StyleEncoder
from worker.render import pipeline

RECIPE = {"output": "crop", "edits": {"smiling": 0.5}, "refine_steps": 2,
          "preview": {"channels": 0.5, "resolution": 32}, "final": {"channels": 1.0, "resolution": 64}}


def test_an_imported_encoder_projects_photos_and_refinement_starts_from_its_code(
        sqlite_url, worker_redis_url, tiny_bundle, tiny_weights_dir, photos):
    g = tiny_bundle.generator
    torch.manual_seed(0)
    bundle = copy.copy(tiny_bundle)
    bundle.encoder = StyleEncoder("e4e", n_style=g.n_style, style_dim=g.style_dim).eval()
    assert bundle.encoder_method == "e4e"
    with pipeline_runtime(sqlite_url, worker_redis_url, bundle, tiny_weights_dir, "e4e:1") as rt:
        with rt.sessions.begin() as session:
            user = User(username="e4e-owner")
            session.add(user)
            session.flush()
            owner = user.id
        batches = batches_for(rt)
        batch_id = batches.create_batch(owner, [Upload("a.png", photos[0], "image/png")],
                                        parse_recipe(RECIPE, 64))
        (item,) = items_of(rt, batch_id)
        assert not pipeline.run_previews(rt, [(item.id, 0)]).failed
        (item,) = items_of(rt, batch_id)
        assert item.status == "preview_ready"
        assert item.projection["method"] == "e4e" and item.projection["error"] >= 0

        assert batches.finalize_batch(owner, batch_id) == 1
        assert not pipeline.run_finals(rt, [item.id]).failed
        (item,) = items_of(rt, batch_id)
        assert item.status == "done"
        assert item.projection["method"] == "e4e+refine"
        assert item.projection["refine_steps"] == 2
