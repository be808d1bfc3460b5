"""``python -m worker.train STAGE ...`` (under ``torchrun`` for several processes or nodes).

    torchrun --nproc_per_node 8 -m worker.train multires --teacher generator_stylegan2.pt \\
        --data faces/ --out runs/stage1 --name my-anycost --batch 4 --kimg 5000
    torchrun --nproc_per_node 8 -m worker.train channels --teacher runs/stage1/generator_my-anycost.pt \\
        --discriminator runs/stage1/train_state.pt --data faces/ --out runs/stage2 ...
    torchrun --nproc_per_node 8 -m worker.train encoder --teacher runs/stage2/generator_....pt ...

Exit codes: 0 done, 2 bad arguments or unusable input files (one line on stderr).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import warnings
from pathlib import Path

import torch

from worker.anycost.checkpoints import CheckpointError
from worker.train.distributed import close_world, init_world


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", required=True, help="generator file ({'g_ema': ...})")
    p.add_argument("--out", required=True, help="output directory (checkpoints, train_state.pt)")
    p.add_argument("--name", default="trained", help="NAME in generator_<NAME>.pt")
    p.add_argument("--resolution", type=int, help="check: the teacher's output resolution")
    p.add_argument("--batch", type=int, default=4, help="batch per process (GPU)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="total optimisation steps")
    length.add_argument("--kimg", type=float, help="total thousands of images (all processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between progress lines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixing-prob", "--mixing", dest="mixing", type=float,
                   help="style-mixing probability (default 0.9 for the GAN stages, as upstream; "
                   "0.5 for the encoder)")
    p.add_argument("--lpips-weight", type=float, help="0 disables LPIPS even when available")
    p.add_argument("--mse-weight", type=float)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: keep)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m worker.train",
                                     description="Train Anycost weights (see README).")
    sub = parser.add_subparsers(dest="stage", required=True)
    for stage, text in (("multires", "stage 1: multi-resolution distillation"),
                        ("channels", "stage 2: adaptive-channel distillation")):
        p = sub.add_parser(stage, help=text)
        _common(p)
        p.add_argument("--data", required=True, help="folder or zip of aligned face images")
        p.add_argument("--half-life-kimg", "--ema-kimg", dest="ema_kimg", type=float,
                       default=10.0, help="EMA half-life, kimg")
        p.add_argument("--discriminator", help="D to start from: {'d': state_dict} of a "
                       "single-res Discriminator, or a stage-1 train_state.pt")
        p.add_argument("--n-sampled-res", "--res-per-step", dest="res_per_step", type=int,
                       help="resolutions sampled per step (default 2 in stage 1, 1 in stage 2)")
        p.add_argument("--n-res", type=int, default=4, help="resolutions the D accepts")
        p.add_argument("--r1", "--r1-gamma", dest="r1_gamma", type=float, default=10.0)
        p.add_argument("--d-reg-every", "--r1-every", dest="r1_every", type=int, default=16)
        p.add_argument("--gan-weight", type=float, default=1.0)
        p.add_argument("--flexible-prob", type=float, default=0.5,
                       help="stage 2: share of sampled sub-networks with per-layer widths")
        p.add_argument("--sandwich", action=argparse.BooleanOptionalAction, default=True,
                       help="stage 2: train the largest, the smallest and random sub-networks "
                       "every step (--no-sandwich: one random sub-network per step)")
        p.add_argument("--sandwich-random", type=int, default=2,
                       help="stage 2: random sub-networks per step beside the two extremes")
        p.add_argument("--train-mapping", action="store_true",
                       help="also train the mapping network (upstream does; off keeps the "
                       "teacher's W space for its encoder and directions)")
        p.add_argument("--noise", choices=["random", "const", "none"], default="random")
        p.add_argument("--hflip", action="store_true", help="also train on mirrored images")
        p.add_argument("--workers", type=int, default=2, help="data loader processes per rank")
        p.add_argument("--no-sort", action="store_true", help="stage 2: keep channel order")
        p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                       help="float64 only for exactness checks")
    p = sub.add_parser("encoder", help="train the ResNet-50 encoder on generator samples")
    _common(p)
    p.add_argument("--init", help="encoder file to start from")
    p.add_argument("--w-weight", type=float, default=1.0)
    p.add_argument("--input-noise", choices=["random", "const"], default="random",
                   help="noise maps of the images the encoder sees (random: fresh every step)")
    p.add_argument("--preview-cost", action="append", default=[], metavar="RATIO@RES",
                   help="extra image-loss cost, e.g. 0.5@256 (repeatable; default the preview)")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs")
    p.add_argument("--input-size", type=int, help="side the encoder resizes its input to "
                   "(default 256, the released encoder's; the --init file's with --init)")
    p.add_argument("--input-pixel-noise", type=float, default=0.0,
                   help="augmentation: Gaussian pixel noise of a per-sample std drawn from "
                   "[0, this] added to the encoder's input (0: none)")
    p.add_argument("--heldout", type=int, default=64,
                   help="fixed held-out samples measured at every checkpoint (0: none)")
    p.add_argument("--bn-samples", type=int, default=64,
                   help="samples that recalibrate BatchNorm's running statistics before every "
                   "checkpoint (0: keep the training averages)")
    return parser


def _steps(args: argparse.Namespace, world_size: int) -> int:
    if args.steps is not None:
        return args.steps
    if args.kimg is not None:
        return math.ceil(args.kimg * 1000 / (args.batch * world_size))
    raise SystemExit("error: give --steps or --kimg")


def _cost(text: str) -> tuple[float, int]:
    ratio, _, res = text.partition("@")
    return float(ratio), int(res)


def _optional(args: argparse.Namespace, *names: str) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def build_trainer(args: argparse.Namespace, world):
    steps = _steps(args, world.size)
    common = dict(teacher=args.teacher, out=args.out, name=args.name, batch=args.batch,
                  steps=steps, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                  seed=args.seed, resume=args.resume,
                  **_optional(args, "lr", "lpips_weight", "mse_weight", "mixing"))
    if args.stage == "encoder":
        from worker.train.encoder_training import EncoderSettings, EncoderTrainer

        s = EncoderSettings(**common, init=args.init, w_weight=args.w_weight, sync_bn=args.sync_bn,
                            preview_costs=[_cost(c) for c in args.preview_cost],
                            input_noise=args.input_noise, input_size=args.input_size,
                            input_pixel_noise=args.input_pixel_noise, heldout=args.heldout,
                            bn_samples=args.bn_samples)
        return EncoderTrainer(s, world)
    from worker.train.gan import GanSettings, GanTrainer

    s = GanSettings(**common, stage=args.stage, data=args.data, ema_kimg=args.ema_kimg,
                    discriminator=args.discriminator, res_per_step=args.res_per_step,
                    n_res=args.n_res, r1_gamma=args.r1_gamma, r1_every=args.r1_every,
                    gan_weight=args.gan_weight, flexible_prob=args.flexible_prob,
                    noise=args.noise, hflip=args.hflip, workers=args.workers,
                    sort=not args.no_sort, dtype=args.dtype, sandwich=args.sandwich,
                    sandwich_random=args.sandwich_random, train_mapping=args.train_mapping)
    return GanTrainer(s, world)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # DDP's note about the [1, C] weight of the critic's last linear: harmless, once per step.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    world = init_world(args.device)
    try:
        _train(args, world)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        # The trainer (its DDP wrappers and their reducers) is gone by now: a process group
        # destroyed under a live DDP module can abort the process at exit ("terminate called
        # without an active exception", seen once with gloo on CPU).
        gc.collect()
        close_world()
    return 0


def _train(args: argparse.Namespace, world) -> None:
    trainer = build_trainer(args, world)
    if args.resolution and args.resolution != trainer_resolution(trainer):
        raise ValueError(f"--resolution {args.resolution}: the teacher renders "
                         f"{trainer_resolution(trainer)} px")
    trainer.run()
    if args.stage != "encoder" and world.is_main:
        measure_output(Path(args.out), args.name, world.device)


def measure_output(out: Path, name: str, device="cpu") -> Path:
    """Measure the trained generator's preview costs as an install would: ``consistency_<NAME>
    .json`` beside ``generator_<NAME>.pt`` (distillation shows as cheaper costs meeting the bar)."""
    from worker.anycost.checkpoints import load_generator
    from worker.anycost.preview_consistency import write_consistency

    path = write_consistency(load_generator(out / f"generator_{name}.pt", device), name, out)
    print(f"preview consistency: {path}", flush=True)
    return path


def trainer_resolution(trainer) -> int:
    g = getattr(trainer, "teacher", None) or trainer.g
    return g.resolution
