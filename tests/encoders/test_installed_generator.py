"""A config that already has a generator keeps it: the checkpoint's decoder is compared with it
(same network or not, max abs difference), and a generator of another architecture refuses."""

from __future__ import annotations

import shutil

import pytest
import torch

from tests.encoders import reference
from worker.anycost import weights
from worker.anycost.bundle import load_bundle

pytestmark = pytest.mark.slow




def test_same_and_different_decoders_are_reported(imported, released, tmp_path, cli):
    """The reference e4e and pSp files bundle the same decoder: importing pSp into the e4e
    config says "the same network" (difference 0). A decoder with one tensor shifted by 0.01
    is "NOT the same network", and the difference and its key are named. The installed
    generator is never replaced; the encoder is."""
    source, _ = imported("e4e")
    wdir = tmp_path / "w"
    shutil.copytree(source, wdir)
    generator = wdir / "generator_ref-e4e.pt"
    sha = weights.installed("ref-e4e", wdir)["generator"].sha256

    same = cli("--dir", str(wdir), "import-e4e", str(released("psp")), "--config", "ref-e4e")
    assert same.returncode == 0, same.stderr
    assert "is the same network: max abs weight difference 0" in same.stdout
    assert "imported generator" not in same.stdout and "imported encoder" in same.stdout
    assert weights.encoder_method("ref-e4e", wdir) == "psp"

    ckpt = reference.rebuild("psp")
    ckpt["state_dict"]["decoder.convs.3.conv.modulation.bias"] += 0.01
    shifted = tmp_path / "shifted.pt"
    torch.save(ckpt, shifted)
    del ckpt
    other = cli("--dir", str(wdir), "import-e4e", str(shifted), "--config", "ref-e4e")
    assert other.returncode == 0, other.stderr
    assert "NOT the same network: max abs weight difference 0.01 (at convs.3.conv.modulation.bias)" \
        in other.stdout
    assert "warning:" in other.stdout
    assert weights.installed("ref-e4e", wdir)["generator"].sha256 == sha
    assert torch.load(generator, weights_only=True)["g_ema"]["convs.3.conv.modulation.bias"].equal(
        reference.rebuild_key("e4e", "decoder.convs.3.conv.modulation.bias"))
    assert load_bundle("ref-e4e", wdir).encoder_method == "psp"
    listing = cli("--dir", str(wdir), "list")
    assert "[encoder: psp]" in listing.stdout


def test_a_generator_of_another_size_refuses(released, tmp_path, cli):
    """An NVIDIA import (64 px) under the same name: the 256 px decoder does not fit."""
    from tests.nvidia.conftest import REFERENCE
    from worker.anycost.nvidia.importer import import_nvidia

    wdir = tmp_path / "w"
    import_nvidia(REFERENCE / "network.pkl", "faces-64", wdir)
    result = cli("--dir", str(wdir), "import-e4e", str(released("e4e")), "--config", "faces-64")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "decoder does not fit config faces-64: resolution 256 (config says 64)" in result.stderr
    assert not (wdir / "encoder_faces-64.pt").exists()


def test_names(released, tmp_path, cli):
    wdir = str(tmp_path / "w")
    unnamed = cli("--dir", wdir, "import-e4e", str(released("e4e")))
    assert unnamed.returncode == 2 and "a 256 px decoder is not FFHQ config-f: name the config " \
        "with --config NAME" in unnamed.stderr
    builtin = cli("--dir", wdir, "import-e4e", str(released("e4e")), "--config", "tiny-random")
    assert builtin.returncode == 2 and "built-in Anycost config" in builtin.stderr
    bad = cli("--dir", wdir, "import-e4e", str(released("e4e")), "--config", "Bad/Name")
    assert bad.returncode == 2 and "config name" in bad.stderr
