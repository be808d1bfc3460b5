"""A preview's JPEG spliced from the photo's cached rows and a re-encoded band is, byte for byte,
the JPEG of the whole pasted photo, and shows the same pixels as the JPEG without markers."""

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
from worker.render.jpeg_rows import LayoutError, RowJpeg, encode_rows, rows_of, split_rows

QUALITY = preview_photo.PREVIEW_JPEG_QUALITY


def _grace_hopper(size: tuple[int, int]) -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB").resize(size))


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("size", [(512, 512), (517, 611), (1024, 700)])
@pytest.mark.parametrize("rows", [(0, 1), (200, 420), (333, 334), (0, 9999), (-5, 40)])
def test_a_band_spliced_in_is_the_whole_pictures_jpeg(size, rows):
    photo = _grace_hopper(size)
    cached = RowJpeg.of(photo, QUALITY)
    top, bottom = cached.band(*rows)
    assert top % 16 == 0 and (bottom % 16 == 0 or bottom == photo.shape[0])
    assert top <= max(rows[0], 0) and bottom >= min(rows[1], photo.shape[0])
    changed = photo.copy()
    noise = np.random.default_rng(1).integers(0, 256, changed[top:bottom].shape, np.uint8)
    changed[max(rows[0], 0):rows[1]] = noise[:rows[1] - max(rows[0], 0)]

    spliced = cached.with_band(changed[top:bottom], top)

    assert spliced == encode_rows(rows_of(changed, 0, photo.shape[0]), QUALITY)
    assert np.array_equal(_pixels(spliced), _pixels(encode_jpeg(changed, quality=QUALITY)))


def test_rows_round_trip_and_a_jpeg_without_markers_is_refused():
    photo = skimage.data.astronaut()
    data = encode_rows(rows_of(photo, 0, 512), QUALITY)
    header, rows = split_rows(data, 512)
    assert len(rows) == 32
    assert RowJpeg(512, QUALITY, header, tuple(rows)).with_band(photo[496:], 496) == data
    with pytest.raises(LayoutError):
        split_rows(encode_jpeg(photo, quality=QUALITY), 512)  # no restart markers
    with pytest.raises(LayoutError):
        split_rows(data, 480)  # 32 intervals are not 480 px of rows (30)


def test_a_band_off_the_mcu_grid_is_refused():
    cached = RowJpeg.of(skimage.data.astronaut(), QUALITY)
    with pytest.raises(ValueError):
        cached.with_band(np.zeros((16, 512, 3), np.uint8), 8)
    with pytest.raises(ValueError):
        cached.with_band(np.zeros((10, 512, 3), np.uint8), 16)


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
def test_a_preview_pasted_in_its_band_is_the_whole_pasted_photos_jpeg(faces):
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:faces]
    crops = _faces(faces)
    scaled = preview_photo.at_preview_scale(photo, transforms)
    assert scaled.jpeg is not None

    preview = preview_photo.paste_preview(scaled, crops)

    whole = photo.copy()
    for crop, transform in zip(crops, transforms, strict=True):
        paste_into(whole, crop, transform)
    assert preview == encode_rows(rows_of(whole, 0, 512), QUALITY)
    assert np.array_equal(_pixels(preview), _pixels(encode_jpeg(whole, quality=QUALITY)))
    assert not np.array_equal(_pixels(preview), _pixels(encode_jpeg(photo, quality=QUALITY)))


def test_a_band_pasted_from_its_top_row_matches_the_whole_photos_rows():
    photo = skimage.data.astronaut()
    (transform,) = _two_faces(photo)[:1]
    crop = _faces(1, 256)[0]
    whole = photo.copy()
    paste_into(whole, crop, transform)
    _, y0, _, y1 = paste_region(transform, 512, 512)
    top, bottom = y0 - 3, y1 + 5  # any rows holding the region
    assert 0 < top and bottom < 512
    band = photo[top:bottom].copy()
    paste_into(band, crop, transform, top=top)
    assert np.array_equal(band, whole[top:bottom])


def test_without_cached_rows_a_preview_is_the_whole_photos_jpeg(monkeypatch):
    def refuse(*args):
        raise LayoutError("as if the encoder wrote no restart markers")

    monkeypatch.setattr(preview_photo.RowJpeg, "of", refuse)
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:1]
    scaled = preview_photo.at_preview_scale(photo, transforms)
    assert scaled.jpeg is None

    preview = preview_photo.paste_preview(scaled, _faces(1))

    whole = photo.copy()
    paste_into(whole, _faces(1)[0], transforms[0])
    assert preview == encode_jpeg(whole, quality=QUALITY)


def test_a_band_the_encoder_lays_out_otherwise_falls_back_to_the_whole_photo(monkeypatch):
    photo = skimage.data.astronaut()
    transforms = _two_faces(photo)[:1]
    scaled = preview_photo.at_preview_scale(photo, transforms)

    def refuse(*args):
        raise LayoutError("as if the band came back with another number of rows")

    monkeypatch.setattr(preview_photo.RowJpeg, "with_band", refuse)

    preview = preview_photo.paste_preview(scaled, _faces(1))

    whole = photo.copy()
    paste_into(whole, _faces(1)[0], transforms[0])
    assert preview == encode_jpeg(whole, quality=QUALITY)
