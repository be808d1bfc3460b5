"""The upload decoder against a corpus of good, odd and bad files made here, byte by byte."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from shared.codes.errors import ERROR_MESSAGES, ErrorCode
from shared.codes.imagetypes import sniff_format
from worker.render.imaging import DecodedImage, ImageError, decodable_formats, decode_image

LIMIT = 50_000_000


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def quadrants(size: int = 64) -> np.ndarray:
    """An asymmetric test card: red, green, blue and white quadrants."""
    h = size // 2
    img = np.zeros((size, size, 3), np.uint8)
    img[:h, :h] = (255, 0, 0)
    img[:h, h:] = (0, 255, 0)
    img[h:, :h] = (0, 0, 255)
    img[h:, h:] = (255, 255, 255)
    return img


def refused(data: bytes, code: ErrorCode, max_pixels: int = LIMIT) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(data, max_pixels)
    assert info.value.code == code, info.value.detail
    assert info.value.message == ERROR_MESSAGES[code]
    return info.value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, rows: int, colour_type: int = 0) -> bytes:
    """A hand-made 8-bit PNG whose header says width x height; `rows` zero rows of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    channels = {0: 1, 2: 3}[colour_type]
    data = zlib.compress(b"\x00" * ((width * channels + 1) * rows), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_allowed_formats_decode_to_rgb(fmt: str):
    card = quadrants()
    data = encode(Image.fromarray(card), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    out = decode_image(data, LIMIT)
    assert isinstance(out, DecodedImage)
    assert out.rgb.shape == (64, 64, 3) and out.rgb.dtype == np.uint8
    assert out.rgb.flags.c_contiguous
    assert out.format == sniff_format(data) == fmt.lower()
    # Lossy formats come back close, lossless ones exact.
    tolerance = 12 if fmt in ("JPEG", "WEBP") else 0
    assert np.abs(out.rgb[8:24, 8:24].astype(int) - card[8:24, 8:24]).max() <= tolerance


def test_avif_when_this_pillow_decodes_it():
    if "avif" not in decodable_formats():
        pytest.skip("this Pillow build has no AVIF codec")
    out = decode_image(encode(Image.fromarray(quadrants()), "AVIF", quality=90), LIMIT)
    assert out.format == "avif" and out.size == (64, 64)
    assert np.abs(out.rgb[8:24, 8:24].astype(int) - (255, 0, 0)).max() < 40


def test_heic_refused_cleanly_without_a_plugin():
    header = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 40
    assert sniff_format(header) == "heic"
    if "heic" in decodable_formats():
        refused(header, ErrorCode.CORRUPT_IMAGE)  # a header alone is not an image
    else:
        refused(header, ErrorCode.UNSUPPORTED_FORMAT)


def test_png_named_jpg_is_sniffed_by_content():
    data = encode(Image.fromarray(quadrants()), "PNG")
    upload = {"filename": "holiday.jpg", "bytes": data}  # the name is never consulted
    out = decode_image(upload["bytes"], LIMIT)
    assert out.format == "png"
    assert (out.rgb == quadrants()).all()


def test_zero_bytes():
    refused(b"", ErrorCode.EMPTY_FILE)


@pytest.mark.parametrize(
    "data",
    [
        b"Hello, this is a plain text file, not a photo.\n" * 3,
        b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        b"BMjust text starting with BM",
    ],
    ids=["text", "html", "pdf", "bm-text"],
)
def test_non_images_are_unsupported(data: bytes):
    refused(data, ErrorCode.UNSUPPORTED_FORMAT)


def test_real_but_unlisted_format_is_unsupported():
    refused(encode(Image.fromarray(quadrants()), "PCX"), ErrorCode.UNSUPPORTED_FORMAT)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_jpeg_is_corrupt(keep: float):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8)), "JPEG")
    refused(data[: int(len(data) * keep)], ErrorCode.CORRUPT_IMAGE)


def test_truncated_progressive_jpeg_is_corrupt():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8))
    data = encode(image, "JPEG", progressive=True)
    refused(data[: len(data) * 3 // 4], ErrorCode.CORRUPT_IMAGE)


def test_png_with_bad_data_is_corrupt():
    data = bytearray(encode(Image.fromarray(quadrants()), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = b"\xff" * 40
    refused(bytes(data), ErrorCode.CORRUPT_IMAGE)


def test_png_bomb_refused_from_the_header():
    # 6000 x 6000 of zeros compresses to ~40 kB but would decode to 36 MB.
    bomb = raw_png(6000, 6000, rows=6000)
    assert len(bomb) < 100_000
    refused(bomb, ErrorCode.TOO_LARGE, max_pixels=10_000_000)


def test_png_beyond_pillows_own_bomb_limit():
    # 100000 x 100000 trips Pillow's DecompressionBombError inside Image.open.
    refused(raw_png(100_000, 100_000, rows=1), ErrorCode.TOO_LARGE, max_pixels=10**12)


def test_pixel_limit_is_per_call_and_leaves_pillow_global_alone():
    before = Image.MAX_IMAGE_PIXELS
    data = encode(Image.fromarray(quadrants(100)), "PNG")
    refused(data, ErrorCode.TOO_LARGE, max_pixels=9_999)
    assert decode_image(data, 10_000).size == (100, 100)
    assert Image.MAX_IMAGE_PIXELS == before


def patched_sof(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0) claiming another size."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def test_jpeg_header_claiming_huge_size_is_too_large():
    data = encode(Image.fromarray(quadrants()), "JPEG")
    refused(patched_sof(data, 60_000, 60_000), ErrorCode.TOO_LARGE)


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)
    out = decode_image(encode(Image.fromarray(values), "PNG"), LIMIT)
    assert out.mode.startswith("I")
    expected = np.rint(values / 257.0)
    assert np.abs(out.rgb[:, :, 0].astype(int) - expected).max() <= 1
    assert (out.rgb[:, :, 0] == out.rgb[:, :, 2]).all()  # grey stays grey
    # Mid-grey in 16 bits is mid-grey in 8 bits, not white.
    mid = decode_image(encode(Image.fromarray(np.full((4, 4), 32768, np.uint16)), "PNG"), LIMIT)
    assert mid.rgb[0, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_colours_come_out_right(fmt: str):
    card = quadrants(128)
    data = encode(Image.fromarray(card).convert("CMYK"), fmt)
    out = decode_image(data, LIMIT)
    assert out.mode == "CMYK"
    tolerance = 10 if fmt == "JPEG" else 0
    for y, x in [(16, 16), (16, 100), (100, 16), (100, 100)]:
        assert np.abs(out.rgb[y, x].astype(int) - card[y, x]).max() <= tolerance, (y, x)


def test_embedded_srgb_profile_is_applied():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    card = quadrants()
    out = decode_image(encode(Image.fromarray(card), "PNG", icc_profile=icc), LIMIT)
    assert out.icc_converted
    assert np.abs(out.rgb.astype(int) - card).max() <= 2


def test_broken_profile_is_ignored():
    card = quadrants()
    out = decode_image(encode(Image.fromarray(card), "PNG", icc_profile=b"not a profile"), LIMIT)
    assert not out.icc_converted
    assert (out.rgb == card).all()


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = decode_image(buf.getvalue(), LIMIT)
    assert out.n_frames == 3
    assert out.rgb[16, 16].tolist() == [255, 0, 0]


def test_palette_png_with_transparency_on_grey():
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (8, 0, 16, 16))
    out = decode_image(encode(pal, "PNG", transparency=0), LIMIT)
    assert out.rgb[4, 4].tolist() == [128, 128, 128]  # transparent red -> background
    assert out.rgb[4, 12].tolist() == [0, 0, 255]  # opaque blue stays


def test_half_transparent_rgba_blends_with_grey():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    out = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), LIMIT)
    assert np.abs(out.rgb[0, 0].astype(int) - (191, 64, 64)).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int):
    card = Image.fromarray(quadrants()[:, :48])  # not square: rotations swap width and height
    # What a camera would store so that applying `orientation` shows `card`.
    stored_as = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = card.transpose(stored_as) if stored_as is not None else card
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(encode(stored, "PNG", exif=exif.tobytes()), LIMIT)
    assert out.orientation == orientation
    assert out.stored_size == stored.size
    assert (out.rgb == np.asarray(card)).all()


def test_greyscale_and_bilevel():
    grey = decode_image(encode(Image.new("L", (8, 8), 77), "PNG"), LIMIT)
    assert grey.rgb[0, 0].tolist() == [77, 77, 77]
    bits = decode_image(encode(Image.new("1", (8, 8), 1), "BMP"), LIMIT)
    assert bits.rgb[0, 0].tolist() == [255, 255, 255]


def test_sniff_format_magic_numbers():
    assert sniff_format(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"II*\x00\x08\x00") == "tiff"
    assert sniff_format(b"GIF89a") == "gif"
    avif = struct.pack(">I", 28) + b"ftypavif" + b"\x00" * 4 + b"mif1miafavif"
    assert sniff_format(avif) == "avif"
    assert sniff_format(b"") is None
    assert sniff_format(b"<html>") is None
