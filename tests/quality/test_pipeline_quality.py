"""Quality through the real pipeline (in process, tiny-random on SQLite): realism of previews
and finals from a discriminator, how each face was projected and at what error (encoder,
encoder+refine, optimisation from w_avg without an encoder), and a final's consistency with the
last preview."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shared.commands.batches import Upload
from shared.items import states
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item
from tests.conftest import batches_for
from tests.quality.conftest import with_parts
from worker.render import pipeline, quality
from worker.render.images import decode_rgb, from_uint8

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


CROP = {"output": "crop", "preview": {"channels": 0.5, "resolution": 32},
        "final": {"channels": 1.0, "resolution": 64}}


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def real_photos() -> list[Upload]:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = f.read()
    return [Upload("astronaut.png", _png(skimage.data.astronaut()), "image/png"),
            Upload("grace_hopper.jpg", hopper, "image/jpeg")]


def _previews(rt, owner, recipe, uploads=None) -> list[str]:
    batch_id = batches_for(rt).create_batch(owner, uploads or real_photos(), parse_recipe(recipe, 64))
    with rt.sessions() as s:
        items = s.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position).all()
        pairs = [(i.id, i.edit_version) for i in items]
    report = pipeline.run_previews(rt, pairs)
    assert sorted(report.completed) == sorted(i for i, _ in pairs), report.failed
    return [i for i, _ in pairs]


def _finals(rt, ids: list[str]) -> None:
    with rt.sessions.begin() as s:
        for item_id in ids:
            assert states.request_final(s, item_id)
    report = pipeline.run_finals(rt, ids)
    assert sorted(report.completed) == sorted(ids), report.failed


def _load(rt, item_id):
    with rt.sessions() as s:
        item = s.get(Item, item_id)
        s.expunge(item)
        return item


def _image(rt, blob_id) -> torch.Tensor:
    with rt.sessions() as s:
        data, _ = rt.blobs.get(s, blob_id)
    return from_uint8(decode_rgb(data))


def test_previews_and_finals_carry_realism_and_consistency(make_runtime, user_id, judged_bundle):
    rt = make_runtime(judged_bundle)
    d = judged_bundle.discriminator
    ids = _previews(rt, user_id, {**CROP, "edits": {"smiling": 0.6}})
    previews = {}
    for item_id in ids:
        item = _load(rt, item_id)
        assert item.preview_realism is not None and item.final_realism is None
        # The logit is D's on the stored preview (8-bit PNG, 32 px scored at D's 64 px).
        previews[item_id] = _image(rt, item.preview_blob_id)
        assert quality.realism_logits(d, previews[item_id])[0] == pytest.approx(
            item.preview_realism, abs=0.05)
        assert item.projection["method"] == "encoder" and item.projection["resolution"] == 32
        assert 0 < item.projection["error"] < 2
        assert item.timings["realism_preview"] > 0
    assert len({_load(rt, i).preview_realism for i in ids}) == 2  # two photos, two scores

    _finals(rt, ids)
    for item_id in ids:
        item = _load(rt, item_id)
        final = _image(rt, item.final_blob_id)
        assert quality.realism_logits(d, final)[0] == pytest.approx(item.final_realism, abs=0.05)
        c = item.consistency
        assert c["resolution"] == 32 and (c["lpips"] is None or c["lpips"] >= 0)
        # Recomputed from the stored images: the final (64 px, full channels) downsampled
        # against the stored 32 px preview.
        assert c["psnr"] == pytest.approx(quality.psnr(quality.resize(final, 32),
                                                       previews[item_id]), abs=0.5)
        assert 5 < c["psnr"] < quality.PSNR_IDENTICAL
        assert item.projection["method"] == "encoder"  # no refine steps in this recipe

    # New edits: a new preview, and the old final's measures are gone with it.
    with rt.sessions.begin() as s:
        assert states.request_edit(s, ids[0], {"31_Smiling": -0.5}).version == 1
    item = _load(rt, ids[0])
    assert item.final_realism is None and item.consistency is None


def test_refined_final_is_encoder_plus_refine(make_runtime, user_id, judged_bundle):
    rt = make_runtime(judged_bundle, realism="finals")  # ANYCOST_REALISM=finals
    (item_id,) = _previews(rt, user_id, {**CROP, "refine_steps": 3},
                           [real_photos()[0]])
    before = _load(rt, item_id).projection
    assert _load(rt, item_id).preview_realism is None  # previews are not scored
    _finals(rt, [item_id])
    item = _load(rt, item_id)
    assert item.final_realism is not None
    p = item.projection
    assert p["method"] == "encoder+refine" and p["refine_steps"] == 3
    assert p["error"] <= p["error_before_refine"] and before["method"] == "encoder"
    # Refinement moved the final away from the preview the user saw, and PSNR says by how much.
    assert 5 < item.consistency["psnr"] < quality.PSNR_IDENTICAL


class BrokenDiscriminator(torch.nn.Module):
    """Fails on every image: a measure that breaks must not cost the item its result."""

    def __init__(self):
        super().__init__()
        self.resolution = 64
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        raise RuntimeError("broken discriminator")


def test_failing_discriminator_keeps_the_results(make_runtime, user_id, tiny_bundle):
    rt = make_runtime(with_parts(tiny_bundle, discriminator=BrokenDiscriminator()))
    (item_id,) = _previews(rt, user_id, CROP, [real_photos()[1]])
    _finals(rt, [item_id])
    item = _load(rt, item_id)
    assert item.status == "done" and item.final_blob_id is not None
    assert item.preview_realism is None and item.final_realism is None
    assert item.consistency["psnr"] > 5 and item.projection["method"] == "encoder"


def test_encoderless_config_projects_real_photos_by_optimisation(make_runtime, user_id,
                                                                 judged_bundle):
    bundle = with_parts(judged_bundle, encoder=None, directions=None)
    rt = make_runtime(bundle, projection_steps=6, projection_method="wplus")  # the W+ fit
    ids = _previews(rt, user_id, CROP, [real_photos()[1]])  # both photos: the e2e test
    for item_id in ids:
        item = _load(rt, item_id)
        p = item.projection
        assert p["method"] == "optimisation" and p["steps"] == 6 and p["resolution"] == 64
        assert p["error"] < p["error_start"]  # better than the average face it started from
        assert item.timings["project"] > 0 and item.timings["project_per_step"] > 0
        assert item.preview_realism is not None
        assert _image(rt, item.projected_blob_id).shape == (1, 3, 32, 32)
    _finals(rt, ids)
    for item_id in ids:
        item = _load(rt, item_id)
        assert item.final_realism is not None and item.consistency["psnr"] > 5
        assert item.projection["method"] == "optimisation"


def test_projection_stops_at_its_time_limit(make_runtime, user_id, tiny_bundle):
    # Far more steps than the limit allows: the photo is still projected, after one step.
    bundle = with_parts(tiny_bundle, encoder=None, directions=None, discriminator=None)
    rt = make_runtime(bundle, projection_steps=10_000, projection_max_seconds=0.001,
                      projection_method="wplus")
    (item_id,) = _previews(rt, user_id, CROP, [real_photos()[0]])
    p = _load(rt, item_id).projection
    assert p["method"] == "optimisation" and p["steps"] == 1 and p["stopped_early"] is True
    assert p["error"] <= p["error_start"]
