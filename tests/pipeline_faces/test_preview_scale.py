"""Previews of output "photo" at preview scale (long side at most 1024 px) from a per-item cache;
finals at the photo's full size. Real pipeline in process, tiny-random."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shared.commands.batches import Upload
from shared.items import states
from tests.conftest import batches_for
from tests.pipeline_faces.test_photo_output import RECIPE, _blob, _item, _run, encode
from worker.render import pipeline, preview_photo, store
from worker.render.faces import AlignTransform

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


def _big_photo() -> np.ndarray:
    # The astronaut scaled up to 2400 x 1800 (a photo larger than a preview needs).
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((2400, 1800)))


def test_big_photo_preview_is_downscaled_final_full_size_and_reedit_uses_the_cache(
        runtime, owner, monkeypatch):
    photo = _big_photo()
    (item_id,), report = _run(runtime, owner,
                              [Upload("big.jpg", encode(photo, "JPEG"), "image/jpeg")], RECIPE)
    assert report.completed == [item_id], report.failed
    item, (_, meta) = _item(runtime, item_id)
    assert meta["faces"][0]["transform"]["image_size"] == [2400, 1800]
    preview, ctype = _blob(runtime, item.preview_blob_id)
    assert ctype == "image/jpeg" and preview.shape == (768, 1024, 3)
    # The preview is the photo at that scale outside the face (up to JPEG and resize noise).
    small = np.asarray(Image.fromarray(photo).resize((1024, 768), Image.Resampling.BILINEAR))
    assert np.abs(preview[:, -200:].astype(int) - small[:, -200:].astype(int)).mean() < 6.0

    # A re-edit renders from the cache: the upload is not read again.
    reads = []
    real_read = store.read_upload
    monkeypatch.setattr(store, "read_upload", lambda rt, job: reads.append(job) or real_read(rt, job))
    version = batches_for(runtime).edit_item(owner, item_id, {"smiling": -0.5})
    hits = preview_photo.CACHE.hits
    report = pipeline.run_previews(runtime, [(item_id, version)])
    assert report.completed == [item_id], report.failed
    assert reads == [] and preview_photo.CACHE.hits == hits + 1
    again, _ = _blob(runtime, _item(runtime, item_id)[0].preview_blob_id)
    assert again.shape == (768, 1024, 3) and not np.array_equal(again, preview)

    # The final pastes into the full-size photo.
    with runtime.sessions.begin() as s:
        assert states.request_final(s, item_id)
    report = pipeline.run_finals(runtime, [item_id])
    assert report.completed == [item_id], report.failed
    final, _ = _blob(runtime, _item(runtime, item_id)[0].final_blob_id)
    assert final.shape == photo.shape


def test_scaled_alignment_maps_the_same_face():
    t = AlignTransform(quad=np.array([[100.0, 200.0], [100.0, 600.0], [500.0, 600.0],
                                      [500.0, 200.0]]), size=64, image_size=(2000, 1000))
    scaled = preview_photo.at_preview_scale(np.zeros((1000, 2000, 3), np.uint8), [t])
    assert scaled.photo.shape == (512, 1024, 3)
    (s,) = scaled.transforms
    assert s.image_size == (1024, 512)
    corner = t.to_image(np.array([[0.0, 0.0]]), 64)
    assert np.allclose(s.to_image(np.array([[0.0, 0.0]]), 64), corner * 1024 / 2000)


def test_cache_is_bounded_least_recently_used_out():
    cache = preview_photo.PhotoCache(max_bytes=3 * 300)
    entry = lambda: preview_photo.PreviewPhoto(np.zeros((10, 10, 3), np.uint8), ())  # noqa: E731
    for key in ("a", "b", "c"):
        cache.get((key,), entry)
    cache.get(("a",), entry)  # a is now the most recent
    cache.get(("d",), entry)  # b goes
    assert len(cache) == 3 and cache.size_bytes == 900
    misses = cache.misses
    cache.get(("a",), entry)
    assert cache.misses == misses
    cache.get(("b",), entry)
    assert cache.misses == misses + 1
