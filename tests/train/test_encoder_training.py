"""Encoder training runs under torchrun on generator samples and writes an encoder file in the
released layout that ``load_encoder`` accepts for the generator it was trained for."""

from __future__ import annotations

import pytest
import torch

from tests.train.conftest import load_state, torchrun
from worker.anycost.checkpoints import load_encoder, load_generator


@pytest.mark.slow
def test_encoder_training_writes_a_loadable_encoder(teacher_file, tmp_path):
    out = tmp_path / "enc"
    args = ["encoder", "--teacher", str(teacher_file), "--out", str(out), "--name", "tiny",
            "--batch", "2", "--steps", "1", "--log-every", "1"]
    first = torchrun(1, args)
    assert "image loss at 1.0@32, 0.5@16" in first.stdout and "loss_w" in first.stdout
    g = load_generator(teacher_file)
    enc = load_encoder(out / "encoder_tiny.pt")
    assert enc.n_style == g.n_style and enc.style_dim == g.style_dim
    z = torch.randn(256, g.style_dim, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(enc.mean_latent, g.mapping(z).mean(0), atol=0.5)
    with torch.no_grad():
        image = g.synthesis(g.broadcast(g.mapping(z[:2])), noise_mode="const", impl="ref")
        wplus = enc(image)
    assert wplus.shape == (2, g.n_style, g.style_dim) and torch.isfinite(wplus).all()
    again = torchrun(1, [*args[:-4], "--steps", "2", "--log-every", "1", "--resume"])
    assert "steps 1->2" in again.stdout and load_state(out)["step"] == 2
