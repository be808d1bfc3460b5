"""NVIDIA-style projection (worker.render.projector): the schedule, the noise regulariser, a code
on the W manifold; on a generator's own samples, what W projection recovers that today's W+ fit
does not (the code, the face without the photo's noise, edits that move it as the true code's
do); and renders at the model's own resolution when its smaller outputs are not trained to match.

Two tiny models: ``tiny-random`` (64 px, style_dim 512) for the mechanics, and the training
tests' tiny teacher (32 px, style_dim 32, ``tests.train.conftest``) for the comparisons: its w is
identifiable from its image (the Jacobian of the image in w has full rank 32, condition ~20), so
"recovers the true code" is a fair question. On tiny-random (512 dimensions, most of which barely
move its 64 px image) neither method approaches the true w: Adam's per-coordinate steps let the
insensitive coordinates wander (code MSE to the true w 0.37 at w_avg, 0.67 (W) and 0.45 (W+)
after 150 steps), and the W+ fit reaches the lower pixel error (0.0029 vs 0.0072).
"""

from __future__ import annotations

import copy
import json
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F

from shared.catalog.configs import get_model_config
from tests.train.conftest import tiny_teacher
from worker.anycost.bundle import ModelBundle
from worker.render import projection, projector
from worker.render.images import from_uint8, to_uint8

STEPS = 40


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from worker.anycost.bundle import load_bundle
    from worker.anycost.weights import ensure_tiny_random

    directory = tmp_path_factory.mktemp("weights")
    ensure_tiny_random(directory)
    return load_bundle("tiny-random", directory)


@pytest.fixture(scope="module")
def own_sample(tiny):
    """Two of the generator's own faces and their true W+ codes (w in every slot)."""
    g = tiny.generator
    z = torch.randn(2, g.style_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        true = g.mapping(z).unsqueeze(1).expand(-1, g.n_style, -1).contiguous()
        image = g.synthesis(true, noise_mode="const", impl="ref")
    return true, to_uint8(image)


@pytest.fixture(scope="module")
def projected(tiny, own_sample):
    return projector.project(tiny, own_sample[1], STEPS)


def test_learning_rate_ramps_up_then_down_and_w_noise_fades():
    assert projector.learning_rate(0.0) == 0.0
    assert projector.learning_rate(0.5) == pytest.approx(projector.LEARNING_RATE)
    assert projector.learning_rate(0.01) < projector.learning_rate(0.04) < projector.LEARNING_RATE
    assert projector.learning_rate(0.9) < projector.learning_rate(0.8) < projector.LEARNING_RATE
    assert projector.learning_rate(0.999) < 1e-3 * projector.LEARNING_RATE
    assert projector.w_noise_scale(0.0, 2.0) == pytest.approx(2.0 * projector.NOISE_FACTOR)
    assert projector.w_noise_scale(0.75, 2.0) == 0.0 and projector.w_noise_scale(0.9, 2.0) == 0.0


def test_noise_regulariser_punishes_structure_not_white_noise():
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(1, 1, 32, 32, generator=g)]
    smooth = [torch.ones(1, 1, 32, 32)]
    assert projector.noise_regularizer(white) < 0.01
    assert projector.noise_regularizer(smooth) > 1.0


def test_the_projected_code_is_one_w_and_beats_its_start(tiny, own_sample, projected):
    true, targets = own_sample
    code, info = projected
    assert code.shape == true.shape
    assert torch.equal(code, code[:, :1].expand_as(code)), "every slot holds the same w"
    assert info["method"] == projector.METHOD and info["steps"] == STEPS
    start = projection.average_code(tiny, 2)
    with torch.no_grad():
        at_start = tiny.generator.synthesis(start, noise_mode="const", impl="ref")
    error_start = float(torch.nn.functional.mse_loss(at_start, from_uint8(targets, "cpu")))
    assert info["error"] < 0.5 * error_start
    assert math.isfinite(info["final_distance"])


def test_wplus_stage_refines_from_the_w_code(tiny, own_sample):
    _, targets = own_sample
    code, info = projector.project(tiny, targets, STEPS, wplus_steps=10)
    assert info["method"] == f"{projector.METHOD}+wplus" and info["wplus_steps"] == 10
    assert not torch.equal(code, code[:, :1].expand_as(code)), "W+ refinement frees the slots"


def test_the_fallback_distance_is_a_sum_over_faces():
    # Each face's fit must not depend on how many faces share the batch (LPIPS sums too).
    g = torch.Generator().manual_seed(1)
    image, target = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    both = projector._distance(None, image, target)
    alone = sum(projector._distance(None, image[i:i + 1], target[i:i + 1]) for i in range(2))
    assert float(both) == pytest.approx(float(alone), rel=1e-6)


# --------------------------------------------------------------------------- the comparisons

COMPARE_STEPS = 300


@pytest.fixture(scope="module")
def teacher():
    g = tiny_teacher()
    return ModelBundle(config="tiny-teacher", generator=g, encoder=None, directions=None,
                       pretrained=False, resolution=g.resolution, n_style=g.n_style,
                       device=torch.device("cpu"))


def _render(g, wplus, resolution=None):
    with torch.no_grad():
        return g.synthesis(wplus, resolution=resolution, noise_mode="const", impl="ref")


@pytest.fixture(scope="module")
def own_faces(teacher):
    """Four of the teacher's own faces: their true W+ codes, their clean renders (the fixed
    noise buffers, as the service renders), and the 'photos': the same codes rendered with other
    noise maps (seed 77; MSE 0.012 from the clean renders), as a photo's texture is not the model's."""
    g = teacher.generator
    z = torch.randn(4, g.style_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        true = g.broadcast(g.mapping(z))
        photos = g.synthesis(true, noise_mode="random", impl="ref",
                             generator=torch.Generator().manual_seed(77))
    return true, _render(g, true), to_uint8(photos)


@pytest.fixture(scope="module")
def both_fits(teacher, own_faces):
    """The W projection and the W+ fit, run side by side in two threads (each on its own copy
    of the generator, nothing shared; the tiny model's steps are too small to keep 2 cores busy
    one at a time). Each computes exactly what it computes alone (the same ops on the same
    2-thread pool): the codes are bit-identical to running them one after the other."""
    torch.set_num_threads(2)
    photos = own_faces[2]
    with ThreadPoolExecutor(2) as pool:
        w_fit = pool.submit(projector.project, teacher, photos, COMPARE_STEPS)
        wplus_fit = pool.submit(projection.project, copy.deepcopy(teacher), photos, COMPARE_STEPS)
        return w_fit.result()[0], wplus_fit.result()[0]


@pytest.mark.slow
def test_w_projection_recovers_the_code_and_the_face_the_wplus_fit_does_not(teacher, own_faces,
                                                                           both_fits):
    """300 steps each, fitted to the noisy photos, judged against the true code and its clean
    render (MSE, [-1, 1] units; LPIPS is not on this machine). Measured: code MSE to the true w
    0.557 at w_avg -> 0.099 (W) vs 0.730 (W+: it ends farther than it started); clean-face MSE
    per face W 0.0006 0.0004 0.106 0.0012 vs W+ 0.0028 0.0056 0.111 0.0069 (the third face,
    the farthest from w_avg, stays in a local minimum with either: medians, 0.0006 vs 0.0056).
    Not true, and not asserted: that W is closer to the photo itself, or when the photo carries
    the model's own noise (then W+ fits the pixels as well or better, mean over the faces:
    0.0051 vs 0.0039 after 150 steps, 0.0033 vs 0.0032 after 400), nor on tiny-random (module
    doc)."""
    true, clean, _ = own_faces
    w_code, wplus_code = both_fits
    g = teacher.generator
    start = projection.average_code(teacher, 4)

    def code_mse(code):
        return float((code - true).pow(2).mean())

    assert code_mse(w_code) < 0.4 * code_mse(start)
    assert code_mse(wplus_code) > 0.9 * code_mse(start)

    def face_mse(code):
        return (_render(g, code) - clean).pow(2).mean((1, 2, 3)).median()

    assert face_mse(w_code) < 0.5 * face_mse(wplus_code)


@pytest.mark.slow
def test_an_edit_of_the_projected_code_moves_the_face_as_the_true_codes_edit(teacher, own_faces,
                                                                            both_fits):
    """8 random W directions (norm 3; |w - w_avg| is about 4.2 here) added to the true codes and
    to the W-projected ones: every (face, direction) moves the image by 0.4x to 2.5x what the
    same edit moves the true face (measured 0.51x to 1.06x, median 0.97x), and the edited faces
    stay closer to the true edited faces than the W+ fit's edits do (median MSE over the 32,
    measured 0.0024 vs 0.070: the W+ code's slots answer an edit unlike one w does)."""
    true, _, _ = own_faces
    w_code, wplus_code = both_fits
    g = teacher.generator
    directions = torch.randn(8, g.style_dim, generator=torch.Generator().manual_seed(9))
    directions = 3.0 * directions / directions.norm(dim=1, keepdim=True)

    def moved(code):
        base = _render(g, code)
        return torch.stack([(_render(g, code + d) - base).abs().mean((1, 2, 3))
                            for d in directions])

    ratio = moved(w_code) / moved(true)
    assert 0.4 < float(ratio.min()) and float(ratio.max()) < 2.5, ratio

    def edited_mse(code):
        return torch.stack([(_render(g, code + d) - _render(g, true + d)).pow(2).mean((1, 2, 3))
                            for d in directions]).median()

    assert edited_mse(w_code) < 0.5 * edited_mse(wplus_code)


@pytest.mark.slow
def test_a_fit_at_a_lower_resolution_renders_the_model_at_its_own(teacher, own_faces):
    """The teacher's 16 px output was never trained to match its 32 px one (as in an imported
    NVIDIA network at 256 of 1024 px). Fitted at 16 px for 100 steps and judged at 32 px
    (median MSE over the four faces; w_avg: 0.080): rendering the 16 px output gives 0.041 (W)
    and 0.056 (W+); rendering 32 px box-filtered to 16 (NVIDIA's way) 0.0062 and 0.0057. (The
    far third face sits in a local minimum either way; the median does not hang on it.)"""
    _, clean, _ = own_faces
    targets = to_uint8(F.adaptive_avg_pool2d(clean, 16))
    g = teacher.generator
    with ThreadPoolExecutor(2) as pool:  # four independent fits, side by side (see both_fits)
        fits = {method: (pool.submit(method, copy.deepcopy(teacher), targets, 100),
                         pool.submit(method, copy.deepcopy(teacher), targets, 100,
                                     render_resolution=32))
                for method in (projector.project, projection.project)}
    for method, (wrong_fit, right_fit) in fits.items():
        wrong = wrong_fit.result()[0]
        right, info = right_fit.result()
        assert info["resolution"] == 16
        error = {name: float((_render(g, code) - clean).pow(2).mean((1, 2, 3)).median())
                 for name, code in (("wrong", wrong), ("right", right))}
        assert error["right"] < 0.25 * error["wrong"], (method, error)


def test_the_render_resolution_follows_the_measured_consistency(tmp_path):
    config = get_model_config("tiny-random")

    def measured(psnr: float) -> int:
        costs = [{"channels": 1.0, "resolution": 32, "psnr": psnr, "lpips": None}]
        (tmp_path / "consistency_tiny-random.json").write_text(json.dumps(
            {"version": 1, "config": "tiny-random", "resolution": 64, "costs": costs}))
        return projection.fit_render_resolution(64, 32, config, tmp_path, 24.0)

    assert projection.fit_render_resolution(64, 64, config, tmp_path, 24.0) == 64
    assert projection.fit_render_resolution(64, 32, config, tmp_path, 24.0) == 32  # unmeasured
    assert measured(18.0) == 64  # below the bar: render the full model, box-filter to 32
    assert measured(30.0) == 32
