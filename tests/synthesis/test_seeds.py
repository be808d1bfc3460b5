"""Seeds -> W+: NVIDIA's z convention, truncation towards w_avg, style mixing by slot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.render.synthesis import SynthesisSpec, wplus_for, z_for_seed


def test_z_follows_nvidias_seed_convention():
    z = z_for_seed(85)
    assert z.shape == (1, 512) and z.dtype == torch.float32
    assert torch.equal(z, torch.from_numpy(np.random.RandomState(85).randn(1, 512)).float())
    assert not torch.equal(z, z_for_seed(86))
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match="seed"):
            z_for_seed(bad)


def test_same_seed_same_code_and_truncation_zero_is_w_avg(tiny_bundle):
    g, w_avg = tiny_bundle.generator, tiny_bundle.w_avg()
    a = wplus_for(g, SynthesisSpec(265, 0.7), w_avg)
    assert torch.equal(a, wplus_for(g, SynthesisSpec(265, 0.7), w_avg))
    assert a.shape == (1, g.n_style, g.style_dim)
    for seed in (1, 2, 3):
        w0 = wplus_for(g, SynthesisSpec(seed, 0.0), w_avg)
        assert torch.allclose(w0, w_avg.reshape(1, 1, -1).expand_as(w0), atol=1e-6)
    full = wplus_for(g, SynthesisSpec(265, 1.0), w_avg)
    assert torch.allclose(full[0, 0], g.mapping(z_for_seed(265)).reshape(-1), atol=1e-6)


def test_mixing_changes_only_the_slots_from_from_slot(tiny_bundle):
    g, w_avg = tiny_bundle.generator, tiny_bundle.w_avg()
    plain = wplus_for(g, SynthesisSpec(297, 0.7), w_avg)
    mixed = wplus_for(g, SynthesisSpec(297, 0.7, mix_seed=1000, mix_from_slot=6), w_avg)
    other = wplus_for(g, SynthesisSpec(1000, 0.7), w_avg)
    assert torch.equal(mixed[:, :6], plain[:, :6])
    assert torch.equal(mixed[:, 6:], other[:, 6:])
    assert not torch.equal(mixed, plain)
    with pytest.raises(ValueError, match="from_slot"):
        wplus_for(g, SynthesisSpec(1, 0.7, mix_seed=2, mix_from_slot=g.n_style + 1), w_avg)
