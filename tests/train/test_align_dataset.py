"""``python -m worker.render.faces.align_dataset``: aligned crops of real faces, photos without one
(or not images at all) skipped and listed; the result is a training data set."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.train.conftest import REPO, train_env

pytest.importorskip("facenet_pytorch", reason="the worker extra (facenet-pytorch) is not installed")


pytestmark = pytest.mark.slow  # aligns real photos in a subprocess (make test-fast leaves it out)


def test_align_dataset_writes_crops_and_lists_skipped(tmp_path):
    from skimage import data

    from worker.train.data import ImageDataset

    src = tmp_path / "photos"
    (src / "people").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(src / "people" / "astronaut.jpg", quality=95)
    Image.fromarray(data.coffee()).save(src / "coffee.png")  # no face
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    dst = tmp_path / "aligned"
    result = subprocess.run([sys.executable, "-m", "worker.render.faces.align_dataset", str(src),
                             str(dst), "--size", "64"], cwd=REPO, env=train_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 aligned, 2 skipped" in result.stdout
    crop = np.asarray(Image.open(dst / "people" / "astronaut.png"))
    assert crop.shape == (64, 64, 3) and crop.std() > 10
    skipped = dict(line.split("\t") for line in (dst / "skipped.tsv").read_text().splitlines())
    assert skipped["coffee.png"] == "no face found"
    assert skipped["broken.jpg"].startswith("not decodable")
    dataset = ImageDataset(dst, 32)
    assert len(dataset) == 1 and dataset[0].shape == (3, 32, 32)
