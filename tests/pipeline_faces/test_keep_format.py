"""Recipe ``keep_format`` through the real pipeline (in process, tiny-random): a photo's final is
written in its upload's format (JPEG, PNG, WebP; anything else as PNG) for both outputs, the
previews stay JPEG/PNG, and without it (or for a synthesised item) finals are what they were."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shared.commands.batches import Upload
from shared.commands.synthesis import SynthesisRequest, create_synthesis_batch
from shared.items import states
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item, WorkerHeartbeat
from tests.conftest import batches_for
from worker.render import pipeline
from worker.render.images import decode_rgb

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


RECIPE = {"edits": {"smiling": 0.8}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}
PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def _photo() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:, 40:])  # 472 wide, 512 high


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=fmt)
    return out.getvalue()


def _uploads(photo, formats) -> list[Upload]:
    return [Upload(f"p{i}.{fmt.lower()}", _encode(photo, fmt), f"image/{fmt.lower()}")
            for i, fmt in enumerate(formats)]


def _items(rt, batch_id) -> list[Item]:
    with rt.sessions() as s:
        return s.query(Item).filter(Item.batch_id == batch_id).order_by(Item.position).all()


def _render(rt, batch_id) -> list[Item]:
    """Previews, then finals, of every item of the batch; the items afterwards."""
    pairs = [(i.id, i.edit_version) for i in _items(rt, batch_id)]
    report = pipeline.run_previews(rt, pairs)
    assert sorted(report.completed) == sorted(i for i, _ in pairs), report.failed
    with rt.sessions.begin() as s:
        assert all(states.request_final(s, i) for i, _ in pairs)
    report = pipeline.run_finals(rt, [i for i, _ in pairs])
    assert sorted(report.completed) == sorted(i for i, _ in pairs), report.failed
    return _items(rt, batch_id)


def _blob(rt, blob_id) -> tuple[bytes, str]:
    with rt.sessions() as s:
        return rt.blobs.get(s, blob_id)


def _really(data: bytes, content_type: str) -> None:
    """The bytes are what the content type says (Pillow reads them as that format)."""
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == PIL_FORMATS[content_type]


def test_photo_finals_keep_the_upload_format(runtime, owner):
    photo = _photo()
    uploads = _uploads(photo, ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
    recipe = parse_recipe({**RECIPE, "keep_format": True}, 64)
    items = _render(runtime, batches_for(runtime).create_batch(owner, uploads, recipe))
    finals = [_blob(runtime, i.final_blob_id) for i in items]
    assert [t for _, t in finals] == ["image/png", "image/jpeg", "image/webp", "image/png",
                                      "image/png"]
    for data, content_type in finals:
        _really(data, content_type)
        assert decode_rgb(data).shape == photo.shape  # the whole photo, face pasted back
    # Previews stay as they are (JPEG at preview scale): the format is only the final's.
    assert {_blob(runtime, i.preview_blob_id)[1] for i in items} == {"image/jpeg"}
    # Lossless in, lossless out: outside the face the PNG final is the photo, exactly.
    png_final = decode_rgb(finals[0][0])
    assert (png_final == photo).mean() > 0.5


def test_crop_finals_keep_the_upload_format_too(runtime, owner):
    uploads = _uploads(_photo(), ["JPEG", "PNG", "GIF"])
    recipe = parse_recipe({**RECIPE, "output": "crop", "keep_format": True}, 64)
    items = _render(runtime, batches_for(runtime).create_batch(owner, uploads, recipe))
    finals = [_blob(runtime, i.final_blob_id) for i in items]
    assert [t for _, t in finals] == ["image/jpeg", "image/png", "image/png"]
    for data, content_type in finals:
        _really(data, content_type)
        assert decode_rgb(data).shape == (64, 64, 3)
    assert {_blob(runtime, i.preview_blob_id)[1] for i in items} == {"image/png"}


def test_without_keep_format_finals_are_jpeg_photos_and_png_crops(runtime, owner):
    uploads = _uploads(_photo(), ["PNG", "WEBP"])
    photo_batch = batches_for(runtime).create_batch(owner, uploads, parse_recipe(RECIPE, 64))
    crop_batch = batches_for(runtime).create_batch(owner, _uploads(_photo(), ["JPEG"]),
                                           parse_recipe({**RECIPE, "output": "crop"}, 64))
    photos = _render(runtime, photo_batch)
    crops = _render(runtime, crop_batch)
    assert [_blob(runtime, i.final_blob_id)[1] for i in photos] == ["image/jpeg", "image/jpeg"]
    assert [_blob(runtime, i.final_blob_id)[1] for i in crops] == ["image/png"]


def test_keep_format_does_nothing_for_synthesised_items(runtime, owner):
    with runtime.sessions.begin() as s:
        s.add(WorkerHeartbeat(name=runtime.worker_name, queues="preview,final",
                              model_name="tiny-random", pretrained=False, device="cpu"))
    recipe = parse_recipe({**RECIPE, "output": "crop", "keep_format": True}, 64)
    request = SynthesisRequest(seeds=(7,), truncation=0.7, mix_seed=None, mix_from_slot=None,
                               model="tiny-random", recipe=recipe, picked=False)
    (item,) = _render(runtime, create_synthesis_batch(batches_for(runtime), owner, request))
    data, content_type = _blob(runtime, item.final_blob_id)
    assert content_type == "image/png"
    _really(data, content_type)
