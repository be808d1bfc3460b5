"""Face detection with five landmarks, behind one small interface.

`FaceDetector.detect(rgb)` returns every face as a `Face` (box, score, five landmarks) in the
pixel coordinates of the image it was given. Two detectors ship: `MTCNNDetector` (facenet-pytorch,
weights inside the wheel; the default) and `MediaPipeDetector` (face mesh; optional, only when
mediapipe imports). `get_detector(name)` builds one once per process.

Coordinates: x right, y down, pixel (i, j) centred on (i, j). "Left"/"right" landmarks are
image-left/right when the face is upright, i.e. `eye_left` is the subject's right eye; for a face
found in a sideways photo (see `try_rotations`) the names keep that upright meaning.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from worker.render.faces.face import Face

# Longest side of the copy a detector looks at: big photos are detected on a downscaled copy
# (MTCNN's landmark net sees a 48 px face crop anyway, so a 1024 px copy loses no precision for
# any face larger than ~5% of the photo).
DETECT_MAX_SIDE = 1024
# A best score at least this high (and upright landmarks) stops the search over orientations.
CONFIDENT = 0.995


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces with five landmarks in an RGB uint8 [H, W, 3] array."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Face]: ...


class DetectorUnavailable(RuntimeError):
    """The detector's package is not installed (or cannot load) on this worker."""


class _ScaledDetector:
    """Shared driver: downscale big photos, and retry sideways photos in the other orientations.

    Subclasses implement `_detect_raw(rgb)` on an image of at most `max_side` pixels.
    """

    name = "base"

    def __init__(self, max_side: int = DETECT_MAX_SIDE, try_rotations: bool = True):
        self.max_side = max_side
        # Photos without an EXIF tag often arrive sideways; the detectors only find upright faces.
        self.try_rotations = try_rotations

    def _detect_raw(self, rgb: np.ndarray) -> list[Face]:
        raise NotImplementedError

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every face in `rgb` ([H, W, 3] uint8; [H, W] greyscale is accepted too)."""
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        small, scale_x, scale_y = _downscale(rgb, self.max_side)

        def to_original(points: np.ndarray) -> np.ndarray:
            # Pixel centres scale about the half-pixel: (x + 0.5) / s - 0.5.
            return np.stack(
                [(points[:, 0] + 0.5) / scale_x - 0.5, (points[:, 1] + 0.5) / scale_y - 0.5], 1
            )

        best: list[Face] = []
        for k in (0, 1, 3, 2) if self.try_rotations else (0,):
            view = np.ascontiguousarray(np.rot90(small, k)) if k else small
            found = self._detect_raw(view)
            if not found:
                continue
            h, w = small.shape[:2]
            unrotate = functools.partial(_unrotate_points, k=k, height=h, width=w)
            found = [f.mapped(lambda p, u=unrotate: to_original(u(p))) for f in found]
            if not best or _best_score(found) > _best_score(best):
                best = found
            # Detectors sometimes "find" a sideways face with muddled landmarks; only a
            # confident, upright-looking answer ends the search early.
            if _best_score(found) >= CONFIDENT and any(_looks_upright(f) for f in found):
                break
        return [self._refine(rgb, f) for f in best]

    def _refine(self, rgb: np.ndarray, face: Face) -> Face:
        """Hook for per-face landmark refinement on the full-resolution photo."""
        return face


def _best_score(faces: Sequence[Face]) -> float:
    return max(f.score for f in faces)


def _looks_upright(face: Face) -> bool:
    """Eyes side by side and about half a face box apart, mouth below them."""
    lm = face.landmarks
    eye_to_eye = lm[1] - lm[0]
    eye_to_mouth = (lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2
    width = face.box[2] - face.box[0]
    roll = np.degrees(np.arctan2(eye_to_eye[1], eye_to_eye[0]))
    mouth_below = eye_to_eye[0] * eye_to_mouth[1] - eye_to_eye[1] * eye_to_mouth[0] > 0
    return bool(abs(roll) < 60 and mouth_below and np.hypot(*eye_to_eye) >= 0.25 * width)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected [H, W, 3] pixels, got shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb, 1.0, 1.0
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2))
    return small, size[0] / width, size[1] / height


def _unrotate_points(points: np.ndarray, k: int, height: int, width: int) -> np.ndarray:
    """Map points found in np.rot90(image, k) back to `image` ([height, width] before turning)."""
    x, y = points[:, 0], points[:, 1]
    if k == 0:
        return points.copy()
    if k == 1:  # turned a quarter anticlockwise
        return np.stack([width - 1 - y, x], axis=1)
    if k == 2:
        return np.stack([width - 1 - x, height - 1 - y], axis=1)
    if k == 3:  # turned a quarter clockwise
        return np.stack([y, height - 1 - x], axis=1)
    raise ValueError(f"k must be 0..3, got {k}")


class MTCNNDetector(_ScaledDetector):
    """MTCNN (facenet-pytorch 2.5.3): box, score and five landmarks; weights ship in the wheel."""

    name = "mtcnn"

    def __init__(
        self,
        device: str = "cpu",
        min_score: float = 0.9,
        min_face_size: int = 20,
        max_side: int = DETECT_MAX_SIDE,
        try_rotations: bool = True,
        refine_iterations: int = 3,
    ):
        super().__init__(max_side=max_side, try_rotations=try_rotations)
        self.refine_iterations = refine_iterations
        try:
            import torch
            from facenet_pytorch import MTCNN
        except ImportError as exc:
            raise DetectorUnavailable(f"facenet-pytorch is not installed: {exc}") from exc
        self._torch = torch
        self.min_score = min_score
        # Built once: three small nets, loaded from the wheel's own weight files.
        self._net = MTCNN(keep_all=True, min_face_size=min_face_size, device=torch.device(device))
        self._net.eval()

    def _detect_raw(self, rgb: np.ndarray) -> list[Face]:
        with self._torch.inference_mode():
            boxes, scores, points = self._net.detect(rgb, landmarks=True)
        if boxes is None:
            return []
        # Under numpy 2, facenet-pytorch hands back object arrays: cast before any arithmetic.
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
        # MTCNN order: eye_left, eye_right, nose, mouth_left, mouth_right (ours too).
        return [
            Face.from_arrays(b, s, p)
            for b, s, p in zip(boxes, scores, points, strict=True)
            if s >= self.min_score
        ]

    def _refine(self, rgb: np.ndarray, face: Face) -> Face:
        if self.refine_iterations <= 0:
            return face
        from worker.render.faces.refine import refine_landmarks

        return refine_landmarks(self._net.onet, rgb, face, self.refine_iterations)


# MediaPipe face mesh indices (468-point mesh): the six points around each eye and the mouth
# corners. Indices 33.. are the subject's right eye, i.e. image-left on an upright face.
_MESH_EYE_LEFT = (33, 160, 158, 133, 153, 144)
_MESH_EYE_RIGHT = (362, 385, 387, 263, 373, 380)
_MESH_MOUTH_LEFT, _MESH_MOUTH_RIGHT, _MESH_NOSE_TIP = 61, 291, 1


def mediapipe_available() -> bool:
    """Whether the optional mediapipe package imports here (it needs numpy<2)."""
    try:
        import mediapipe  # type: ignore[import-not-found]  # noqa: F401
    except Exception:  # ImportError, or a binary built against another numpy
        return False
    return True


class MediaPipeDetector(_ScaledDetector):
    """MediaPipe face mesh: more precise eyes and mouth than MTCNN; optional dependency."""

    name = "mediapipe"

    def __init__(
        self, max_faces: int = 8, max_side: int = DETECT_MAX_SIDE, try_rotations: bool = True
    ):
        super().__init__(max_side=max_side, try_rotations=try_rotations)
        try:
            import mediapipe as mp  # type: ignore[import-not-found]
        except Exception as exc:
            raise DetectorUnavailable(f"mediapipe is not usable here: {exc}") from exc
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=max_faces, min_detection_confidence=0.5
        )
        self._lock = threading.Lock()  # a FaceMesh graph is not safe to run concurrently

    def _detect_raw(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        with self._lock:
            result = self._mesh.process(rgb)
        faces = []
        for mesh in result.multi_face_landmarks or []:
            # Normalised [0, 1] coordinates of the image's extent -> pixel-centre coordinates.
            pts = np.array([(p.x * width - 0.5, p.y * height - 0.5) for p in mesh.landmark])
            landmarks = np.stack(
                [
                    pts[list(_MESH_EYE_LEFT)].mean(axis=0),
                    pts[list(_MESH_EYE_RIGHT)].mean(axis=0),
                    pts[_MESH_NOSE_TIP],
                    pts[_MESH_MOUTH_LEFT],
                    pts[_MESH_MOUTH_RIGHT],
                ]
            )
            box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
            faces.append(Face.from_arrays(box, 1.0, landmarks))  # the mesh gives no score
        return faces


DETECTORS: dict[str, type[_ScaledDetector]] = {
    "mtcnn": MTCNNDetector,
    "mediapipe": MediaPipeDetector,
}


@functools.lru_cache(maxsize=4)
def get_detector(name: str = "mtcnn", device: str = "cpu", threads: int = 0) -> FaceDetector:
    """The detector called `name`, built once per process (and per device).

    `threads` > 0 sets torch's CPU thread count (process-wide) before the nets are built.
    Raises ValueError for an unknown name, DetectorUnavailable when its package is missing.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose from {', '.join(DETECTORS)}")
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    if name == "mtcnn":
        return MTCNNDetector(device=device)
    return MediaPipeDetector()


def select_faces(faces: Sequence[Face], mode: Literal["largest", "all"] = "largest") -> list[Face]:
    """The faces to edit: the largest one, or all of them (largest first)."""
    if mode not in ("largest", "all"):
        raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")
    ordered = sorted(faces, key=lambda f: f.area, reverse=True)
    return ordered[:1] if mode == "largest" else ordered
