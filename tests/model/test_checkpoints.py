"""Checkpoint loading: shape inference on the reference generator and every bad-file case.

Each bad file must surface as a CheckpointError whose message names the file and the problem.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from worker.anycost.checkpoints import (
    CheckpointError,
    describe_layout,
    detect_kind,
    generator_state_dict,
    infer_generator_config,
    load_boundaries,
    load_encoder,
    load_generator,
    read_checkpoint,
)


@pytest.fixture(scope="module")
def ref_generator_path(res64_dir) -> Path:
    return res64_dir / "generator.pt"


@pytest.fixture(scope="module")
def ref_sd(ref_generator_path) -> dict:
    return generator_state_dict(ref_generator_path)


def _save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def _raises(fn, path: Path, *fragments: str) -> str:
    with pytest.raises(CheckpointError) as info:
        fn(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message
    return message


def test_reference_generator_config_is_inferred(ref_sd, ref_generator_path):
    config = infer_generator_config(ref_sd, ref_generator_path)
    assert config["resolution"] == 64
    assert config["channel_max"] == 64
    assert config["style_dim"] == 512
    assert config["n_mlp"] == 8


def test_load_generator_reference_is_strict_and_ready(ref_generator_path, ref_sd):
    g = load_generator(ref_generator_path)
    assert (g.resolution, g.channel_max, g.n_style) == (64, 64, 10)
    assert not g.training
    assert not any(p.requires_grad for p in g.parameters())
    loaded = g.state_dict()
    assert set(loaded) == set(ref_sd)
    for key, value in ref_sd.items():
        assert torch.equal(loaded[key], value), key


def test_load_generator_renders_reference_output(ref_generator_path, res64_inputs, res64_outputs):
    g = load_generator(ref_generator_path)
    with torch.no_grad():
        image = g.synthesis(res64_inputs["wplus"])
    assert image.shape == (2, 3, 64, 64)
    assert torch.allclose(image, res64_outputs["uniform_r1.00_res64"], atol=1e-4)


def test_missing_file(tmp_path):
    _raises(load_generator, tmp_path / "nope.pt", "no such file")


def test_directory_is_not_a_file(tmp_path):
    _raises(load_generator, tmp_path, "directory")


def test_zero_bytes(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    _raises(load_generator, path, "empty", "0 bytes")


def test_truncated_zip(tmp_path, ref_generator_path):
    path = tmp_path / "truncated.pt"
    path.write_bytes(ref_generator_path.read_bytes()[: 1 << 20])
    _raises(load_generator, path, "truncated")


def test_text_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
    msg = _raises(load_generator, path, "text file", "git-lfs")
    assert "\n" not in msg


def test_html_page(tmp_path):
    path = tmp_path / "generator.pt"
    path.write_text("\n<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>")
    _raises(load_generator, path, "HTML page")


def test_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="JPEG")
    path = tmp_path / "photo.pt"
    path.write_bytes(buf.getvalue())
    _raises(load_generator, path, "JPEG image")


def test_unknown_binary(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 4)
    _raises(load_generator, path, "not a PyTorch checkpoint")


def test_pickle_needing_unsafe_globals_is_refused(tmp_path, ref_sd):
    path = _save(tmp_path / "training.pt", {"g_ema": ref_sd, "args": argparse.Namespace(lr=0.002)})
    _raises(load_generator, path, "unsafe global", "argparse.Namespace")


def test_encoder_file_given_as_generator(tmp_path):
    encoder_like = {"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7),
                                   "fc.weight": torch.zeros(5120, 2048),
                                   "mean_latent": torch.zeros(512)}}
    path = _save(tmp_path / "encoder.pt", encoder_like)
    _raises(load_generator, path, "wrong layout", "encoder checkpoint")


def test_generator_file_given_as_encoder(tmp_path, ref_generator_path):
    _raises(load_encoder, ref_generator_path, "wrong layout", "generator checkpoint")


def test_generator_file_given_as_boundaries(ref_generator_path):
    _raises(load_boundaries, ref_generator_path, "wrong layout", "generator checkpoint")


def test_bare_state_dict_gets_a_hint(tmp_path, ref_sd):
    path = _save(tmp_path / "bare.pt", ref_sd)
    _raises(load_generator, path, "bare generator state_dict", "{'g_ema': state_dict}")


def test_missing_keys_are_listed_by_name(tmp_path, ref_sd):
    sd = dict(ref_sd)
    del sd["convs.1.noise.weight"], sd["to_rgbs.0.bias"]
    path = _save(tmp_path / "missing.pt", {"g_ema": sd})
    _raises(load_generator, path, "missing keys (2)", "convs.1.noise.weight", "to_rgbs.0.bias")


def test_unexpected_keys_are_listed_by_name(tmp_path, ref_sd):
    sd = dict(ref_sd, **{"extra.weight": torch.zeros(3), "convs.99.bias": torch.zeros(1)})
    path = _save(tmp_path / "unexpected.pt", {"g_ema": sd})
    _raises(load_generator, path, "unexpected keys (2)", "extra.weight", "convs.99.bias")


def test_many_missing_keys_are_summarised(tmp_path, ref_sd):
    sd = {k: v for k, v in ref_sd.items() if not k.endswith("noise.weight")}
    path = _save(tmp_path / "nonoise.pt", {"g_ema": sd})
    message = _raises(load_generator, path, "missing keys (9)", "conv1.noise.weight")
    assert "... and 1 more" in message and len(message) < 600


def test_wrong_shapes_are_listed(tmp_path, ref_sd):
    sd = dict(ref_sd)
    sd["conv1.activate.bias"] = torch.zeros(32)
    path = _save(tmp_path / "shape.pt", {"g_ema": sd})
    _raises(load_generator, path, "wrong shapes (1)", "conv1.activate.bias is [32], expected [64]")


def test_uninferable_generator(tmp_path, ref_sd):
    sd = {k: v for k, v in ref_sd.items() if k != "input.input"}
    path = _save(tmp_path / "noinput.pt", {"g_ema": sd})
    _raises(load_generator, path, "cannot infer", "input.input")


def test_boundaries_accept_flat_vectors(tmp_path):
    flat = {"31_Smiling": torch.ones(512), "39_Young": torch.ones(1, 512)}
    path = _save(tmp_path / "boundary.pt", flat)
    dirs = load_boundaries(path)
    assert set(dirs) == {"31_Smiling", "39_Young"}
    assert all(v.shape == (1, 512) and v.dtype == torch.float32 for v in dirs.values())


def test_boundaries_reject_zero_direction(tmp_path):
    path = _save(tmp_path / "boundary.pt", {"31_Smiling": torch.zeros(1, 512)})
    _raises(load_boundaries, path, "31_Smiling", "zero or not finite")


def test_legacy_pickle_format_is_read(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"31_Smiling": torch.ones(1, 512)}, path, _use_new_zipfile_serialization=False)
    assert set(read_checkpoint(path)) == {"31_Smiling"}


def test_detect_and_describe_layouts(ref_sd):
    assert detect_kind({"g_ema": ref_sd}) == "generator"
    assert detect_kind({"state_dict": {"fc.weight": torch.zeros(2, 2)}}) == "encoder"
    assert detect_kind({"00_5_o_Clock_Shadow": torch.zeros(1, 512)}) == "boundary"
    assert detect_kind(ref_sd) is None
    assert detect_kind([1, 2]) is None
    assert "bare generator" in describe_layout(ref_sd)
    assert "'foo'" in describe_layout({"foo": 1})
