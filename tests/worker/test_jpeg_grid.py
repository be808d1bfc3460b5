"""A preview's JPEG spliced from the photo's cached grid of restart intervals and a re-encoded
rectangle is, byte for byte, the JPEG of the whole pasted photo, and shows the same pixels as the
JPEG without markers."""

from __future__ import annotations

import io

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from PIL import Image

from worker.render import preview_photo
from worker.render.faces import AlignTransform, Face, align_face, paste_into
from worker.render.faces.paste import paste_region
from worker.render.images import encode_jpeg
from worker.render.jpeg_grid import (
    GridJpeg,
    LayoutError,
    encode_grid,
    interval_mcus,
    split_intervals,
)

QUALITY = preview_photo.PREVIEW_JPEG_QUALITY


def _grace_hopper(size: tuple[int, int]) -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB").resize(size))


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _whole(picture: np.ndarray) -> bytes:
    return encode_grid(picture, QUALITY, interval_mcus(picture.shape[1]))


@pytest.mark.parametrize("width, interval", [(1024, 4), (874, 5), (517, 11), (848, 53),
                                             (40, 3), (16, 1)])
def test_an_interval_divides_a_row_and_is_never_narrower_than_64_px(width, interval):
    assert interval_mcus(width) == interval  # 848 px: 53 MCUs, a prime: whole rows


# Widths of 64, 33 (11 x 3), 44 and 53 (prime) MCUs, the last MCU of 517 and 700 px padded.
@pytest.mark.parametrize("size", [(1024, 512), (517, 611), (700, 1024), (848, 300)])
@pytest.mark.parametrize("rect", [(0, 0, 1, 1), (130, 200, 420, 420), (333, 283, 334, 284),
                                  (0, 0, 9999, 9999), (-5, -5, 40, 40), (500, 290, 9999, 9999)])
def test_an_area_spliced_in_is_the_whole_pictures_jpeg(size, rect):
    photo = _grace_hopper(size)
    cached = GridJpeg.of(photo, QUALITY)
    left, top, right, bottom = cached.area(*rect)
    step = 16 * cached.interval
    assert left % step == 0 and top % 16 == 0
    assert right % step == 0 or right == photo.shape[1]
    assert bottom % 16 == 0 or bottom == photo.shape[0]
    x0, y0 = max(rect[0], 0), max(rect[1], 0)
    x1, y1 = min(rect[2], photo.shape[1]), min(rect[3], photo.shape[0])
    assert left <= x0 < x1 <= right and top <= y0 < y1 <= bottom
    changed = photo.copy()
    changed[y0:y1, x0:x1] = np.random.default_rng(1).integers(0, 256, (y1 - y0, x1 - x0, 3),
                                                              np.uint8)

    spliced = cached.with_area(changed[top:bottom, left:right], left, top)

    assert spliced == _whole(changed)
    assert np.array_equal(_pixels(spliced), _pixels(encode_jpeg(changed, quality=QUALITY)))


def test_intervals_round_trip_and_a_jpeg_without_markers_is_refused():
    photo = skimage.data.astronaut()
    data = _whole(photo)
    header, intervals = split_intervals(data, 32 * 8)  # 32 rows of 8 intervals of 4 MCUs
    cached = GridJpeg(512, 512, QUALITY, 4, header, tuple(intervals))
    assert cached.with_area(photo[496:, 448:], 448, 496) == data
    with pytest.raises(LayoutError):
        split_intervals(encode_jpeg(photo, quality=QUALITY), 256)  # no restart markers
    with pytest.raises(LayoutError):
        split_intervals(data, 240)  # 256 intervals are not 240


@pytest.mark.parametrize("shape, left, top", [((16, 64, 3), 0, 8), ((10, 64, 3), 0, 16),
                                              ((16, 64, 3), 32, 16), ((16, 40, 3), 64, 16),
                                              ((32, 64, 3), 0, 496)])
def test_an_area_off_the_grid_is_refused(shape, left, top):
    cached = GridJpeg.of(skimage.data.astronaut(), QUALITY)
    with pytest.raises(ValueError):
        cached.with_area(np.zeros(shape, np.uint8), left, top)


def _two_faces(photo: np.ndarray) -> list[AlignTransform]:
    """The astronaut's face, and the same face moved down the photo (two bands of rows)."""
    face = Face((180, 60, 270, 175), 1.0, (203, 101), (246, 104), (224, 128), (201, 139), (245, 141))
    first = align_face(photo, face, size=256).transform
    moved = AlignTransform(quad=first.quad + np.array([-120.0, 230.0]), size=first.size,
                           image_size=first.image_size)
    return [first, moved]


def _faces(n: int, side: int = 64) -> np.ndarray:
    rng = np.random.default_rng(2)
    return rng.integers(0, 256, (n, side, side, 3), np.uint8)


@pytest.mark.parametrize("faces", [1, 2])
def test_a_preview_pasted_in_its_area_is_the_whole_pasted_photos_jpeg(faces):
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:faces]
    crops = _faces(faces)
    scaled = preview_photo.at_preview_scale(photo, transforms)
    assert scaled.jpeg is not None

    preview = preview_photo.paste_preview(scaled, crops)

    whole = photo.copy()
    for crop, transform in zip(crops, transforms, strict=True):
        paste_into(whole, crop, transform)
    assert preview == _whole(whole)
    assert np.array_equal(_pixels(preview), _pixels(encode_jpeg(whole, quality=QUALITY)))
    assert not np.array_equal(_pixels(preview), _pixels(encode_jpeg(photo, quality=QUALITY)))


def test_a_rectangle_pasted_from_its_corner_matches_the_whole_photos_pixels():
    photo = skimage.data.astronaut()
    (transform,) = _two_faces(photo)[:1]
    crop = _faces(1, 256)[0]
    whole = photo.copy()
    paste_into(whole, crop, transform)
    x0, y0, x1, y1 = paste_region(transform, 512, 512)
    left, top, right, bottom = x0 - 7, y0 - 3, x1 + 2, y1 + 5  # any rectangle holding the region
    assert 0 < left and 0 < top and right < 512 and bottom < 512
    area = photo[top:bottom, left:right].copy()
    paste_into(area, crop, transform, top=top, left=left)
    assert np.array_equal(area, whole[top:bottom, left:right])


def test_without_a_cached_grid_a_preview_is_the_whole_photos_jpeg(monkeypatch):
    def refuse(*args):
        raise LayoutError("as if the encoder wrote no restart markers")

    monkeypatch.setattr(preview_photo.GridJpeg, "of", refuse)
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:1]
    scaled = preview_photo.at_preview_scale(photo, transforms)
    assert scaled.jpeg is None

    preview = preview_photo.paste_preview(scaled, _faces(1))

    whole = photo.copy()
    paste_into(whole, _faces(1)[0], transforms[0])
    assert preview == encode_jpeg(whole, quality=QUALITY)


def test_an_area_the_encoder_lays_out_otherwise_falls_back_to_the_whole_photo(monkeypatch):
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:1]
    scaled = preview_photo.at_preview_scale(photo, transforms)

    def refuse(*args):
        raise LayoutError("as if the area came back with another number of intervals")

    monkeypatch.setattr(preview_photo.GridJpeg, "with_area", refuse)

    preview = preview_photo.paste_preview(scaled, _faces(1))

    whole = photo.copy()
    paste_into(whole, _faces(1)[0], transforms[0])
    assert preview == encode_jpeg(whole, quality=QUALITY)
