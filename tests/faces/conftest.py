"""Real public-domain faces (scikit-image's astronaut and cameraman, matplotlib's Grace Hopper)
and the default detector, shared by the face tests."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("facenet_pytorch", reason="the worker extra (facenet-pytorch) is not installed")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def cameraman() -> np.ndarray:
    from skimage import data

    return data.camera()  # [H, W] greyscale


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()  # a cup of coffee: no face


@pytest.fixture(scope="session")
def detector():
    from worker.render.faces import get_detector

    return get_detector("mtcnn")
