"""Measured preview costs of tiny-random: every cost measured against the full render when the
generator is installed, its (untrained) default preview is the full network, and
``weights consistency`` measures again."""

from __future__ import annotations

import json

from shared.catalog.configs import get_model_config
from shared.catalog.preview_costs import (
    DEFAULT_MIN_PSNR,
    IDENTICAL_PSNR,
    cost_figures,
    default_preview,
    legacy_preview,
    read_consistency,
    sidecar_path,
)
from shared.recipe.parse import CHANNEL_RATIOS, allowed_resolutions
from worker.anycost import weights
from worker.anycost.checkpoints import load_generator
from worker.anycost.preview_consistency import measure
from worker.anycost.weights.cli import run

TINY = get_model_config("tiny-random")


def test_installing_tiny_random_measures_every_cost(tiny_weights_dir):
    weights.ensure_tiny_random(tiny_weights_dir)
    data = json.loads(sidecar_path(tiny_weights_dir, "tiny-random").read_text())
    costs = {(c["channels"], c["resolution"]): c for c in data["costs"]}
    assert set(costs) == {(c, r) for c in CHANNEL_RATIOS for r in allowed_resolutions(64)}
    assert costs[(1.0, 64)]["psnr"] == IDENTICAL_PSNR  # the full network is the final itself
    assert data["n"] >= 4 and data["config"] == "tiny-random"
    # untrained sub-networks of random weights: every cheaper cost is far from the final
    assert all(c["psnr"] < DEFAULT_MIN_PSNR for k, c in costs.items() if k != (1.0, 64))


def test_untrained_default_preview_is_the_full_network(tiny_weights_dir):
    weights.ensure_tiny_random(tiny_weights_dir)
    assert legacy_preview(64) == (0.5, 32)  # what it was before it was measured
    assert default_preview(TINY, tiny_weights_dir, DEFAULT_MIN_PSNR) == (1.0, 64)
    assert cost_figures(TINY, tiny_weights_dir, DEFAULT_MIN_PSNR, (0.5, 32))["untrained"] is True
    assert cost_figures(TINY, tiny_weights_dir, DEFAULT_MIN_PSNR, (1.0, 64))["untrained"] is False
    # a lower bar admits a cheaper measured cost: the rule follows the numbers
    figures = read_consistency(tiny_weights_dir, "tiny-random")["by_cost"]
    low = min(f["psnr"] for f in figures.values()) - 0.01
    assert default_preview(TINY, tiny_weights_dir, low) != (1.0, 64)


def test_measurement_is_deterministic(tiny_bundle):
    a = measure(tiny_bundle.generator, n=2, lpips=False)
    b = measure(tiny_bundle.generator, n=2, lpips=False)
    assert [c["psnr"] for c in a["costs"]] == [c["psnr"] for c in b["costs"]]


def test_consistency_command_measures_again(tmp_path, capsys):
    weights.ensure_tiny_random(tmp_path)
    path = sidecar_path(tmp_path, "tiny-random")
    path.unlink()
    assert read_consistency(tmp_path, "tiny-random") is None
    assert default_preview(TINY, tmp_path, DEFAULT_MIN_PSNR) == (0.5, 32)  # unmeasured
    assert run(["--dir", str(tmp_path), "consistency", "tiny-random"]) == 0
    out = capsys.readouterr().out
    assert "default preview: 1@64" in out and "untrained" in out
    assert read_consistency(tmp_path, "tiny-random") is not None
    assert run(["--dir", str(tmp_path), "list"]) == 0
    assert "default preview: 1@64 (measured" in capsys.readouterr().out


def test_consistency_of_a_missing_generator_is_one_line(tmp_path, capsys):
    assert run(["--dir", str(tmp_path), "consistency", "stylegan2-ffhq-config-f"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model stylegan2-ffhq-config-f: no generator installed")
    assert len(err.strip().splitlines()) == 1


def test_training_output_is_measured_like_an_install(tiny_weights_dir, tmp_path):
    from worker.train.cli import measure_output

    files = weights.ensure_tiny_random(tiny_weights_dir)
    out = tmp_path / "run"
    out.mkdir()
    (out / "generator_mine.pt").write_bytes(files["generator"].path.read_bytes())
    path = measure_output(out, "mine")
    assert path == out / "consistency_mine.json"
    ours = json.loads(path.read_text())["costs"]
    theirs = json.loads(sidecar_path(tiny_weights_dir, "tiny-random").read_text())["costs"]
    assert [c["psnr"] for c in ours] == [c["psnr"] for c in theirs]
    assert load_generator(out / "generator_mine.pt").resolution == 64
