"""For imported NVIDIA weights a seed means the face of NVIDIA's grids: z follows their seed
convention (test_seeds.py), and mapping, truncation towards the file's w_avg and the synthesis
of our generator reproduce what NVIDIA's own code computed from the same pickle (expected.pt)."""

from __future__ import annotations

import pytest
import torch

from tests.synthesis.conftest import NV
from worker.render.images import to_uint8

pytestmark = pytest.mark.slow  # imports NVIDIA's pickles first (make test-fast leaves it out)


def test_truncation_goes_to_the_files_w_avg_and_renders_nvidias_images(nv_weights, reference_dir):
    from worker.anycost.bundle import load_bundle

    expected = torch.load(reference_dir / "nvidia-ada-res64" / "expected.pt", weights_only=True)
    bundle = load_bundle(NV, nv_weights, device="cpu")
    g = bundle.generator
    assert torch.allclose(bundle.w_avg().reshape(-1), expected["w_avg"], atol=1e-6)
    with torch.no_grad():
        w = g.mapping(expected["z"])
        wplus = g.broadcast(g.truncate(w, 0.7, bundle.w_avg()))
        assert torch.allclose(wplus, expected["ws_trunc07"], atol=1e-4)
        ours = g.synthesis(wplus, channels=1.0, resolution=64, noise_mode="const")
    diff = to_uint8(ours).astype(int) - to_uint8(expected["img_trunc07"]).astype(int)
    assert abs(diff).max() <= 1
