"""Output "photo" through the real pipeline (in process, tiny-random): the edited face pasted
back into the original photo at its size, every face with recipe faces="all", no_face refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shared.commands.batches import Upload
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item, Latent
from tests.conftest import batches_for
from worker.render import pipeline
from worker.render.images import decode_rgb

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


def encode(rgb: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=fmt, **kw)
    return out.getvalue()


def hopper() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


RECIPE = {"edits": {"smiling": 0.8}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


def _run(rt, owner, uploads, recipe):
    batch_id = batches_for(rt).create_batch(owner, uploads, parse_recipe(recipe, 64))
    with rt.sessions() as s:
        items = s.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position).all()
    pairs = [(i.id, i.edit_version) for i in items]
    report = pipeline.run_previews(rt, pairs)
    return [i for i, _ in pairs], report


def _blob(rt, blob_id):
    with rt.sessions() as s:
        data, content_type = rt.blobs.get(s, blob_id)
    return decode_rgb(data), content_type


def _item(rt, item_id):
    with rt.sessions() as s:
        item = s.get(Item, item_id)
        latent = s.get(Latent, item_id)
        return item, (list(latent.shape), latent.meta) if latent else None


def test_photo_output_preview_and_final_keep_size(runtime, owner):
    photo = skimage.data.astronaut()  # 512 x 512
    photo = np.ascontiguousarray(photo[:, 40:])  # not square: 472 wide, 512 high
    (item_id,), report = _run(runtime, owner, [Upload("a.jpg", encode(photo, "JPEG"), "image/jpeg")],
                              RECIPE)
    assert report.completed == [item_id], report.failed
    item, (shape, meta) = _item(runtime, item_id)
    assert shape[0] == 1 and len(meta["faces"]) == 1
    transform = meta["faces"][0]["transform"]
    assert transform["image_size"] == [472, 512] and transform["size"] == 64
    preview, ctype = _blob(runtime, item.preview_blob_id)
    assert ctype == "image/jpeg" and preview.shape == photo.shape
    projected, ctype = _blob(runtime, item.projected_blob_id)
    assert ctype == "image/png" and projected.shape == (32, 32, 3)
    # Outside the face's quad the photo is untouched (up to JPEG noise).
    quad = np.asarray(transform["quad"])
    x1 = int(quad[:, 0].max()) + 2
    if x1 < 472 - 20:
        diff = np.abs(preview[:, x1 + 8:].astype(int) - photo[:, x1 + 8:].astype(int)).mean()
        assert diff < 4.0

    with runtime.sessions.begin() as s:
        from shared.items import states
        assert states.request_final(s, item_id)
    report = pipeline.run_finals(runtime, [item_id])
    assert report.completed == [item_id], report.failed
    item, _ = _item(runtime, item_id)
    final, ctype = _blob(runtime, item.final_blob_id)
    assert ctype == "image/jpeg" and final.shape == photo.shape
    assert not np.array_equal(final, preview)


def test_all_faces_two_transforms(runtime, owner):
    a = skimage.data.astronaut()
    g = np.asarray(Image.fromarray(hopper()).resize((a.shape[1], a.shape[0])))
    both = np.ascontiguousarray(np.concatenate([a, g], axis=1))  # 1024 x 512, two faces
    (item_id,), report = _run(runtime, owner, [Upload("two.png", encode(both), "image/png")],
                              {**RECIPE, "faces": "all"})
    assert report.completed == [item_id], report.failed
    item, (shape, meta) = _item(runtime, item_id)
    assert shape[0] == 2 and len(meta["faces"]) == 2
    centres = sorted(np.asarray(f["transform"]["quad"])[:, 0].mean() for f in meta["faces"])
    assert centres[0] < 512 < centres[1]  # one face on each half
    preview, _ = _blob(runtime, item.preview_blob_id)
    assert preview.shape == both.shape
    # Both halves changed where their face is.
    for lo in (0, 512):
        half = slice(lo, lo + 512)
        assert np.abs(preview[:, half].astype(int) - both[:, half].astype(int)).mean() > 1.0


def test_largest_face_only_by_default(runtime, owner):
    a = skimage.data.astronaut()
    small = np.asarray(Image.fromarray(hopper()).resize((256, 300)))
    canvas = np.full((512, 800, 3), 128, np.uint8)
    canvas[:, :512] = a
    canvas[100:400, 530:786] = small
    (item_id,), report = _run(runtime, owner, [Upload("c.png", encode(canvas), "image/png")],
                              RECIPE)
    assert report.completed == [item_id], report.failed
    _, (shape, meta) = _item(runtime, item_id)
    assert shape[0] == 1 and np.asarray(meta["faces"][0]["transform"]["quad"])[:, 0].mean() < 512


def test_no_face_fails_with_code(runtime, owner):
    (item_id,), report = _run(runtime, owner,
                              [Upload("coffee.png", encode(skimage.data.coffee()), "image/png")],
                              RECIPE)
    assert report.failed == {item_id: "no_face"}
    item, latent = _item(runtime, item_id)
    assert item.status == "failed" and item.error_code == "no_face" and latent is None


def test_final_with_refinement_records_errors(runtime, owner):
    photo = skimage.data.astronaut()
    (item_id,), report = _run(runtime, owner, [Upload("a.png", encode(photo), "image/png")],
                              {**RECIPE, "refine_steps": 3})
    assert report.completed == [item_id], report.failed
    with runtime.sessions.begin() as s:
        from shared.items import states
        assert states.request_final(s, item_id)
    report = pipeline.run_finals(runtime, [item_id])
    assert report.completed == [item_id], report.failed
    item, (shape, meta) = _item(runtime, item_id)
    info = meta["refine"]
    assert info["steps"] == 3 and info["loss"] in ("lpips_alex", "mse+l1_down4")
    assert info["error_after"] <= info["error_before"]
    assert item.timings["refine"] > 0
    assert item.timings["refine_error_after"] <= item.timings["refine_error_before"]
    final, _ = _blob(runtime, item.final_blob_id)
    assert final.shape == photo.shape
