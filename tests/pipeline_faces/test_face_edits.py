"""Per-face edits through the real pipeline (in process, tiny-random, the default detector): a
photo with two faces (skimage's astronaut beside matplotlib's grace_hopper.jpg) and recipe
faces="all" stores both faces' boxes as fractions (item.faces), and an override for one face
(item.face_edits) changes only that face, in previews and in finals."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shared.commands.batches import Upload
from shared.items import states
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item
from tests.conftest import batches_for
from tests.pipeline_faces.test_photo_output import encode, hopper
from worker.render import pipeline
from worker.render.images import decode_rgb
from worker.render.per_face import edits_per_face, face_boxes

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


RECIPE = {"edits": {"smiling": 0.5}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}, "faces": "all", "output": "photo"}
STRONG = {"smiling": 1.0, "young": -1.0, "eyeglasses": 1.0, "blonde_hair": 1.0}


def two_faces() -> np.ndarray:
    """1024 x 512: the astronaut on the left, Grace Hopper (resized to 512 x 512) on the right."""
    a = skimage.data.astronaut()
    g = np.asarray(Image.fromarray(hopper()).resize((a.shape[1], a.shape[0])))
    return np.ascontiguousarray(np.concatenate([a, g], axis=1))


def _item(rt, item_id) -> Item:
    with rt.sessions() as s:
        item = s.get(Item, item_id)
        s.expunge(item)
        return item


def _image(rt, blob_id) -> np.ndarray:
    with rt.sessions() as s:
        return decode_rgb(rt.blobs.get(s, blob_id)[0]).astype(int)


def _pixels(box, shape) -> tuple[slice, slice]:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    return slice(int(y0 * h), int(y1 * h)), slice(int(x0 * w), int(x1 * w))


def _diff(a, b, box) -> float:
    rows, cols = _pixels(box, a.shape)
    return float(np.abs(a[rows, cols] - b[rows, cols]).mean())


def _preview(rt, item_id, version) -> Item:
    report = pipeline.run_previews(rt, [(item_id, version)])
    assert report.completed == [item_id], report.failed
    return _item(rt, item_id)


def _final(rt, item_id) -> np.ndarray:
    with rt.sessions.begin() as s:
        assert states.request_final(s, item_id)
    report = pipeline.run_finals(rt, [item_id])
    assert report.completed == [item_id], report.failed
    return _image(rt, _item(rt, item_id).final_blob_id)


def test_override_changes_only_its_face(runtime, owner):
    photo = two_faces()
    batch_id = batches_for(runtime).create_batch(
        owner, [Upload("two.png", encode(photo), "image/png")], parse_recipe(RECIPE, 64))
    with runtime.sessions() as s:
        item_id = s.query(Item.id).filter(Item.batch_id == batch_id).scalar()
    item = _preview(runtime, item_id, 0)

    # Both faces, as fractions of the photo, one on each half.
    assert len(item.faces) == 2
    for face in item.faces:
        x0, y0, x1, y1 = face["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert all(round(v, 4) == v for v in face["box"])
    left = min(range(2), key=lambda i: item.faces[i]["box"][0])
    right = 1 - left
    assert item.faces[left]["box"][2] < 0.5 < item.faces[right]["box"][0]
    boxes = [f["box"] for f in item.faces]
    before = _image(runtime, item.preview_blob_id)
    assert before.shape == photo.shape

    # An override for the right-hand face: only its region of the preview changes.
    version = batches_for(runtime).edit_item(owner, item_id, STRONG, face=right)
    item = _preview(runtime, item_id, version)
    assert item.face_edits == {str(right): {"31_Smiling": 1.0, "39_Young": -1.0,
                                            "15_Eyeglasses": 1.0, "09_Blond_Hair": 1.0}}
    after = _image(runtime, item.preview_blob_id)
    assert _diff(after, before, boxes[left]) < 0.5
    assert _diff(after, before, boxes[right]) > 1.0
    assert item.faces == [{"box": b} for b in boxes]  # the same faces, from the stored latent

    # The final has the override too: compared with a final without it, only that face differs.
    with_override = _final(runtime, item_id)
    version = batches_for(runtime).edit_item(owner, item_id, {}, face=right)  # the override goes
    assert _item(runtime, item_id).face_edits is None
    _preview(runtime, item_id, version)
    without = _final(runtime, item_id)
    assert with_override.shape == without.shape == photo.shape
    assert _diff(with_override, without, boxes[left]) < 0.5
    assert _diff(with_override, without, boxes[right]) > 1.0


def test_edits_per_face_uses_overrides_where_given():
    edits = {"31_Smiling": 0.5}
    overrides = {"1": {"39_Young": 0.8}, "5": {"15_Eyeglasses": 1.0}}
    assert edits_per_face(edits, overrides, 3) == [edits, {"39_Young": 0.8}, edits]
    assert edits_per_face(edits, None, 2) == [edits, edits]
    assert edits_per_face(edits, overrides, 0) == []


def test_face_boxes_are_fractions_of_the_photo():
    meta = [{"box": [100.0, 50.0, 300.5, 250.0], "photo_size": [1000, 500]},
            {"box": [-5.0, 0.0, 1010.0, 499.0], "photo_size": [1000, 500]}]
    assert face_boxes(meta) == [{"box": [0.1, 0.1, 0.3005, 0.5]},
                                {"box": [0.0, 0.0, 1.0, 0.998]}]
    assert face_boxes([]) is None  # a synthesised item: no photo, no faces
    assert face_boxes([{"box": [1, 2, 3, 4]}]) is None  # an old latent's meta without the size
