"""Encoder training: the ResNet-50 encoder learns W+ from the generator's own samples.

Each step draws W+ codes (mapping of z, with style mixing), renders them with the frozen
generator (the encoder's input, full cost, with fresh random noise maps every step unless
``--input-noise const``: real photos do not carry the model's fixed noise) and trains it on
``w_weight * MSE(E(x), W+)`` plus the image loss (MSE, and LPIPS when usable offline) between
the generator's renders of E(x) and of W+ (with the fixed noise, as the service renders), at
the full cost and at every ``--preview-cost``
(channel ratio @ resolution; default the service's preview, 0.5 @ R/4): the encoder is judged
by what the service shows. The loss is a mean over this process's samples (see
``worker.train.losses``). Writes ``encoder_<NAME>.pt`` = ``{'state_dict': ...}``, n_style and
``mean_latent`` (the generator's average w, the regression's starting point) matching it.

BatchNorm statistics are per process (ordinary BatchNorm; SyncBatchNorm on CUDA with
``--sync-bn``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from shared.recipe.parse import default_costs
from worker.anycost.checkpoints import load_encoder, load_generator
from worker.anycost.encoder import Encoder
from worker.anycost.sampling import mixing_index, wplus_from_z
from worker.train import losses
from worker.train.distributed import World, barrier, gather_objects, wrap_ddp
from worker.train.state import (
    STATE_NAME,
    load_state,
    refuse_overwrite,
    rng_state,
    save_atomic,
    set_rng_state,
    step_generator,
    step_random,
    train_until,
)

FC_LR_MULT = 0.01


@dataclass
class EncoderSettings:
    teacher: str  # the generator whose W+ the encoder inverts
    out: str
    name: str
    batch: int = 8
    steps: int = 100_000
    lr: float = 1e-4
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    w_weight: float = 1.0
    mse_weight: float = 1.0
    lpips_weight: float = 0.8
    mixing: float = 0.5
    input_noise: str = "random"
    preview_costs: list[tuple[float, int]] = field(default_factory=list)
    init: str | None = None  # an existing encoder file to start from
    sync_bn: bool = False
    resume: bool = False


class EncoderTrainer:
    def __init__(self, s: EncoderSettings, world: World):
        self.s, self.world = s, world
        dev = world.device
        self.out = Path(s.out)
        torch.manual_seed(s.seed)
        self.g = load_generator(s.teacher, dev)
        g = self.g
        if s.init:
            enc = load_encoder(s.init, dev).train().requires_grad_(True)
        else:
            enc = Encoder(g.n_style, g.style_dim).to(dev)
            with torch.no_grad():
                gen = torch.Generator(dev).manual_seed(s.seed)
                enc.mean_latent.copy_(g.mean_latent(4096, gen)[0])
                enc.fc.weight.mul_(0.01)  # start near mean_latent: renders stay in range
                enc.fc.bias.zero_()
        self.costs = [(1.0, g.resolution)] + list(s.preview_costs or
                                                  [_preview(g.resolution)])
        self.step = 0
        state = load_state(self.out) if s.resume else None
        refuse_overwrite(self.out, s.resume)
        if state is not None:
            enc.load_state_dict(state["encoder"])
            self.step = int(state["step"])
        if s.sync_bn and world.distributed and dev.type == "cuda":
            enc = torch.nn.SyncBatchNorm.convert_sync_batchnorm(enc)
        self.enc = enc
        # The pooled features of a ResNet (all positive, ~20 each at random init) feed fc: an
        # Adam step (about lr per weight, same sign along a row) moves every output by about
        # lr x 2048 x 20, so fc learns at FC_LR_MULT of the rate or the first steps overshoot.
        fc = [p for n, p in enc.named_parameters() if n.startswith("fc.")]
        rest = [p for n, p in enc.named_parameters() if not n.startswith("fc.")]
        self.opt = torch.optim.Adam([{"params": rest}, {"params": fc, "lr": s.lr * FC_LR_MULT}],
                                    lr=s.lr)
        if state is not None:
            self.opt.load_state_dict(state["optim"])
            set_rng_state(state["rng"][world.rank % len(state["rng"])])
        self.enc_ddp = wrap_ddp(enc, world)
        self.global_batch = s.batch * world.size

    def _codes(self, step: int) -> torch.Tensor:
        s, w, g = self.s, self.world, self.g
        z = torch.randn(2, self.global_batch, g.style_dim, device=w.device,
                        generator=step_generator(s.seed, step, 0, w.device))
        z = z[:, w.rank * s.batch:(w.rank + 1) * s.batch]
        inject = mixing_index(step_random(s.seed, step), g.n_style, s.mixing)
        with torch.no_grad():
            return wplus_from_z(g, z, inject)

    def _inputs(self, wplus: torch.Tensor, step: int) -> torch.Tensor:
        """What the encoder sees: the full render, with this step's own noise maps."""
        s, w = self.s, self.world
        noise = step_generator(s.seed, step, 1 + w.rank, w.device)
        return self.g.synthesis(wplus, None, None, s.input_noise, "ref", noise)

    def train_step(self, step: int) -> dict[str, float]:
        s, g = self.s, self.g
        wplus = self._codes(step)
        with torch.no_grad():
            image = self._inputs(wplus, step)
            targets = [g.synthesis(wplus, c, r, "const", "ref") for c, r in self.costs]
        pred = self.enc_ddp(image)
        losses_ = encoder_losses(g, pred, wplus, targets, self.costs, s.lpips_weight > 0)
        loss = (s.w_weight * losses_["w"] + s.mse_weight * losses_["mse"]
                + s.lpips_weight * losses_.get("lpips", 0.0))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        out = {"loss_w": float(losses_["w"].detach()), "mse": float(losses_["mse"].detach())}
        if "lpips" in losses_:
            out["lpips"] = float(losses_["lpips"].detach())
        return out

    def run(self) -> None:
        s, w = self.s, self.world
        if w.is_main:
            costs = ", ".join(f"{c}@{r}" for c, r in self.costs)
            print(f"encoder: {w.size} process(es) x batch {s.batch} on {w.device}, steps "
                  f"{self.step}->{s.steps}, image loss at {costs}; {losses.perceptual_note()}",
                  flush=True)
        self.enc.train()
        train_until(self, s.steps, s.log_every, s.checkpoint_every, self.train_step)

    def save(self) -> None:
        rngs = gather_objects(self.world, rng_state())
        if self.world.is_main:
            sd = plain_encoder_state(self.enc)
            save_atomic({"state_dict": sd}, self.out / f"encoder_{self.s.name}.pt")
            settings = asdict(self.s)
            settings["preview_costs"] = [list(c) for c in self.s.preview_costs]
            save_atomic({"stage": "encoder", "step": self.step, "encoder": sd,
                         "optim": self.opt.state_dict(), "rng": rngs, "settings": settings,
                         "world_size": self.world.size}, self.out / STATE_NAME)
        barrier(self.world)


def encoder_losses(g, pred: torch.Tensor, wplus: torch.Tensor, targets: list[torch.Tensor],
                   costs: list[tuple[float, int]], use_lpips: bool = True) -> dict[str, torch.Tensor]:
    """{'w': MSE(pred, W+), 'mse': ..., 'lpips'?: ...}: the image terms averaged over ``costs``
    (the renders of ``pred`` against ``targets``, the renders of the true codes)."""
    out: dict[str, torch.Tensor] = {"w": F.mse_loss(pred, wplus)}
    for (c, r), target in zip(costs, targets, strict=True):
        render = g.synthesis(pred, c, r, "const", "ref")
        for name, v in losses.image_distance(render, target, use_lpips).items():
            out[name] = out.get(name, 0.0) + v / len(costs)
    return out


def _preview(resolution: int) -> tuple[float, int]:
    cost = default_costs(resolution)[0]
    return (cost.channels, cost.resolution)


def plain_encoder_state(enc: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's state_dict with ordinary keys (SyncBatchNorm keeps BatchNorm's names)."""
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}
