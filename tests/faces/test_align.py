"""FFHQ alignment: the recipe's geometry, an exact transform, and crops that do not depend on how
the photo was turned, scaled, framed or tagged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worker.render.faces import AlignTransform, Face, align_face, ffhq_quad, select_faces
from worker.render.faces.align import render_quad
from worker.render.imaging import decode_image


def fake_face(eye_left, eye_right, mouth_left, mouth_right) -> Face:
    nose = ((eye_left[0] + eye_right[0]) / 2, (eye_left[1] + mouth_left[1]) / 2)
    return Face((0.0, 0.0, 1.0, 1.0), 1.0, eye_left, eye_right, nose, mouth_left, mouth_right)


def test_quad_of_a_symmetric_face_follows_the_recipe():
    # Eyes 60 apart, mouth 70 below: s = max(2 * 60, 1.8 * 70) = 126, centre 7 below the eyes.
    quad = ffhq_quad((100, 200), (160, 200), (110, 270), (150, 270))
    centre = np.array([130.0, 207.0])
    expected = centre + np.array([[-126, -126], [-126, 126], [126, 126], [126, -126]])
    assert np.allclose(quad, expected)


def test_quad_turns_with_the_face():
    quad = ffhq_quad((0, 0), (0, 60), (-70, 10), (-70, 50))  # a face lying on its right side
    tl, _, _, tr = quad
    assert np.isclose(np.degrees(np.arctan2(*(tr - tl)[::-1])), 90.0)


def centroid_near(image: np.ndarray, point: np.ndarray, radius: int = 10) -> np.ndarray:
    x0, y0 = int(point[0]) - radius, int(point[1]) - radius
    window = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1, 0].astype(float) - 60
    window = np.clip(window, 0, None)
    ys, xs = np.mgrid[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


@pytest.mark.parametrize(
    "case",
    [
        # photo (h, w), eyes and mouth corners, markers; 1: plain; 2: a face far larger than the
        # output (the shrink step); 3: a face in the corner (the quad runs off the photo: padding)
        ((600, 800), ((380, 300), (440, 290), (385, 360), (432, 352)), [(400, 320), (450, 370)]),
        ((3000, 4000), ((1500, 1500), (2100, 1480), (1550, 2100), (2050, 2090)), [(1800, 1700)]),
        ((400, 500), ((30, 40), (90, 38), (35, 100), (85, 98)), [(60, 80), (120, 130)]),
    ],
    ids=["plain", "shrink", "padded"],
)
def test_transform_is_exact(case):
    (h, w), (el, er, ml, mr), markers = case
    photo = np.full((h, w, 3), 60, np.uint8)
    for x, y in markers:
        photo[y - 2 : y + 3, x - 2 : x + 3] = 255
    aligned = align_face(photo, fake_face(el, er, ml, mr), size=256)
    for marker in np.array(markers, float):
        where = aligned.transform.to_crop(marker[None])[0]
        assert np.abs(centroid_near(aligned.image, where) - where).max() < 0.1
        assert np.allclose(aligned.transform.to_image(where[None])[0], marker)


def test_transform_maps_crop_corners_to_the_quad_at_any_size():
    quad = ffhq_quad((380, 300), (440, 290), (385, 360), (432, 352))
    t = AlignTransform(quad=quad, size=1024, image_size=(800, 600))
    for n in (1024, 256):
        corners = np.array([[-0.5, -0.5], [-0.5, n - 0.5], [n - 0.5, n - 0.5], [n - 0.5, -0.5]])
        assert np.allclose(t.to_image(corners, size=n), quad)
        assert np.allclose(t.crop_to_image(n) @ t.image_to_crop(n), np.eye(3))
    again = AlignTransform.from_dict(t.to_dict())
    assert np.allclose(again.quad, quad) and again.size == 1024 and again.image_size == (800, 600)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.slow
def test_aligned_landmarks_land_where_the_recipe_puts_them(detector, photo, request):
    image = request.getfixturevalue(photo)
    face = select_faces(detector.detect(image))[0]
    aligned = align_face(image, face, size=1024)
    assert aligned.image.shape == (1024, 1024, 3)
    again = select_faces(detector.detect(aligned.image))[0]
    # Expected: the photo's landmarks through the recipe's transform ...
    expected = aligned.transform.to_crop(face.landmarks)
    assert np.abs(again.landmarks - expected).max() < 3.0
    # ... which by the recipe's construction puts e + 0.1 (m - e) at the crop centre and makes
    # the re-detected quad the crop itself.
    quad = ffhq_quad(again.eye_left, again.eye_right, again.mouth_left, again.mouth_right)
    assert np.abs(quad.mean(axis=0) - 511.5).max() < 2.0
    assert abs(np.hypot(*(quad[3] - quad[0])) / 1024 - 1) < 0.01
    assert abs(np.degrees(np.arctan2(*(quad[3] - quad[0])[::-1]))) < 0.3


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """The same photo as people upload it: turned, tilted, scaled, framed, EXIF-tagged."""
    pil = Image.fromarray(image)
    h, w = image.shape[:2]
    canvas = np.full((h + 400, w + 600, 3), 200, np.uint8)
    canvas[150 : 150 + h, 420 : 420 + w] = image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": stored turned anticlockwise
    buf = io.BytesIO()
    pil.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    fill = (128, 128, 128)
    return {
        "turned 90": np.ascontiguousarray(np.rot90(image)),
        "tilted 15": np.asarray(pil.rotate(15, Image.Resampling.BICUBIC, True, fillcolor=fill)),
        "tilted -15": np.asarray(pil.rotate(-15, Image.Resampling.BICUBIC, True, fillcolor=fill)),
        "scaled 1.6": np.asarray(pil.resize((int(w * 1.6), int(h * 1.6)), Image.Resampling.LANCZOS)),
        "scaled 0.6": np.asarray(pil.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.LANCZOS)),
        "padded": canvas,
        "exif 6 jpeg": decode_image(buf.getvalue(), 10**8).rgb,
    }


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.slow
def test_same_photo_any_way_up_gives_the_same_crop(detector, photo, request):
    image = request.getfixturevalue(photo)

    def face_crop(img: np.ndarray, nudge: float = 0.0) -> np.ndarray:
        face = select_faces(detector.detect(img))[0]
        if nudge:  # move the face by `nudge` crop pixels to the right
            probe = align_face(img, face, size=256).transform
            face = face.mapped(lambda p: p + [nudge * probe.scale, 0.0])
        crop = align_face(img, face, size=256).image.astype(np.float64)
        # The face itself: the crop's border shows whatever lay beyond the original photo.
        return crop[48:208, 48:208]

    reference = face_crop(image)
    # The yardstick: how different the crop looks when misaligned by one pixel (4 px at 1024).
    one_pixel_off = np.abs(face_crop(image, nudge=1.0) - reference).mean()
    for name, variant in variants(image).items():
        diff = np.abs(face_crop(variant) - reference).mean()
        assert diff < 0.75 * one_pixel_off, f"{name}: {diff:.2f} vs 1 px off {one_pixel_off:.2f}"


def test_supersampled_render_is_smooth_and_right_size(astronaut):
    quad = ffhq_quad((203, 101), (246, 104), (201, 139), (245, 141))
    plain = render_quad(astronaut, quad, 128, supersample=1)
    smooth = render_quad(astronaut, quad, 128, supersample=4)
    assert plain.shape == smooth.shape == (128, 128, 3)
    assert np.abs(plain.astype(int) - smooth).mean() < 6  # same picture, only resampling differs
