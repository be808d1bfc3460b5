"""FFHQ face alignment: the crop the Anycost encoder and generators were trained on.

The recipe is NVIDIA's FFHQ dataset script (the original Anycost `align_face` tool is the same):
from the eye centres and the mouth corners it builds an oriented square (the "quad") around the
face, then resamples that square to N x N. See ../shared/reference/ffhq_alignment.md.

Unlike the original, the transform is kept: `AlignTransform` maps aligned-crop pixels to photo
pixels and back, so an edited crop can be pasted into the photo (`worker.render.faces.paste`).

Coordinates: x right, y down, pixel (i, j) centred on (i, j) (as the detectors report them).
Pillow's transforms work on continuous coordinates (pixel i covers [i, i + 1)), hence the +0.5s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from worker.render.faces.face import Face


def ffhq_quad(
    eye_left: np.ndarray, eye_right: np.ndarray, mouth_left: np.ndarray, mouth_right: np.ndarray
) -> np.ndarray:
    """The FFHQ crop square as [4, 2] corners TL, BL, BR, TR (photo pixel coordinates)."""
    eye_left, eye_right = np.asarray(eye_left, float), np.asarray(eye_right, float)
    mouth = (np.asarray(mouth_left, float) + np.asarray(mouth_right, float)) / 2
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth - eye_mid

    def turn(v: np.ndarray) -> np.ndarray:  # a quarter turn, y pointing down: (x, y) -> (-y, x)
        return np.array([-v[1], v[0]])

    # The crop's x axis blends the eye line with the perpendicular of the eye-mouth line.
    x_axis = eye_to_eye - turn(eye_to_mouth)
    x_axis /= np.hypot(*x_axis)
    half_side = max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    x = x_axis * half_side
    y = turn(x)
    centre = eye_mid + 0.1 * eye_to_mouth
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


@dataclass(frozen=True)
class AlignTransform:
    """Where an aligned crop came from: the quad in the photo and the crop's side length.

    `crop_to_image(size)` is the 3x3 matrix taking crop pixel coordinates (of a crop `size`
    pixels wide, default the aligned size) to photo pixel coordinates; `image_to_crop` inverts it.
    A crop rendered at another resolution (a 256 px preview of a 1024 px alignment) maps with its
    own size.
    """

    quad: np.ndarray  # [4, 2] TL, BL, BR, TR in photo pixel coordinates
    size: int  # side of the aligned crop in pixels
    image_size: tuple[int, int]  # (width, height) of the photo

    def crop_to_image(self, size: int | None = None) -> np.ndarray:
        n = float(size or self.size)
        tl, bl, _, tr = self.quad
        ux, vy = (tr - tl) / n, (bl - tl) / n  # photo step per crop pixel along x and along y
        # Crop pixel u covers [u, u + 1) of the square, so its centre sits at u + 0.5.
        origin = tl + 0.5 * (ux + vy)
        return np.array([[ux[0], vy[0], origin[0]], [ux[1], vy[1], origin[1]], [0.0, 0.0, 1.0]])

    def image_to_crop(self, size: int | None = None) -> np.ndarray:
        return np.linalg.inv(self.crop_to_image(size))

    def to_image(self, points: np.ndarray, size: int | None = None) -> np.ndarray:
        """[N, 2] crop pixel coordinates -> photo pixel coordinates."""
        return _apply(self.crop_to_image(size), points)

    def to_crop(self, points: np.ndarray, size: int | None = None) -> np.ndarray:
        """[N, 2] photo pixel coordinates -> crop pixel coordinates."""
        return _apply(self.image_to_crop(size), points)

    def to_dict(self) -> dict:
        """JSON-friendly form, e.g. for an item's metadata; `from_dict` reads it back."""
        return {
            "quad": [[float(x), float(y)] for x, y in self.quad],
            "size": int(self.size),
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
        }

    @classmethod
    def from_dict(cls, data: dict) -> AlignTransform:
        quad = np.asarray(data["quad"], dtype=np.float64).reshape(4, 2)
        width, height = data["image_size"]
        return cls(quad=quad, size=int(data["size"]), image_size=(int(width), int(height)))

    @property
    def scale(self) -> float:
        """Photo pixels per crop pixel (below 1 means the crop was upsampled)."""
        return float(np.hypot(*(self.quad[3] - self.quad[0])) / self.size)


@dataclass(frozen=True)
class AlignedFace:
    """An N x N FFHQ-aligned crop, its transform, and the face it was made from."""

    image: np.ndarray  # [N, N, 3] uint8
    transform: AlignTransform
    face: Face


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def align_face(rgb: np.ndarray, face: Face, size: int = 1024, supersample: int = 4) -> AlignedFace:
    """The FFHQ-aligned `size` x `size` crop of `face` in `rgb` ([H, W, 3] uint8).

    The quad is rendered at `supersample` times the output size and Lanczos-reduced (the original
    renders 4096 px for 1024 px output), which keeps edges free of bilinear aliasing.
    """
    quad = ffhq_quad(face.eye_left, face.eye_right, face.mouth_left, face.mouth_right)
    height, width = rgb.shape[:2]
    transform = AlignTransform(quad=quad, size=size, image_size=(width, height))
    crop = render_quad(rgb, quad, size, supersample)
    return AlignedFace(image=crop, transform=transform, face=face)


def render_quad(rgb: np.ndarray, quad: np.ndarray, size: int, supersample: int = 4) -> np.ndarray:
    """Resample the photo inside `quad` (pixel coordinates) to `size` x `size`, FFHQ style."""
    img = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]), "RGB")
    q = np.asarray(quad, dtype=np.float64) + 0.5  # continuous coordinates from here on
    qsize = float(np.hypot(*(q[3] - q[0])))  # side of the square, 2s in the recipe

    # 1. A face much larger than the output: shrink the photo first (cheaper, and Lanczos
    #    anti-aliases). The quad follows the exact per-axis scale so the transform stays exact.
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        new_size = (round(img.width / shrink), round(img.height / shrink))
        q = q * (np.array(new_size) / np.array(img.size))
        img = img.resize(new_size, Image.Resampling.LANCZOS)
        qsize /= shrink

    # 2. Crop to the quad's bounding box plus a border.
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(q.min(axis=0)).astype(int), np.ceil(q.max(axis=0)).astype(int)
    box = (
        max(lo[0] - border, 0),
        max(lo[1] - border, 0),
        min(hi[0] + border, img.width),
        min(hi[1] + border, img.height),
    )
    if box[2] - box[0] < img.width or box[3] - box[1] < img.height:
        img = img.crop(box)
        q = q - np.array(box[:2])

    # 3. Where the quad runs off the photo: reflect-pad, blur and fade the padding.
    lo, hi = np.floor(q.min(axis=0)).astype(int), np.ceil(q.max(axis=0)).astype(int)
    pad = np.array(
        [
            max(-lo[0] + border, 0),
            max(-lo[1] + border, 0),
            max(hi[0] - img.width + border, 0),
            max(hi[1] - img.height + border, 0),
        ]
    )
    if pad.max() > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        img = Image.fromarray(_pad_softly(np.asarray(img), pad, qsize), "RGB")
        q = q + pad[:2]

    # 4. Warp the quad to a square (bilinear at the supersampled size), then Lanczos down.
    render = size * max(1, supersample)
    # Pillow's QUAD wants the corners as upper-left, lower-left, lower-right, upper-right.
    out = img.transform(
        (render, render), Image.Transform.QUAD, tuple(q.flatten()), Image.Resampling.BILINEAR
    )
    if render != size:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(out)


def _pad_softly(img: np.ndarray, pad: np.ndarray, qsize: float) -> np.ndarray:
    """Reflect-pad [H, W, 3] uint8 by (left, top, right, bottom); blur and fade the new area
    towards the median colour so that a mirrored shoulder does not look like a second person."""
    left, top, right, bottom = (int(p) for p in pad)
    padded = np.pad(img, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = padded.shape[:2]
    ys, xs = np.ogrid[:h, :w]
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    # 0 inside the photo, rising to 1 at the outer edge of the padding.
    fx = np.minimum(xs / max(left, 1), (w - 1 - xs) / max(right, 1))
    fy = np.minimum(ys / max(top, 1), (h - 1 - ys) / max(bottom, 1))
    mask = np.maximum(1.0 - fx, 1.0 - fy)[:, :, None]
    # Pillow's Gaussian (sigma = 2 % of the quad) is ~30x faster than scipy's at these sigmas;
    # its 8-bit rounding is far below what the fade leaves visible.
    blurred = Image.fromarray(padded).filter(ImageFilter.GaussianBlur(qsize * 0.02))
    out = padded.astype(np.float32)
    out += (np.asarray(blurred, dtype=np.float32) - out) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    # The fade target: the median colour (of every 4th pixel: the same value, 16x cheaper).
    median = np.median(out[::4, ::4].reshape(-1, 3), axis=0)
    out += (median - out) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
