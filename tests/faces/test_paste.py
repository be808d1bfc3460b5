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


def test_paste_into_a_copy_matches_paste_back_and_leaves_its_source(astronaut):
    """The preview path pastes into a copy of the cached photo's rows: the same pixels as
    paste_back, and the cached array is never written."""
    from worker.render.faces import paste_into

    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    aligned = align_face(astronaut, face, size=256)
    red = np.zeros_like(aligned.image)
    red[..., 0] = 255
    cached = np.ascontiguousarray(astronaut)
    before = cached.copy()
    picture = cached.copy()
    paste_into(picture, red, aligned.transform)
    assert (cached == before).all()
    assert (picture == paste_back(astronaut, red, aligned.transform)).all()
    assert not (picture == before).all()


def test_the_blend_is_within_one_level_of_the_exact_feathered_mix(astronaut):
    """Each pixel of the region is face * m + photo * (1 - m) for the feathered mask m, to one
    level: the warp and the two weighted terms are each rounded."""
    from worker.render.faces import paste as paste_module

    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    aligned = align_face(astronaut, face, size=256)
    grey = np.full_like(aligned.image, 200)  # flat: the warp is exact inside the crop
    out = paste_back(astronaut, grey, aligned.transform).astype(int)
    x0, y0, x1, y1 = paste_module.paste_region(aligned.transform, 512, 512)
    to_crop = aligned.transform.image_to_crop(256) @ np.array(
        [[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    weights = paste_module._build_blend_weights(to_crop.tobytes(), y1 - y0, x1 - x0, 256, 0.15,
                                                0.04)
    m = weights.face.astype(float) / 255
    exact = 200 * m + astronaut[y0:y1, x0:x1] * (1 - m)
    assert np.abs(out[y0:y1, x0:x1] - exact).max() <= 1.0
    assert (m == 1).any() and ((m > 0) & (m < 1)).any()  # both the face and the fade are there


def test_a_photo_that_is_not_rgb_bytes_is_refused(astronaut):
    from worker.render.faces import paste_into

    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    aligned = align_face(astronaut, face, size=256)
    with pytest.raises(ValueError, match="uint8"):
        paste_into(astronaut.astype(np.float32), aligned.image, aligned.transform)
