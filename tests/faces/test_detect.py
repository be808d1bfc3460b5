"""Face detection on real photos: counts, landmark layout, sideways and large photos, selection."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from worker.render.faces import (
    DetectorUnavailable,
    Face,
    FaceDetector,
    MediaPipeDetector,
    get_detector,
    mediapipe_available,
    select_faces,
)


def check_layout(face: Face) -> None:
    """Upright-face anatomy: eyes side by side above the mouth corners, within the box (a turned
    head's far eye may sit on the box edge, hence the margin)."""
    lm = face.landmarks
    assert lm.dtype == np.float64 and all(isinstance(v, float) for v in face.box)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    x0, y0, x1, y1 = face.box
    margin = 0.1 * (x1 - x0)
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    assert (lm[:, 0] > x0).all() and (lm[:, 0] < x1).all()
    assert (lm[:, 1] > y0).all() and (lm[:, 1] < y1).all()


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper", "cameraman"])
@pytest.mark.slow
def test_one_face_on_real_photos(detector: FaceDetector, photo: str, request):
    image = request.getfixturevalue(photo)
    faces = detector.detect(image)
    assert len(faces) == 1
    assert faces[0].score > 0.99
    check_layout(faces[0])


@pytest.mark.slow
def test_astronaut_landmarks_where_a_person_would_put_them(detector, astronaut):
    face = detector.detect(astronaut)[0]
    # Pupils, nose tip and mouth corners, read by eye off a 4x zoom of the photo (+- 1 px).
    expected = np.array([[203, 101], [246, 104], [224, 128], [201, 139], [245, 141]], float)
    assert np.abs(face.landmarks - expected).max() < 4


@pytest.mark.slow
def test_no_face_gives_empty_list(detector, coffee):
    assert detector.detect(coffee) == []


@pytest.mark.parametrize("turns", [1, 3])
@pytest.mark.slow
def test_sideways_photo_still_finds_the_face(detector, astronaut, turns: int):
    upright = detector.detect(astronaut)[0]
    sideways = np.ascontiguousarray(np.rot90(astronaut, turns))
    faces = detector.detect(sideways)
    assert len(faces) == 1
    # Where the upright landmarks land in the turned photo (np.rot90 is anticlockwise).
    h, w = astronaut.shape[:2]
    x, y = upright.landmarks[:, 0], upright.landmarks[:, 1]
    if turns == 1:
        expected = np.stack([y, w - 1 - x], axis=1)
    else:
        expected = np.stack([h - 1 - y, x], axis=1)
    # Names keep their upright meaning: eye_left is still the subject's right eye.
    assert np.abs(faces[0].landmarks - expected).max() < 1.0


@pytest.mark.slow
def test_large_photo_is_detected_on_a_downscaled_copy(detector, astronaut):
    small = detector.detect(astronaut)[0]
    big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.Resampling.BICUBIC))
    faces = detector.detect(big)
    assert len(faces) == 1
    # Landmarks come back in the big photo's pixels: 4x the small ones (pixel-centre scaling).
    expected = (small.landmarks + 0.5) * 4 - 0.5
    eye_distance = np.hypot(*(expected[1] - expected[0]))
    assert np.abs(faces[0].landmarks - expected).max() < 0.05 * eye_distance


@pytest.mark.slow
def test_select_faces_largest_and_all(detector, astronaut, grace_hopper):
    # Two people side by side: Grace Hopper's face is the bigger one.
    canvas = np.full((600, 1200, 3), 90, np.uint8)
    canvas[:512, :512] = astronaut
    canvas[:600, 600:1112] = grace_hopper
    faces = detector.detect(canvas)
    assert len(faces) == 2
    everyone = select_faces(faces, "all")
    assert [f.area for f in everyone] == sorted((f.area for f in faces), reverse=True)
    largest = select_faces(faces, "largest")
    assert len(largest) == 1 and largest[0] is everyone[0]
    assert largest[0].box[0] > 600  # the one on the right
    assert select_faces([], "largest") == []
    with pytest.raises(ValueError):
        select_faces(faces, "biggest")


def test_get_detector_builds_once_and_rejects_unknown_names():
    assert get_detector("mtcnn") is get_detector("mtcnn")
    assert isinstance(get_detector("mtcnn"), FaceDetector)
    with pytest.raises(ValueError):
        get_detector("dlib")


def test_mediapipe_detector(astronaut):
    if not mediapipe_available():
        with pytest.raises(DetectorUnavailable):
            MediaPipeDetector()
        pytest.skip("mediapipe is not installed (it needs numpy<2); MTCNN is the default")
    faces = get_detector("mediapipe").detect(astronaut)
    assert len(faces) == 1
    check_layout(faces[0])
