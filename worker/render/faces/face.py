"""`Face`: one detected face with five landmarks (what every detector returns).

Coordinates: x right, y down, pixel (i, j) centred on (i, j). "Left"/"right" landmarks are
image-left/right when the face is upright, i.e. `eye_left` is the subject's right eye.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One detected face: box (x0, y0, x1, y1), confidence, and five landmarks."""

    box: tuple[float, float, float, float]
    score: float
    eye_left: Point
    eye_right: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point

    @property
    def landmarks(self) -> np.ndarray:
        """[5, 2] float64: eye_left, eye_right, nose, mouth_left, mouth_right."""
        return np.array(
            [self.eye_left, self.eye_right, self.nose, self.mouth_left, self.mouth_right],
            dtype=np.float64,
        )

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @classmethod
    def from_arrays(cls, box: np.ndarray, score: float, landmarks: np.ndarray) -> Face:
        """Build from a [4] box and [5, 2] landmarks in the order of `landmarks`."""
        b = np.asarray(box, dtype=np.float64).reshape(4)
        lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        pts = [(float(x), float(y)) for x, y in lm]
        return cls((float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(score), *pts)

    def mapped(self, fn: Callable[[np.ndarray], np.ndarray]) -> Face:
        """This face with every point sent through `fn` ([N, 2] -> [N, 2]); box re-fitted."""
        x0, y0, x1, y1 = self.box
        corners = fn(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64))
        box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
        return Face.from_arrays(box, self.score, fn(self.landmarks))
