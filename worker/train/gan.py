"""Stages 1 and 2: distilling a teacher generator into an Anycost generator, data-parallel.

Each step (all ranks make the same choices, drawn from (seed, step)):
1. pick ``n_sampled_res`` of the discriminator's resolutions (stage 1 samples 2 of 4, stage 2
   1 of 4: sub-networks keep their lower resolutions) and the step's sub-networks: stage 1 the
   full network; stage 2 the sandwich rule (``worker.train.channels.sandwich``): the largest,
   the smallest and ``sandwich_random`` random sub-networks, every step (``--no-sandwich``: one
   random sub-network, as the released code did);
2. codes: z pairs with style mixing (probability ``mixing``, 0.9 as upstream) through the
   student's mapping network (the teacher's for the targets);
3. D step: for each sub-network, the non-saturating logistic loss on real images
   (area-downsampled) and its images at the sampled resolutions (lower resolutions are the
   generator's intermediate RGB outputs), the D conditioned on that sub-network; every
   ``r1_every`` steps an R1 penalty on real images, scaled by the interval (lazy R1);
4. G step, averaged over the sub-networks: the non-saturating loss at the sampled resolutions
   plus distillation to the frozen teacher's full-width, full-resolution image of the same codes
   and noise, area-downsampled, at EVERY resolution the step rendered (each D resolution up to
   the highest sampled one; upstream distils all of them too). The distillation loss is MSE plus
   LPIPS (VGG at <= 256 px when its files are there, ``worker.train.losses``).

The mapping network is frozen unless ``train_mapping`` (upstream trains it): frozen, the student
keeps the teacher's W space, so encoders and edit directions made for the teacher stay valid.
The teacher is never updated: in stage 2 it is the full network that stage 1 produced, the
teacher of every sub-network.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from worker.anycost.checkpoints import (
    generator_file,
    load_generator,
    load_latent_avg,
    read_checkpoint,
)
from worker.anycost.discriminator import DiscriminatorMultiRes
from worker.anycost.generator import Generator
from worker.anycost.sampling import downsample, mixing_index, wplus_from_z
from worker.train import channels as chan
from worker.train import losses
from worker.train.critic import STDDEV_GROUP, MultiResCritic, init_from_single_res
from worker.train.data import ImageDataset, image_batches
from worker.train.distributed import World, barrier, gather_objects, wrap_ddp
from worker.train.state import (
    STATE_NAME,
    Ema,
    load_state,
    refuse_overwrite,
    rng_state,
    save_atomic,
    set_rng_state,
    step_generator,
    step_random,
    train_until,
)

STAGES = ("multires", "channels")


@dataclass
class GanSettings:
    """What a distillation run needs (the CLI's arguments)."""

    stage: str
    teacher: str
    data: str
    out: str
    name: str
    batch: int = 4  # per process
    steps: int = 1000
    lr: float = 0.002
    ema_kimg: float = 10.0  # EMA half-life in thousands of images (0: no averaging)
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    res_per_step: int | None = None  # default: 2 in stage 1, 1 in stage 2
    n_res: int = 4
    r1_gamma: float = 10.0
    r1_every: int = 16
    gan_weight: float = 1.0
    mse_weight: float = 3.0
    lpips_weight: float = 3.0
    mixing: float = 0.9
    flexible_prob: float = 0.5
    sandwich: bool = True  # stage 2: largest + smallest + random sub-networks every step
    sandwich_random: int = 2
    train_mapping: bool = False
    discriminator: str | None = None
    noise: str = "random"
    hflip: bool = False
    workers: int = 0
    sort: bool = True  # stage 2: sort channels by importance first
    resume: bool = False
    dtype: str = "float32"  # float64: for exactness checks (DDP equivalence tests)


class _Student(nn.Module):
    """The student's mapping and synthesis as one module forward (what DistributedDataParallel
    wraps: one forward per backward however many sub-networks a step trains)."""

    def __init__(self, g: Generator, train_mapping: bool):
        super().__init__()
        self.g = g
        self.train_mapping = train_mapping

    def forward(self, z, inject_index, members, resolution, noise_mode, noise_source):
        """-> per sub-network in ``members``, the RGB after every level up to ``resolution``."""
        with torch.set_grad_enabled(self.train_mapping and torch.is_grad_enabled()):
            wplus = wplus_from_z(self.g, z, inject_index)
        return [self.g.synthesis_rgbs(wplus, channels, resolution, noise_mode, "ref",
                                      noise_source()) for channels in members]


class GanTrainer:
    """One rank's part of a distillation run."""

    def __init__(self, s: GanSettings, world: World):
        if s.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {s.stage!r}")
        if s.batch > STDDEV_GROUP and s.batch % STDDEV_GROUP:
            raise ValueError(f"--batch {s.batch}: use a multiple of {STDDEV_GROUP} (the "
                             "minibatch-stddev group) or fewer than that")
        self.s, self.world, dev = s, world, world.device
        self.out = Path(s.out)
        torch.manual_seed(s.seed)  # module initialisation; DDP also broadcasts rank 0's
        self.dtype = getattr(torch, s.dtype)
        self.teacher = load_generator(s.teacher, dev).to(self.dtype)
        # an imported teacher's w_avg stays valid: the mapping network is not trained
        self.latent_avg = load_latent_avg(s.teacher)
        g = copy.deepcopy(self.teacher).train()
        g.requires_grad_(True)
        g.style.requires_grad_(s.train_mapping)  # frozen: keep the teacher's W space
        modulate = s.stage == "channels"
        d = DiscriminatorMultiRes(g.resolution, g.channel_multiplier, min(s.n_res, g.log_res - 1),
                                  modulate=modulate, channel_max=g.channel_max)
        d = d.to(dev, self.dtype)
        self.d_note = ""
        if s.discriminator:
            obj = read_checkpoint(s.discriminator, dev)
            sd = obj.get("d", obj) if isinstance(obj, dict) else obj
            if not isinstance(sd, dict) or not sd or not all(
                    isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
                raise ValueError(f"{s.discriminator}: not a discriminator ({{'d': state_dict}} "
                                 "or a stage-1 train_state.pt)")
            report = init_from_single_res(d, sd)
            if not report["copied"]:
                raise ValueError(f"{s.discriminator}: no tensor fits this discriminator "
                                 f"({g.resolution} px, channel_max {g.channel_max})")
            self.d_note = (f"discriminator: {len(report['copied'])} tensors from "
                           f"{s.discriminator}, {len(report['skipped'])} skipped")
        self.res_levels = [g.resolution // 2**i for i in range(len(d.convs))]
        self.res_per_step = s.res_per_step or (2 if s.stage == "multires" else 1)
        self.step = 0
        state = load_state(self.out) if s.resume else None
        refuse_overwrite(self.out, s.resume)
        self.note = ""
        if state is not None:
            if state.get("world_size") != world.size:
                self.note = (f"resuming a {state.get('world_size')}-process run on {world.size}: "
                             "the data order from here on differs from the original's")
            if state["stage"] != s.stage:
                raise ValueError(f"{self.out / STATE_NAME} is a {state['stage']} run")
            g.load_state_dict(state["g"])
            d.load_state_dict(state["d"])
            self.step = int(state["step"])
        elif modulate and s.sort:
            chan.sort_channels(g)
        self.g, self.d = g, d
        self.ema = Ema(g, s.ema_kimg * 1000)
        c = s.r1_every / (s.r1_every + 1)  # lazy regularisation: keep the effective lr
        self.g_opt = torch.optim.Adam([p for p in g.parameters() if p.requires_grad],
                                      lr=s.lr, betas=(0.0, 0.99))
        self.d_opt = torch.optim.Adam(d.parameters(), lr=s.lr * c, betas=(0.0, 0.99**c))
        if state is not None:
            self.ema.model.load_state_dict(state["g_ema"])
            self.g_opt.load_state_dict(state["g_optim"])
            self.d_opt.load_state_dict(state["d_optim"])
        self.g_params = [p for p in g.parameters() if p.requires_grad]
        self.student = _Student(g, s.train_mapping)
        self.g_ddp = wrap_ddp(self.student, world)
        self.critic = MultiResCritic(d)
        self.d_ddp = wrap_ddp(self.critic, world)
        self.dataset = ImageDataset(s.data, g.resolution, s.hflip)
        self.batches = image_batches(self.dataset, s.batch, world.rank, world.size, s.seed,
                                     self.step, s.workers)
        self.global_batch = s.batch * world.size
        if state is not None:  # last: building the models and the loader drew from it too
            set_rng_state(state["rng"][world.rank % len(state["rng"])])

    # ----- one step --------------------------------------------------------------------------
    def _codes(self, step: int) -> tuple[torch.Tensor, int | None]:
        """This rank's z pairs ``[2, b, S]`` (its slice of the step's global batch, so P x b ==
        1 x Pb) and the step's style-mixing slot (None: no mixing)."""
        s, w, g = self.s, self.world, self.teacher
        zgen = step_generator(s.seed, step, 0, w.device)
        z = torch.randn(2, self.global_batch, g.style_dim, generator=zgen, device=w.device,
                        dtype=self.dtype)
        inject = mixing_index(step_random(s.seed, step + 10**9), g.n_style, s.mixing)
        return z[:, w.rank * s.batch:(w.rank + 1) * s.batch], inject

    def _noise(self, step: int) -> torch.Generator | None:
        """The step's noise source, shared by student and teacher. Random noise maps are drawn
        per process (drawing them for the global batch would not scale), so P x b == 1 x Pb
        holds exactly with ``--noise const``; with random noise only in distribution."""
        if self.s.noise != "random":
            return None
        return step_generator(self.s.seed, step, 1 + self.world.rank, self.world.device)

    def _members(self, rng) -> list[list[int] | None]:
        """The step's sub-networks: None (the full network) in stage 1."""
        s = self.s
        if s.stage != "channels":
            return [None]
        if s.sandwich:
            return chan.sandwich(self.g, rng, s.sandwich_random, s.flexible_prob)
        return [chan.sample_channels(self.g, rng, s.flexible_prob)]

    def train_step(self, step: int, real: torch.Tensor) -> dict[str, float]:
        s, g = self.s, self.g
        rng = step_random(s.seed, step)
        resolutions = sorted(rng.sample(self.res_levels, self.res_per_step), reverse=True)
        top = resolutions[0]
        levels = [r for r in self.res_levels if r <= top]  # every resolution rendered
        members = self._members(rng)
        archs = [None if c is None else chan.g_arch(g, c).to(real) for c in members]
        z, inject = self._codes(step)
        noise_mode = s.noise
        call = (z, inject, members, top, noise_mode, lambda: self._noise(step))

        def pick(rgbs: list[torch.Tensor], wanted: list[int]) -> list[torch.Tensor]:
            return [rgbs[int(math.log2(r)) - 2] for r in wanted]

        reals = [downsample(real, r) for r in resolutions]
        k, m = len(resolutions), len(members)
        # D step: per sub-network, reals and its fakes under its own conditioning
        with torch.no_grad():
            fakes = [pick(rgbs, resolutions) for rgbs in self.student(*call)]
        images = [x for f in fakes for x in reals + f]
        scores = self.d_ddp(images, [a for a in archs for _ in range(2 * k)])
        loss_d = sum(losses.d_logistic(torch.cat(scores[2 * k * j:2 * k * j + k]),
                                       torch.cat(scores[2 * k * j + k:2 * k * (j + 1)]))
                     for j in range(m)) / m
        self.d_opt.zero_grad(set_to_none=True)
        loss_d.backward()
        self.d_opt.step()
        out = {"loss_d": float(loss_d.detach())}
        if s.r1_every > 0 and step % s.r1_every == 0:
            out["r1"] = self._r1(reals, archs[-1])
        # G step
        with torch.no_grad():
            wplus_t = wplus_from_z(self.teacher, z, inject)
            target = self.teacher.synthesis(wplus_t, None, None, noise_mode, "ref",
                                            self._noise(step))
        rendered = self.g_ddp(*call)
        fakes = [pick(rgbs, resolutions) for rgbs in rendered]
        # The plain critic, not its DDP wrapper, and backward(inputs=G's parameters): the G step
        # neither computes nor all-reduces gradients of D (DDP's no_sync would carry this
        # step's used-parameter set into the next D step).
        scores = self.critic([x for f in fakes for x in f], [a for a in archs for _ in range(k)])
        loss_gan = losses.g_nonsaturating(torch.cat(scores))
        distill = {"mse": 0.0, "lpips": 0.0}
        for rgbs in rendered:
            for fake in pick(rgbs, levels):
                pair = losses.image_distance(fake, downsample(target, fake.shape[-1]),
                                             s.lpips_weight > 0)
                for name, v in pair.items():
                    distill[name] = distill[name] + v / (len(levels) * m)
        loss_g = (s.gan_weight * loss_gan + s.mse_weight * distill["mse"]
                  + s.lpips_weight * distill["lpips"])
        self.g_opt.zero_grad(set_to_none=True)
        loss_g.backward(inputs=self.g_params)
        self.g_opt.step()
        self.ema.update(g, self.global_batch)
        out.update({"loss_g": float(loss_gan.detach()), "mse": float(distill["mse"].detach())})
        if torch.is_tensor(distill["lpips"]):
            out["lpips"] = float(distill["lpips"].detach())
        return out

    def _r1(self, reals: list[torch.Tensor], arch: torch.Tensor | None) -> float:
        """One lazy R1 step of D on the real images (conditioned on ``arch``)."""
        s = self.s
        xs = [x.detach().requires_grad_(True) for x in reals]
        scores = self.d_ddp(xs, arch)
        grads = torch.autograd.grad(sum(sc.sum() for sc in scores), xs, create_graph=True)
        r1 = sum(gr.pow(2).flatten(1).sum(1).mean() for gr in grads) / len(xs)
        # 0 * scores: every parameter of the forward gets a (zero) gradient, as DDP expects
        # (R1's gradient misses e.g. the last bias).
        zero = sum(sc.sum() for sc in scores) * 0.0
        self.d_opt.zero_grad(set_to_none=True)
        (r1 * (s.r1_gamma / 2) * s.r1_every + zero).backward()
        self.d_opt.step()
        return float(r1.detach())

    # ----- the run ---------------------------------------------------------------------------
    def run(self) -> None:
        s, w = self.s, self.world
        if w.is_main:
            print(f"{s.stage}: {w.size} process(es) x batch {s.batch} on {w.device}, "
                  f"steps {self.step}->{s.steps}; {losses.perceptual_note()}", flush=True)
            for note in (self.d_note, self.note):
                if note:
                    print(note, flush=True)

        def take_step(step: int) -> dict[str, float]:
            real = next(self.batches).to(w.device, self.dtype, non_blocking=True)
            return self.train_step(step, real)

        train_until(self, s.steps, s.log_every, s.checkpoint_every, take_step)

    def save(self) -> None:
        rngs = gather_objects(self.world, rng_state())  # collective: every rank takes part
        if self.world.is_main:
            save_atomic(generator_file(self.ema.model, self.latent_avg),
                        self.out / f"generator_{self.s.name}.pt")
            save_atomic({"stage": self.s.stage, "step": self.step,
                         "images": self.step * self.global_batch,
                         "g": self.g.state_dict(), "d": self.d.state_dict(),
                         "g_ema": self.ema.model.state_dict(),
                         "g_optim": self.g_opt.state_dict(), "d_optim": self.d_opt.state_dict(),
                         "rng": rngs, "settings": asdict(self.s),
                         "world_size": self.world.size}, self.out / STATE_NAME)
        barrier(self.world)
