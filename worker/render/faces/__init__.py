"""Faces in photos: detection with landmarks, FFHQ alignment, and pasting edited crops back.

Typical use (one photo, the largest face)::

    detector = get_detector("mtcnn")
    faces = select_faces(detector.detect(rgb), "largest")
    aligned = align_face(rgb, faces[0], size=1024)
    photo = paste_back(rgb, edited_crop, aligned.transform)
"""

from worker.render.faces.align import AlignedFace, AlignTransform, align_face, ffhq_quad
from worker.render.faces.detect import (
    DetectorUnavailable,
    Face,
    FaceDetector,
    MediaPipeDetector,
    MTCNNDetector,
    get_detector,
    mediapipe_available,
    select_faces,
)
from worker.render.faces.paste import paste_back, paste_into

__all__ = [
    "AlignTransform",
    "AlignedFace",
    "DetectorUnavailable",
    "Face",
    "FaceDetector",
    "MTCNNDetector",
    "MediaPipeDetector",
    "align_face",
    "ffhq_quad",
    "get_detector",
    "mediapipe_available",
    "paste_back",
    "paste_into",
    "select_faces",
]
