"""PPL and preview/final consistency on the tiny model: deterministic for a seed, consistency at
full cost exactly 0, LPIPS only from files on disk (a clear error naming the file otherwise),
and the command line."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from shared.recipe.parse import Cost
from worker.anycost.perceptual import LpipsMissing, load_lpips, lpips_problem
from worker.evaluate.__main__ import main
from worker.evaluate.common import EvaluationError, all_costs
from worker.evaluate.consistency import evaluate_consistency
from worker.evaluate.ppl import evaluate_ppl
from worker.evaluate.ppl_distance import PplDistance
from worker.evaluate.runner import Request, run


@pytest.fixture(scope="module")
def lpips_vgg(vgg_file):
    return load_lpips("vgg", str(vgg_file))


@pytest.mark.slow
def test_consistency_is_deterministic_and_zero_at_full_cost(tiny_bundle, lpips_vgg):
    assert len(all_costs(tiny_bundle.resolution)) == 8  # 4 channel ratios x (32, 64) px
    costs = [Cost(0.25, 64), Cost(1.0, 64)]
    first = evaluate_consistency(tiny_bundle, 2, costs, seed=11, lpips_net=lpips_vgg,
                                 lpips_name="lpips_vgg")
    again = evaluate_consistency(tiny_bundle, 2, costs, seed=11, lpips_net=lpips_vgg,
                                 lpips_name="lpips_vgg")
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in first["results"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in again["results"]]
    cheap, full = first["results"]
    assert full["mse"] == 0.0 and full["lpips"] == 0.0 and full["psnr"] is None
    assert cheap["mse"] > 0 and cheap["lpips"] > 0 and math.isfinite(cheap["psnr"])
    assert first["distance"] == "lpips_vgg"


@pytest.mark.slow
def test_consistency_of_every_cost_without_lpips(tiny_bundle):
    costs = all_costs(tiny_bundle.resolution)
    first = evaluate_consistency(tiny_bundle, 2, costs, seed=11)
    other = evaluate_consistency(tiny_bundle, 2, costs, seed=12)
    by_cost = {(r["channels"], r["resolution"]): r for r in first["results"]}
    assert by_cost[(1.0, 64)]["mse"] == 0.0
    for key, row in by_cost.items():
        assert row["lpips"] is None
        if key != (1.0, 64):
            assert row["mse"] > 0 and math.isfinite(row["psnr"]), key
    # cheaper previews at the same resolution predict the final less well
    assert by_cost[(0.25, 64)]["mse"] > by_cost[(0.75, 64)]["mse"]
    assert other["results"][0]["mse"] != first["results"][0]["mse"]


def test_consistency_without_lpips_reports_mse_and_psnr(tiny_bundle, tiny_weights_dir, tmp_path):
    from shared.platform.settings import Settings

    settings = Settings(model="tiny-random", weights_dir=tiny_weights_dir,
                        lpips_vgg_path=str(tmp_path / "absent.pth"))
    result = run(Request("consistency", n=2, channels=0.5), tiny_bundle, settings)
    assert [r["resolution"] for r in result["results"]] == [32, 64]
    assert all(r["lpips"] is None and r["mse"] > 0 for r in result["results"])
    assert result["model"] == "tiny-random" and result["pretrained"] is False


@pytest.mark.slow
def test_ppl_is_deterministic_for_a_seed(tiny_bundle, lpips_vgg):
    full = [Cost(1.0, 64)]
    distance = PplDistance.lpips(lpips_vgg)
    first = evaluate_ppl(tiny_bundle, distance, 3, full, seed=3)
    again = evaluate_ppl(tiny_bundle, distance, 3, full, seed=3)
    other = evaluate_ppl(tiny_bundle, distance, 3, full, seed=4)
    value = first["results"][0]["ppl"]
    assert value == again["results"][0]["ppl"]
    assert math.isfinite(value) and value > 0
    assert other["results"][0]["ppl"] != value
    # the default is StyleGAN2's ppl2_wend: W, end points, no crop, noise drawn per batch
    assert first["epsilon"] == 1e-4 and first["space"] == "w" and first["crop"] is False
    assert first["protocol"]["name"] == "ppl2_wend" and first["protocol"]["noise"] == "per_batch"
    assert first["distance"]["name"] == "lpips_vgg"
    sub = evaluate_ppl(tiny_bundle, distance, 3, [Cost(0.5, 32)], seed=3)
    assert sub["results"][0]["ppl"] != value


@pytest.mark.slow
def test_missing_lpips_backbone_is_a_clear_error(tiny_bundle, eval_settings, tmp_path):
    absent = tmp_path / "vgg16-397923af.pth"
    problem = lpips_problem("vgg", str(absent))
    assert str(absent) in problem and "ANYCOST_LPIPS_VGG_PATH" in problem
    with pytest.raises(EvaluationError) as err:
        run(Request("ppl", n=2), tiny_bundle, replace(eval_settings, lpips_vgg_path=str(absent)))
    assert err.value.code == "lpips_missing"
    wrong = tmp_path / "wrong.pth"
    import torch

    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(LpipsMissing) as bad:
        load_lpips("vgg", str(wrong))
    assert bad.value.code == "lpips_missing" and "state dict" in bad.value.message


@pytest.mark.slow
def test_command_line(tiny_weights_dir, vgg_file, vgg_sha256, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_PATH", str(vgg_file))
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_SHA256", vgg_sha256)
    args = ["--model", "tiny-random", "--weights-dir", tiny_weights_dir, "--device", "cpu"]
    assert main(["consistency", *args, "--n", "2", "--channels", "0.5", "--resolution", "64",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "consistency" and result["distance"] == "lpips_vgg"
    assert [(r["channels"], r["resolution"]) for r in result["results"]] == [(0.5, 64)]
    assert result["results"][0]["lpips"] > 0
    assert main(["ppl", *args, "--n", "2"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("ppl of tiny-random (RANDOM WEIGHTS)") and "1.0          64" in table
    assert "protocol ppl2_wend (space w, end, crop False" in table and "lpips_vgg" in table and vgg_sha256[:16] in table
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_SHA256", "ab" * 32)  # the file no longer fits
    assert main(["ppl", *args, "--n", "2"]) == 2
    assert "lpips_missing" in capsys.readouterr().err
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_SHA256", vgg_sha256)
    monkeypatch.setenv("ANYCOST_LPIPS_VGG_PATH", str(tmp_path / "absent.pth"))
    assert main(["ppl", *args, "--n", "2"]) == 2
    assert "lpips_missing" in capsys.readouterr().err
    assert main(["consistency", *args, "--n", "2", "--channels", "0.3"]) == 2
    assert "no cost with channels=0.3" in capsys.readouterr().err


@pytest.mark.slow
def test_alexnet_lpips_from_disk_for_refinement(tmp_path, monkeypatch):
    """The same loader builds refinement's LPIPS(alex) from torch hub's checkpoint folder."""
    import torch
    from torchvision.models import alexnet

    from worker.anycost.perceptual import backbone_file

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert lpips_problem("alex") is not None and "alexnet-owt-" in lpips_problem("alex")
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(alexnet().state_dict(), tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth")
    assert backbone_file("alex").name == "alexnet-owt-7be5be79.pth"
    net = load_lpips("alex")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert float(net(x, x).abs().max()) == 0.0 and float(net(x, x.flip(0)).min()) > 0
