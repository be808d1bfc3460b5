"""Stage 2's building blocks, in process: channel sorting is a permutation (the full network's
output is unchanged), sub-network sampling and the g_arch encoding, D initialisation from a
single-resolution D, the data sampler's sharding, stddev grouping."""

from __future__ import annotations

import random

import pytest
import torch

from tests.train.conftest import tiny_teacher
from worker.anycost.discriminator import Discriminator, DiscriminatorMultiRes
from worker.train import channels as chan
from worker.train.critic import MultiResCritic, init_from_single_res
from worker.train.data import ShardedBatchSampler


def _render(g, ratio=None):
    z = torch.randn(6, g.style_dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        return g.synthesis(g.broadcast(g.mapping(z)), ratio, None, "const", "ref")


@pytest.mark.slow
def test_sorting_is_a_permutation_that_keeps_the_full_output():
    g = tiny_teacher().double()
    before_full, before_half = _render(g), _render(g, 0.25)
    perms = chan.sort_channels(g)
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)  # something moved
    for p in perms:
        assert torch.equal(p.sort().values, torch.arange(len(p)))
    assert torch.allclose(_render(g), before_full, atol=1e-10, rtol=0)
    assert not torch.allclose(_render(g, 0.25), before_half, atol=1e-3)  # sub-networks differ
    # Sorted: the first channels are the most important ones.
    for score in chan.channel_importance(g):
        assert torch.all(score[:-1] >= score[1:] - 1e-12)


@pytest.mark.slow
def test_sorting_helps_the_narrowest_subnetwork():
    g = tiny_teacher().double()
    full = _render(g)
    err_before = float((_render(g, 0.25) - full).pow(2).mean())
    chan.sort_channels(g)
    assert float((_render(g, 0.25) - full).pow(2).mean()) < err_before


def test_g_arch_encoding():
    g = tiny_teacher()
    full = g.channel_config(None)
    arch = chan.g_arch(g, full)
    assert arch.shape == (4 * g.n_style,)
    assert torch.equal(arch.view(-1, 4), torch.tensor([[0, 0, 0, 1.0]]).repeat(len(full), 1))
    quarter = chan.g_arch(g, g.channel_config(0.25)).view(-1, 4)
    assert torch.equal(quarter[-1], torch.tensor([1.0, 0, 0, 0]))  # the last level: 8 of 32
    assert torch.allclose(quarter.sum(1), torch.ones(len(full)))
    between = chan.g_arch(g, [c * 5 // 8 for c in full]).view(-1, 4)  # 0.625: half 0.5, half 0.75
    assert torch.allclose(between[0], torch.tensor([0, 0.5, 0.5, 0]))
    d = DiscriminatorMultiRes(32, 2, 4, modulate=True, channel_max=32)
    assert d.g_arch_len == arch.numel()


def test_sampled_configs_cover_uniform_and_flexible():
    g = tiny_teacher()
    rng = random.Random(0)
    configs = [tuple(chan.sample_channels(g, rng)) for _ in range(200)]
    uniform = {tuple(g.channel_config(r)) for r in chan.ANCHORS}
    assert uniform <= set(configs)
    assert any(c not in uniform for c in configs)
    for c in configs:
        g.channel_config(list(c))  # valid per-layer configs


def test_multires_d_starts_from_single_res_d():
    single = Discriminator(32, 2, channel_max=32)
    for modulate in (False, True):
        d = DiscriminatorMultiRes(32, 2, 4, modulate=modulate, channel_max=32)
        report = init_from_single_res(d, single.state_dict())
        assert not report["skipped"]
        sd = d.state_dict()
        assert torch.equal(sd["convs.0.0.weight"], single.state_dict()["convs.0.0.weight"])
        key = "blocks.2.conv2.3.bias" if modulate else "blocks.2.conv2.2.bias"
        assert torch.equal(sd[key], single.state_dict()["convs.3.conv2.2.bias"])
        x = torch.randn(4, 3, 32, 32)
        arch = torch.zeros(d.g_arch_len) if modulate else None
        if not modulate:  # same weights, same function at the top resolution
            assert torch.allclose(d(x), single(x), atol=1e-5)
        else:
            assert d(x, arch).shape == (4, 1)


def test_stddev_groups_are_contiguous_blocks():
    d = DiscriminatorMultiRes(8, 2, 1, modulate=False, channel_max=8).double()
    critic = MultiResCritic(d)
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    whole = critic([x])[0]
    halves = torch.cat([critic([x[:4]])[0], critic([x[4:]])[0]])
    assert torch.allclose(whole, halves, atol=1e-12)  # two processes of 4 == one of 8
    with pytest.raises(ValueError):
        critic([x[:6]])


def test_sampler_shards_global_batches_contiguously():
    one = ShardedBatchSampler(20, 6, 0, 1, seed=5)
    parts = [ShardedBatchSampler(20, 3, r, 2, seed=5) for r in range(2)]
    for step in range(7):  # crosses epochs (3 batches of 6 per epoch)
        assert one.indices_for_step(step) == sum((p.indices_for_step(step) for p in parts), [])
    epoch0 = sum((one.indices_for_step(s) for s in range(3)), [])
    assert len(set(epoch0)) == 18  # no repeats within an epoch
    assert one.indices_for_step(3) != one.indices_for_step(0)  # a new order each epoch
    resumed = ShardedBatchSampler(20, 6, 0, 1, seed=5, start_step=4)
    assert next(iter(resumed)) == one.indices_for_step(4)


def test_dataset_reads_folders_and_zips_and_survives_a_broken_file(tmp_path):
    import zipfile

    import numpy as np
    from PIL import Image

    from worker.train.data import ImageDataset

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 100 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "2.png").write_bytes(b"not a png")
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as zf:
        for i in range(2):
            zf.write(folder / f"{i}.png", f"a/{i}.png")
    zipped = ImageDataset(tmp_path / "faces.zip", 8, hflip=True)
    assert len(zipped) == 4 and zipped[1].shape == (3, 8, 8)
    assert torch.allclose(zipped[1], torch.full((3, 8, 8), 100 / 127.5 - 1))
    folder_set = ImageDataset(folder, 8)
    with pytest.warns(UserWarning, match="2.png: unreadable image skipped"):
        substitute = folder_set[2]
    assert torch.equal(substitute, folder_set[0])  # the next file, deterministically
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageDataset(tmp_path / "nothing", 8)
