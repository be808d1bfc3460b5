"""Fixtures for the evaluation tests: the packaged Inception (loaded once), an LPIPS VGG backbone
file on disk (torchvision's VGG16 layout with seeded random weights: the real ImageNet file
cannot be downloaded here, and the code path that finds, hash-free loads and maps it is the
same) and settings that point at them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shared.platform.settings import Settings


@pytest.fixture(scope="session")
def inception():
    from worker.evaluate.inception import load_inception

    return load_inception()


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory) -> Path:
    """``vgg16-397923af.pth``-shaped file: ``features.N.weight/bias`` of VGG16 (config D)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(1234)
    features = make_layers(cfgs["D"])
    path = tmp_path_factory.mktemp("lpips") / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="session")
def vgg_sha256(vgg_file) -> str:
    """PPL checks the backbone's hash: the random file's own (the real one is pinned)."""
    from worker.evaluate.inception import sha256_of

    return sha256_of(vgg_file)


@pytest.fixture
def eval_settings(vgg_file, vgg_sha256, tmp_path, tiny_weights_dir) -> Settings:
    return Settings(model="tiny-random", weights_dir=tiny_weights_dir,
                    lpips_vgg_path=str(vgg_file), lpips_vgg_sha256=vgg_sha256,
                    eval_cache_dir=str(tmp_path / "cache"))


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(2)
