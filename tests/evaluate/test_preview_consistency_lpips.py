"""Preview consistency with LPIPS: when the VGG backbone file is there (here a seeded stand-in
in torchvision's layout, see conftest), every cost gets an LPIPS figure beside its PSNR."""

from __future__ import annotations

from shared.catalog.configs import get_model_config
from shared.catalog.preview_costs import DEFAULT_MIN_PSNR, cost_figures
from worker.anycost.preview_consistency import write_consistency


def test_lpips_beside_psnr_when_the_files_are_there(tiny_bundle, vgg_file, tmp_path, monkeypatch):
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_PATH", str(vgg_file))
    write_consistency(tiny_bundle.generator, "tiny-random", tmp_path, n=2)
    tiny = get_model_config("tiny-random")
    full = cost_figures(tiny, tmp_path, DEFAULT_MIN_PSNR, (1.0, 64))
    assert full["lpips"] == 0.0 and full["psnr"] == 100.0
    cheap = cost_figures(tiny, tmp_path, DEFAULT_MIN_PSNR, (0.25, 32))
    assert cheap["lpips"] is not None and cheap["lpips"] > 0 and cheap["untrained"] is True


def test_no_lpips_without_the_files(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_PATH", str(tmp_path / "missing.pth"))
    write_consistency(tiny_bundle.generator, "tiny-random", tmp_path, n=1)
    figures = cost_figures(get_model_config("tiny-random"), tmp_path, DEFAULT_MIN_PSNR, (0.5, 64))
    assert figures["lpips"] is None and figures["psnr"] < 100.0
