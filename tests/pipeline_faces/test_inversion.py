"""Refinement of W+ codes on tiny-random: the error goes down (never up) and info says how."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from shared.recipe.parse import Recipe
from worker.render import inversion, stages
from worker.render.faces import align_face, get_detector, select_faces
from worker.render.images import to_uint8

pytestmark = pytest.mark.slow  # in-process renders of real photos (make test-fast leaves it out)


def test_refine_does_not_increase_error(tiny_bundle):
    rgb = skimage.data.astronaut()
    crops = stages.prepare_faces(rgb, tiny_bundle, Recipe())
    wplus = stages.encode(tiny_bundle, [c.rgb for c in crops], torch.device("cpu")).detach()
    face = select_faces(get_detector().detect(rgb), "largest")[0]
    target = align_face(rgb, face, size=tiny_bundle.resolution).image
    refined, info = inversion.refine(tiny_bundle, target, wplus, steps=5, lr=0.05)
    assert refined.shape == wplus.shape
    assert info["loss"] in ("lpips_alex", "mse+l1_down4") and info["steps"] == 5
    assert info["error_after"] <= info["error_before"]
    assert info["error_after"] < info["error_before"]  # 5 steps at this lr do help
    # The returned code really renders at the reported error.
    with torch.no_grad():
        img = stages.render(tiny_bundle, refined, stages.Cost(1.0, tiny_bundle.resolution))
    got = np.abs(to_uint8(img)[0].astype(float) - target.astype(float)).mean()
    assert got < 255 and not torch.equal(refined, wplus)
