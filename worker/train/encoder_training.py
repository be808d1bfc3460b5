"""Encoder training: the ResNet-50 encoder learns W+ from the generator's own samples.

Each step draws W+ codes (mapping of z, with style mixing), renders them with the frozen
generator (the encoder's input, full cost, with per-sample random noise maps drawn afresh every
step as NVIDIA's generator draws them, unless ``--input-noise const``: real photos do not carry
the model's fixed noise; optionally with Gaussian pixel noise of a per-sample strength drawn
from [0, ``--input-pixel-noise``]) and trains it on ``w_weight * MSE(E(x), W+)`` plus the image
loss (MSE, and LPIPS when usable offline) between the generator's renders of E(x) and of W+
(with the fixed noise, as the service renders), at the full cost and at every
``--preview-cost`` (channel ratio @ resolution; default the service's preview, 0.5 @ R/4): the
encoder is judged by what the service shows. The loss is a mean over this process's samples
(see ``worker.train.losses``). Writes ``encoder_<NAME>.pt`` = ``{'state_dict': ...}`` (plus
``'input_size'`` when ``--input-size`` is not the released 256), n_style and ``mean_latent``
(the generator's average w, the regression's starting point) matching it.

BatchNorm trains in train mode (statistics per process, so keep ``--batch`` at 8 or more; or
SyncBatchNorm across GPUs with ``--sync-bn``). Before every checkpoint (and once at the start of
a new run) its running statistics are recalibrated on ``--bn-samples`` fresh generator samples
and the encoder is measured, in eval mode as it is used, on ``--heldout`` fixed held-out
samples (``worker.train.encoder_heldout``): rank 0 prints ``held-out at step N: loss_w ...
mse ...`` and keeps the history in ``train_state.pt`` (``heldout``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from shared.recipe.parse import default_costs
from worker.anycost.checkpoints import load_encoder, load_generator
from worker.anycost.encoder import INPUT_SIZE, Encoder
from worker.anycost.sampling import mixing_index, wplus_from_z
from worker.train import losses
from worker.train.distributed import World, barrier, gather_objects, wrap_ddp
from worker.train.encoder_heldout import calibrate_batchnorm, encoder_losses, heldout_losses
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

FC_LR_MULT = 0.1


def fresh_encoder(g, input_size: int, seed: int, device: torch.device) -> Encoder:
    """A new encoder for ``g``: ``mean_latent`` = the generator's average w (4096 samples of
    ``seed``), fc scaled by 0.01 (outputs start near mean_latent, where renders stay in range),
    and the last BatchNorm of every residual block zeroed (Goyal et al. 2017, "zero_init_residual"):
    each block starts as the identity, so the untrained network passes the image's layout to
    the pooled features instead of scrambling it through 16 random blocks. Measured on the tiny
    teacher (with fc at 1/10 of the rate instead of 1/100): held-out W+ error x0.84 instead of
    x0.96 after 40 steps of batch 32 (tests/train/test_encoder_training.py)."""
    from torchvision.models.resnet import Bottleneck

    enc = Encoder(g.n_style, g.style_dim, input_size).to(device)
    with torch.no_grad():
        gen = torch.Generator(device).manual_seed(seed)
        enc.mean_latent.copy_(g.mean_latent(4096, gen)[0])
        enc.fc.weight.mul_(0.01)
        enc.fc.bias.zero_()
        for block in enc.modules():
            if isinstance(block, Bottleneck):
                block.bn3.weight.zero_()
    return enc


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
    input_size: int | None = None  # the ResNet's input side (None: 256, or the --init file's)
    input_pixel_noise: float = 0.0  # largest std of the Gaussian noise added to the input
    heldout: int = 64  # held-out samples measured at every checkpoint (0: none)
    bn_samples: int = 64  # samples that recalibrate BatchNorm before a checkpoint (0: none)


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
            if s.input_size is not None and s.input_size != enc.input_size:
                raise ValueError(f"--input-size {s.input_size}: the --init encoder takes "
                                 f"{enc.input_size} px")
        else:
            enc = fresh_encoder(g, s.input_size or INPUT_SIZE, s.seed, dev)
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
        # The pooled features (all positive; ~0.4 each at the zero-residual init, measured on
        # the tiny teacher) feed fc: an Adam step (about lr per weight, same sign along a row)
        # moves every output by about lr x 2048 x 0.4, so fc learns at FC_LR_MULT of the rate or
        # the first steps overshoot (at 1 x lr 1e-3 they did: held-out W+ error 0.60 -> 0.76).
        fc = [p for n, p in enc.named_parameters() if n.startswith("fc.")]
        rest = [p for n, p in enc.named_parameters() if not n.startswith("fc.")]
        self.opt = torch.optim.Adam([{"params": rest}, {"params": fc, "lr": s.lr * FC_LR_MULT}],
                                    lr=s.lr)
        if state is not None:
            self.opt.load_state_dict(state["optim"])
            set_rng_state(state["rng"][world.rank % len(state["rng"])])
        self.enc_ddp = wrap_ddp(enc, world)
        self.global_batch = s.batch * world.size
        self.heldout: list[dict] = list(state.get("heldout", [])) if state is not None else []
        self.fresh = state is None

    def _codes(self, step: int) -> torch.Tensor:
        s, w, g = self.s, self.world, self.g
        z = torch.randn(2, self.global_batch, g.style_dim, device=w.device,
                        generator=step_generator(s.seed, step, 0, w.device))
        z = z[:, w.rank * s.batch:(w.rank + 1) * s.batch]
        inject = mixing_index(step_random(s.seed, step), g.n_style, s.mixing)
        with torch.no_grad():
            return wplus_from_z(g, z, inject)

    def _inputs(self, wplus: torch.Tensor, step: int) -> torch.Tensor:
        """What the encoder sees: the full render with this step's own noise maps (one per
        sample), plus pixel noise of a per-sample strength when ``input_pixel_noise`` > 0."""
        s, w = self.s, self.world
        noise = step_generator(s.seed, step, 1 + w.rank, w.device)
        image = self.g.synthesis(wplus, None, None, s.input_noise, "ref", noise)
        if s.input_pixel_noise > 0:  # drawn after the maps, from the same generator
            strength = torch.rand(len(image), 1, 1, 1, device=w.device, generator=noise)
            image = image + s.input_pixel_noise * strength * torch.randn(
                image.shape, device=w.device, generator=noise)
        return image

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
                  f"{self.step}->{s.steps}, input {self.enc.input_size} px, image loss at "
                  f"{costs}; {losses.perceptual_note()}; held-out {s.heldout} samples, "
                  f"BatchNorm calibrated on {s.bn_samples}", flush=True)
        self.enc.train()
        if self.fresh:
            self.measure()  # the start, the reference every later measurement is read against
        train_until(self, s.steps, s.log_every, s.checkpoint_every, self.train_step)

    def measure(self) -> dict[str, float] | None:
        """Recalibrate BatchNorm (every rank alike), then the held-out losses (rank 0 prints
        and records them)."""
        s, w = self.s, self.world
        calibrate_batchnorm(self.enc, self.g, s.bn_samples, w.device)
        if not (w.is_main and s.heldout > 0):
            return None
        found = heldout_losses(self.enc, self.g, s.heldout, self.costs, w.device,
                               s.lpips_weight > 0)
        self.heldout.append({"step": self.step, **found})
        parts = "  ".join(f"{'loss_w' if k == 'w' else k} {v:.5f}" for k, v in found.items())
        print(f"held-out at step {self.step}: {parts}", flush=True)
        return found

    def save(self) -> None:
        self.measure()
        rngs = gather_objects(self.world, rng_state())
        if self.world.is_main:
            sd = plain_encoder_state(self.enc)
            size = self.enc.input_size
            extra = {} if size == INPUT_SIZE else {"input_size": size}
            save_atomic({"state_dict": sd, **extra}, self.out / f"encoder_{self.s.name}.pt")
            settings = asdict(self.s)
            settings["preview_costs"] = [list(c) for c in self.s.preview_costs]
            save_atomic({"stage": "encoder", "step": self.step, "encoder": sd,
                         "optim": self.opt.state_dict(), "rng": rngs, "settings": settings,
                         "world_size": self.world.size, "heldout": self.heldout},
                        self.out / STATE_NAME)
        barrier(self.world)


def _preview(resolution: int) -> tuple[float, int]:
    cost = default_costs(resolution)[0]
    return (cost.channels, cost.resolution)


def plain_encoder_state(enc: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's state_dict with ordinary keys (SyncBatchNorm keeps BatchNorm's names)."""
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}
