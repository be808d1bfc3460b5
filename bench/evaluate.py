"""Benchmark the evaluation metrics on the tiny model: the numbers (FID and consistency at each
cost, FID and PPL under both protocols: NVIDIA's and the earlier one) and what they cost on this
machine (seconds per 1k images), measured side by side.

    python -m bench.evaluate                      # defaults: FID n=16, consistency n=64, PPL n=16
    python -m bench.evaluate --fid-n 64 --threads 2
    python -m bench.evaluate --inception-only --device cuda --json rows.jsonl   # the run-book's part

FID's reference is the full model's own samples (no data set needed); protocol ``nvidia`` is
NVIDIA's preprocessing and random noise, ``legacy`` the earlier F.interpolate resize and fixed
noise. PPL: ``ppl2_wend`` (StyleGAN2's number, no crop, noise per batch, unclamped) and
``legacy`` (face crop, fixed noise, clamped), also ``ppl_wend`` and ``ppl_zfull``. LPIPS uses the VGG16 file
at ANYCOST_LPIPS_VGG_PATH when it exists; otherwise a seeded random VGG16 of the same layout is
written to a temporary file, so the timings are real but the LPIPS/PPL *values* are not
meaningful (the output says which). Per-1k times are extrapolated from the measured runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from shared.platform.settings import Settings  # noqa: E402
from shared.recipe.parse import Cost  # noqa: E402
from worker.anycost.bundle import load_bundle  # noqa: E402
from worker.anycost.perceptual import backbone_file, load_lpips  # noqa: E402
from worker.evaluate.common import all_costs, render, sample_wplus  # noqa: E402
from worker.evaluate.consistency import evaluate_consistency  # noqa: E402
from worker.evaluate.fid import evaluate_fid  # noqa: E402
from worker.evaluate.inception import load_inception  # noqa: E402
from worker.evaluate.ppl import evaluate_ppl  # noqa: E402
from worker.evaluate.ppl_distance import PplDistance  # noqa: E402

FID_PROTOCOLS = ("nvidia", "legacy")
PPL_PROTOCOLS = ("ppl2_wend", "legacy", "ppl_wend", "ppl_zfull")


def _lpips(settings: Settings, tmp: Path):
    path = backbone_file("vgg", settings.lpips_vgg_path)
    if path.is_file():
        return load_lpips("vgg", str(path)), f"VGG16 from {path}"
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    fake = tmp / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}, fake)
    return load_lpips("vgg", str(fake)), "RANDOM VGG16 (no ImageNet file here): values not meaningful"


def _timed(fn, warm: bool = False):
    if warm:
        fn()  # first calls pay for allocations and thread pools
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def inception_rate(settings: Settings, device: torch.device, batch: int, repeats: int,
                   json_path: str | None) -> int:
    """Inception (FID's feature network) images/s on ``device``: ``batch`` random 256 px images
    per call (resized to 299 as in every FID), best of ``repeats`` after a warm-up."""
    from bench.runbook import peak_memory_gb, record, reset_peak_memory

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    inception = load_inception(settings.inception_path, settings.inception_sha256, device)
    images = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    inception.features(images, batch)  # warm-up
    reset_peak_memory(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        inception.features(images, batch)
        sync()
        best = min(best, time.perf_counter() - t0)
    print(f"Inception on {device}: {batch / best:.1f} images/s (batch {batch}, 256 px in)")
    record(json_path, "evaluate", f"Inception features, batch {batch}", batch / best, "img/s",
           "256 px in, 299 px net", peak_memory_gb(device))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fid-n", type=int, default=16)
    p.add_argument("--consistency-n", type=int, default=64)
    p.add_argument("--ppl-n", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--device", default="cpu", help="where Inception runs (--inception-only)")
    p.add_argument("--inception-only", action="store_true",
                   help="only Inception's images/s (256 px inputs, batch --batch) and peak memory")
    p.add_argument("--batch", type=int, default=64, help="Inception batch (--inception-only)")
    p.add_argument("--json", default=None, help="append the Inception row here (JSON lines)")
    p.add_argument("--smoke", action="store_true", help="seconds: --inception-only, 4 images")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Settings.from_env()
    if args.smoke or args.inception_only:
        return inception_rate(settings, torch.device(args.device), 4 if args.smoke else args.batch,
                              1 if args.smoke else 5, args.json)
    tmp = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    bundle = load_bundle("tiny-random", args.weights_dir or str(tmp / "weights"), device="cpu")
    costs = all_costs(bundle.resolution)
    inception = load_inception(settings.inception_path, settings.inception_sha256)
    lpips_net, lpips_note = _lpips(settings, tmp)
    print(f"tiny-random (64 px, random weights), CPU, {args.threads} torch threads")
    print(f"inception sha256 {inception.sha256[:16]}..., LPIPS: {lpips_note}\n")

    # Component speeds, side by side on the same 16 codes.
    codes = sample_wplus(bundle.generator, 16, seed=0)
    full = Cost(1.0, bundle.resolution)
    images, t_render = _timed(lambda: render(bundle.generator, codes, full), warm=True)
    feats, t_inception = _timed(lambda: inception.features(images, 16), warm=True)
    old_feats, t_old = _timed(lambda: inception.features(images, 16, resize="torch_bilinear"),
                              warm=True)
    gap = np.median(np.linalg.norm(feats - old_feats, axis=1) / np.linalg.norm(feats, axis=1))
    with torch.no_grad():
        _, t_lpips = _timed(lambda: lpips_net(images, images.flip(0)), warm=True)
    print("component                         s per 1k images")
    print(f"tiny render at full cost          {t_render / 16 * 1000:10.1f}")
    print(f"Inception features (299 px)       {t_inception / 16 * 1000:10.1f}"
          f"   ({t_inception / t_render:.0f}x the render)")
    print(f"Inception, earlier resize          {t_old / 16 * 1000:10.1f}"
          f"   (features differ from NVIDIA's by a median {100 * gap:.1f} %)")
    print(f"LPIPS VGG pair (64 px)            {t_lpips / 16 * 1000:10.1f}\n")

    fids = {p: _timed(lambda p=p: evaluate_fid(bundle, inception, args.fid_n, costs, seed=0,
                                               protocol=p)) for p in FID_PROTOCOLS}
    cons, t_cons = _timed(lambda: evaluate_consistency(
        bundle, args.consistency_n, costs, seed=0, lpips_net=lpips_net, lpips_name="lpips_vgg"))
    distance = PplDistance.lpips(lpips_net)
    ppls = {p: _timed(lambda p=p: evaluate_ppl(bundle, distance, args.ppl_n, [full], seed=0,
                                               protocol=p)) for p in PPL_PROTOCOLS}
    rows = {p: {(r["channels"], r["resolution"]): r["fid"] for r in f["results"]}
            for p, (f, _) in fids.items()}
    print(f"FID n={args.fid_n} (vs {args.fid_n} full-cost samples), protocols nvidia | legacy, "
          f"and consistency n={args.consistency_n} (final box-filtered to the preview size)")
    print("channels  res   FID nvidia  FID legacy        MSE   PSNR dB    LPIPS")
    for row in cons["results"]:
        key = (row["channels"], row["resolution"])
        psnr = "inf" if row["psnr"] is None else f"{row['psnr']:.2f}"
        print(f"{row['channels']:>8}  {row['resolution']:>3}  {rows['nvidia'][key]:10.2f}  "
              f"{rows['legacy'][key]:10.2f}  {row['mse']:9.5f}  {psnr:>8}  {row['lpips']:7.4f}")
    print(f"\nPPL n={args.ppl_n} at full cost (eps 1e-4; values with a random VGG are not "
          "comparable to published ones)")
    for name, (result, seconds) in ppls.items():
        p = result["protocol"]
        print(f"{name:<10} space {p['space']}, {p['sampling']:<4}, crop {str(p['crop']):<5}, "
              f"noise {p['noise']:<9}, clamp {str(p['clamp']):<5}: PPL {result['results'][0]['ppl']:10.2f}"
              f"   ({seconds / args.ppl_n * 1000:.1f} s per 1k pairs)")
    fid_images = args.fid_n * (len(costs) + len({c.resolution for c in costs}))
    print("\nwhole metric                      s per 1k samples")
    for name, (_, seconds) in fids.items():
        print(f"FID {name:<6}, all {len(costs)} costs + refs   {seconds / args.fid_n * 1000:10.1f}"
              f"   ({fid_images} Inception passes)")
    print(f"consistency, all {len(costs)} costs             {t_cons / args.consistency_n * 1000:10.1f}")
    t_fid = fids["nvidia"][1]
    print(f"ratio FID / consistency per sample: {(t_fid / args.fid_n) / (t_cons / args.consistency_n):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
