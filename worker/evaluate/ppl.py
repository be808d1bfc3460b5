"""Perceptual Path Length as NVIDIA measures it (stylegan2-ada-pytorch / stylegan3 metrics).

For each of N pairs of random codes z0, z1 and a point t on the path between them (``end``:
t = 0; ``full``: t ~ U(0, 1)), two codes epsilon (1e-4) apart are rendered: in W, ``lerp(w0, w1,
t)`` and ``lerp(w0, w1, t + eps)`` of the mapped codes; in Z, the mapping of ``slerp(z0, z1, t)``
and ``slerp(z0, z1, t + eps)`` (great-circle interpolation of the normalised codes). Every batch
gets fresh noise maps, the same for all of its images (NVIDIA refills the generator's constant
noise buffers per batch; here a private copy's buffers, from a generator seeded by (seed,
batch)). Images are NOT clamped. ``crop`` keeps the face's centre (rows 3/8..7/8, columns
2/8..6/8); then images wider than 256 px at the rendered resolution R are box-filtered by
R // 256 (the factor comes from R, not from the crop: a cropped 1024 px face is measured at
128 px, as NVIDIA's code does). The distance is LPIPS VGG (``worker.evaluate.ppl_distance``)
divided by epsilon squared; the PPL is the mean of the values between the 1st percentile (lower)
and the 99th (higher), inclusive.

Protocols by NVIDIA's metric names: ``ppl2_wend`` (StyleGAN2's reported number and the default:
W, end, no crop), ``ppl_wend``, ``ppl_wfull``, ``ppl_zend``, ``ppl_zfull`` (StyleGAN1's, face
crop on). ``legacy`` is what this module measured before (W, end, crop, the model's fixed noise,
clamped images; only its box filter of crops wider than 256 px now follows the rule above), kept
to compare old numbers. Any protocol's space, sampling and crop can be
overridden (``with_options``); the name then says ``custom``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from shared.recipe.parse import Cost
from worker.evaluate.common import batches, sample_z, seeded

EPSILON = 1e-4
SPACES = ("w", "z")
SAMPLINGS = ("end", "full")
MAX_SIDE = 256


@dataclass(frozen=True)
class PplProtocol:
    name: str
    space: str = "w"
    sampling: str = "end"
    crop: bool = False
    noise: str = "per_batch"  # or "const": the model's fixed noise buffers
    clamp: bool = False
    epsilon: float = EPSILON


PROTOCOLS = {p.name: p for p in (
    PplProtocol("ppl2_wend"),
    PplProtocol("ppl_wend", crop=True),
    PplProtocol("ppl_wfull", sampling="full", crop=True),
    PplProtocol("ppl_zend", space="z", crop=True),
    PplProtocol("ppl_zfull", space="z", sampling="full", crop=True),
    PplProtocol("legacy", crop=True, noise="const", clamp=True),
)}


def with_options(name: str = "ppl2_wend", space: str | None = None, sampling: str | None = None,
                 crop: bool | None = None) -> PplProtocol:
    """A named protocol, with any of space / sampling / crop overridden."""
    if name not in PROTOCOLS:
        raise ValueError(f"PPL protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    if space is not None and space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}")
    if sampling is not None and sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}")
    base = PROTOCOLS[name]
    changes = {k: v for k, v in (("space", space), ("sampling", sampling), ("crop", crop))
               if v is not None and v != getattr(base, k)}
    return replace(base, name="custom", **changes) if changes else base


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Great-circle interpolation of the directions of ``a`` and ``b`` ``[N, S]`` at ``t``
    ``[N, 1]`` (unit-norm result; the mapping network normalises z anyway)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(-1, keepdim=True)
    angle = t * torch.acos(cos)
    ortho = b - cos * a  # the part of b perpendicular to a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def sample_pairs(n: int, style_dim: int, seed: int, protocol: PplProtocol) -> tuple:
    """``(z0 [N, S], z1 [N, S], t [N, 1])`` of a seed (drawn on the CPU); t = 0 for ``end``."""
    z = sample_z(2 * n, style_dim, seed)
    t = torch.rand(n, 1, generator=torch.Generator().manual_seed(seed + 1))
    if protocol.sampling == "end":
        t = torch.zeros_like(t)
    return z[:n], z[n:], t


def pair_codes(generator, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
               protocol: PplProtocol) -> tuple[torch.Tensor, torch.Tensor]:
    """The two w ``[N, S]`` of each pair, epsilon apart along the protocol's path."""
    eps = protocol.epsilon
    if protocol.space == "z":
        return (generator.mapping(slerp(z0, z1, t)), generator.mapping(slerp(z0, z1, t + eps)))
    w0, w1 = generator.mapping(z0), generator.mapping(z1)
    return torch.lerp(w0, w1, t), torch.lerp(w0, w1, t + eps)


def prepare_images(images: torch.Tensor, protocol: PplProtocol) -> torch.Tensor:
    """Crop (when asked) and box-filter by R // 256, R the rendered width (see module doc)."""
    factor = images.shape[-1] // MAX_SIDE
    if protocol.crop:
        c = images.shape[-1] // 8
        images = images[:, :, c * 3:c * 7, c * 2:c * 6]
    if factor > 1:
        images = F.avg_pool2d(images, factor)
    return images


@torch.no_grad()
def path_lengths(bundle, distance, n: int, cost: Cost, seed: int = 0,
                 protocol: PplProtocol | None = None, batch_size: int = 8) -> np.ndarray:
    """The ``n`` scaled distances (before the percentile filter)."""
    protocol = protocol or PROTOCOLS["ppl2_wend"]
    generator = bundle.generator
    device = generator.input.input.device
    renderer = copy.deepcopy(generator) if protocol.noise == "per_batch" else generator
    z0, z1, t = (x.to(device) for x in sample_pairs(n, generator.style_dim, seed, protocol))
    out = []
    for k, part in enumerate(batches(n, batch_size)):
        a, b = pair_codes(generator, z0[part], z1[part], t[part], protocol)
        if protocol.noise == "per_batch":
            noise = seeded(device, seed * 1_000_003 + k)
            for buf in renderer.noises.buffers():
                buf.normal_(generator=noise)
        images = renderer.synthesis(generator.broadcast(torch.cat([a, b])), cost.channels,
                                    cost.resolution, noise_mode="const").float()
        if protocol.clamp:
            images = images.clamp(-1.0, 1.0)
        first, second = prepare_images(images, protocol).chunk(2)
        dist = distance(first, second).reshape(-1).double() / (protocol.epsilon ** 2)
        out.append(dist.cpu().numpy())
    return np.concatenate(out)


def filtered_mean(values: np.ndarray) -> float:
    """Mean of the values between the 1st and 99th percentile (inclusive)."""
    low, high = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    kept = values[(values >= low) & (values <= high)]
    return float(kept.mean())


def evaluate_ppl(bundle, distance, n: int, costs: Sequence[Cost], seed: int = 0,
                 protocol: PplProtocol | str = "ppl2_wend", batch_size: int = 8) -> dict:
    """PPL of each cost (the same pairs and noise for every cost). ``distance``: a
    ``PplDistance`` (or any callable ``(a, b) -> [N]``)."""
    if n < 1:
        raise ValueError("PPL needs n >= 1")
    proto = with_options(protocol) if isinstance(protocol, str) else protocol
    started = time.perf_counter()
    results = []
    for cost in costs:
        t0 = time.perf_counter()
        values = path_lengths(bundle, distance, n, cost, seed, proto, batch_size)
        results.append({**cost.as_dict(), "ppl": filtered_mean(values),
                        "median": float(np.median(values)),
                        "seconds": round(time.perf_counter() - t0, 3)})
    described = distance.describe() if hasattr(distance, "describe") else {"name": "custom"}
    return {"metric": "ppl", "n": n, "seed": seed, "protocol": asdict(proto),
            "space": proto.space, "epsilon": proto.epsilon, "sampling": proto.sampling,
            "crop": proto.crop, "distance": described, "results": results,
            "seconds": round(time.perf_counter() - started, 3)}
