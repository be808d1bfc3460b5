"""Paste-back: an identity edit leaves the photo untouched outside the face and close inside."""

from __future__ import annotations

import numpy as np
import pytest

from worker.render.faces import Face, align_face, paste_back, select_faces
from worker.render.faces.paste import feather_mask


def inside_quad(aligned, shape) -> np.ndarray:
    """Photo pixels whose centre maps inside the crop square."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    n = aligned.transform.size
    uv = aligned.transform.to_crop(pts)
    ok = (uv >= -0.5).all(axis=1) & (uv <= n - 0.5).all(axis=1)
    return ok.reshape(shape[:2])


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.slow
def test_identity_edit(detector, photo, request):
    image = request.getfixturevalue(photo)
    aligned = align_face(image, select_faces(detector.detect(image))[0], size=1024)
    out = paste_back(image, aligned.image, aligned.transform)
    assert out.shape == image.shape and out.dtype == np.uint8
    inside = inside_quad(aligned, image.shape)
    assert inside.sum() > 1000
    assert (out[~inside] == image[~inside]).all()  # bit-exact outside the quad
    diff = np.abs(out.astype(int) - image)[inside]
    assert diff.mean() < 3.0
    assert np.percentile(diff, 99) < 30


@pytest.mark.slow
def test_preview_sized_crop_pastes_too(detector, grace_hopper):
    aligned = align_face(grace_hopper, select_faces(detector.detect(grace_hopper))[0], size=1024)
    preview = align_face(grace_hopper, aligned.face, size=256).image  # same quad, 256 px
    out = paste_back(grace_hopper, preview, aligned.transform)
    inside = inside_quad(aligned, grace_hopper.shape)
    assert (out[~inside] == grace_hopper[~inside]).all()
    assert np.abs(out.astype(int) - grace_hopper)[inside].mean() < 4.0


def test_an_edit_shows_in_the_middle_and_fades_out(astronaut):
    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    aligned = align_face(astronaut, face, size=256)
    red = np.zeros_like(aligned.image)
    red[..., 0] = 255
    out = paste_back(astronaut, red, aligned.transform)
    centre = aligned.transform.to_image(np.array([[127.5, 127.5]]))[0].round().astype(int)
    assert out[centre[1], centre[0]].tolist() == [255, 0, 0]
    corner = aligned.transform.to_image(np.array([[2.0, 2.0]]))[0].round().astype(int)
    assert (out[corner[1], corner[0]] == astronaut[corner[1], corner[0]]).all()


def test_face_at_the_photo_edge(astronaut):
    # Only the bottom-right quarter of the photo: the quad runs off the top and left edges.
    photo = np.ascontiguousarray(astronaut[90:, 200:])
    face = Face((0, 0, 70, 85), 1.0, (3, 11), (46, 14), (24, 38), (1, 49), (45, 51))
    aligned = align_face(photo, face, size=256)
    out = paste_back(photo, aligned.image, aligned.transform)
    assert out.shape == photo.shape
    inside = inside_quad(aligned, photo.shape)
    assert (out[~inside] == photo[~inside]).all()


def test_feather_mask_shape():
    u = np.linspace(-1.2, 1.2, 241)
    m = feather_mask(u, np.zeros_like(u), feather=0.15, margin=0.04)
    assert m[120] == 1.0  # centre
    assert (m[np.abs(u) >= 0.96] == 0).all()  # nothing at or past the margin
    half = m[120:]
    assert (np.diff(half) <= 0).all()  # fades monotonically outwards


def test_paste_into_a_picture_matches_paste_back_and_leaves_its_source(astronaut):
    """The preview path pastes into a Pillow picture of the cached photo: the same pixels as
    paste_back, and the cached array is never written."""
    from PIL import Image

    from worker.render.faces import paste_into

    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    aligned = align_face(astronaut, face, size=256)
    red = np.zeros_like(aligned.image)
    red[..., 0] = 255
    cached = np.ascontiguousarray(astronaut)
    before = cached.copy()
    picture = Image.fromarray(cached, "RGB")
    paste_into(picture, red, aligned.transform)
    assert (cached == before).all()
    assert (np.asarray(picture) == paste_back(astronaut, red, aligned.transform)).all()
    assert not (np.asarray(picture) == before).all()
