"""Named edits for NVIDIA's StyleGAN2 FFHQ generator, from the files shipped in
``worker/anycost/data/stylegan2-ffhq-directions`` (MIT, from encoder4editing: see the LICENSE
file there). They are installed beside a generator only when they fit it (``check_fit``).

Every named edit follows the built-ins' convention: ``w[:, slots] += value * gain * direction``,
value in [-1, 1], ``direction`` a unit vector in W.

* InterFaceGAN (``interfacegan_smile``, ``_age``, ``_pose``): the unit boundaries (pose's 18
  rows are one vector), every W+ slot, gain ``INTERFACEGAN_GAIN`` = 3: a full slider is the
  published factor 3 (factors are used between about -3 and 3).
* GANSpace (``ganspace_<edit>``): the published edit (component c, slots [first, end), strength)
  sets the W coordinate along ``comp[c]`` (centred on ``mean``, in units of ``std[c]``) to
  ``strength``; as a slider, value 1 *moves* the coordinate by ``strength`` (the published edit
  for a face at the mean), so direction = sign(strength) * comp[c] and
  gain = |strength| * std[c], on slots first .. end-1.

Fit: the generator must have 18 W+ slots and 512-d W, and the mean of its mapped W samples must
lie within ``MEAN_W_TOLERANCE`` of ``ffhq_pca.pt``'s ``mean``, measured in units of the spread of
those samples (sqrt of the trace of their covariance). The sampling error of a 4096-sample mean is
1/64 = 0.016 of that spread; an unrelated network's mean lies about 0.5 of it away.
Tensor legend: n samples, S style_dim (512), L n_style (18).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

DATA_DIR = Path(__file__).resolve().parent / "data" / "stylegan2-ffhq-directions"
LICENCE = "MIT (encoder4editing; worker/anycost/data/stylegan2-ffhq-directions/LICENSE-encoder4editing)"
SET_NAME = "stylegan2-ffhq"
N_STYLE, STYLE_DIM = 18, 512
#: Largest distance of the generator's mean W from the files' mean, in W spreads (see above).
MEAN_W_TOLERANCE = 0.1
#: A full InterFaceGAN slider moves W by this many units along the boundary.
INTERFACEGAN_GAIN = 3.0
INTERFACEGAN_FILES = {"smile": "smile.pt", "age": "age.pt", "pose": "pose.pt"}
#: The published FFHQ GANSpace edits: name -> (component, first slot, end slot, strength).
GANSPACE_EDITS: dict[str, tuple[int, int, int, float]] = {
    "eye_openness": (54, 7, 8, 20), "trimmed_beard": (58, 7, 9, 20),
    "white_hair": (57, 7, 10, -24), "lipstick": (34, 10, 11, 20), "smile": (46, 4, 5, -20),
    "age": (20, 6, 7, 8), "yaw": (1, 0, 18, 0.5), "gender": (0, 0, 18, -1.5),
    "glasses": (12, 0, 4, 10),
}


@dataclass(frozen=True)
class Fit:
    """Whether the named edits fit a generator, and why (a sentence for ``weights list``)."""

    fits: bool
    reason: str
    mean_w_distance: float | None = None


def _load(name: str) -> torch.Tensor | dict:
    return torch.load(DATA_DIR / name, map_location="cpu", weights_only=True)


def load_pca() -> dict[str, torch.Tensor]:
    """``ffhq_pca.pt``: ``mean`` [S], ``comp`` [80, S] (unit rows), ``std`` [80]."""
    raw = _load("ffhq_pca.pt")
    return {"mean": raw["mean"].reshape(-1).float(), "comp": raw["comp"].reshape(-1, STYLE_DIM).float(),
            "std": raw["std"].reshape(-1).float()}


def check_fit(n_style: int, w: torch.Tensor) -> Fit:
    """Do the named edits fit a generator with ``n_style`` slots whose mapped samples are ``w``
    [n, S]? (See the module doc for the test.)"""
    if n_style != N_STYLE or w.shape[-1] != STYLE_DIM:
        return Fit(False, f"they need {N_STYLE} W+ slots and {STYLE_DIM}-d W (NVIDIA's 1024 px "
                          f"FFHQ network); this generator has {n_style} slots, {w.shape[-1]}-d W")
    w = w.double()
    spread = float(w.var(0).sum().sqrt())
    distance = float((w.mean(0) - load_pca()["mean"].double()).norm()) / max(spread, 1e-12)
    if distance > MEAN_W_TOLERANCE:
        return Fit(False, f"its mean W is {distance:.2f} W spreads from NVIDIA FFHQ's (at most "
                          f"{MEAN_W_TOLERANCE} fits): not the network they were made for",
                   round(distance, 4))
    return Fit(True, f"mean W {distance:.3f} W spreads from NVIDIA FFHQ's", round(distance, 4))


def named_directions() -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Unit vectors ``{key: [S]}`` and sidecar entries (key, method, label, slots, gain, ...)."""
    vectors: dict[str, torch.Tensor] = {}
    meta: list[dict] = []
    for index, (name, filename) in enumerate(INTERFACEGAN_FILES.items()):
        rows = _load(filename).reshape(-1, STYLE_DIM).float()
        if (rows - rows[0]).abs().max() > 1e-6:
            raise ValueError(f"{filename}: its slots differ; one direction per edit is expected")
        key = f"interfacegan_{name}"
        vectors[key] = rows[0] / rows[0].norm()
        meta.append({"key": key, "method": "interfacegan", "index": index,
                     "label": f"{name.replace('_', ' ')} (InterFaceGAN)",
                     "slots": list(range(N_STYLE)), "gain": INTERFACEGAN_GAIN})
    pca = load_pca()
    for name, (component, first, end, strength) in GANSPACE_EDITS.items():
        key = f"ganspace_{name}"
        sign = 1.0 if strength >= 0 else -1.0
        vectors[key] = sign * pca["comp"][component] / pca["comp"][component].norm()
        meta.append({"key": key, "method": "ganspace", "index": component,
                     "label": f"{name.replace('_', ' ')} (GANSpace)",
                     "slots": list(range(first, end)),
                     "gain": round(abs(strength) * float(pca["std"][component]), 6),
                     "strength": strength, "sigma": round(float(pca["std"][component]), 6)})
    return vectors, meta


def install_block(n_style: int, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[dict], dict]:
    """What ``install_generator_directions`` adds for a generator: the named vectors and entries
    when they fit (none otherwise), and the sidecar's ``named`` block saying so and why."""
    fit = check_fit(n_style, w)
    block = {"set": SET_NAME, "installed": fit.fits, "reason": fit.reason,
             "mean_w_distance": fit.mean_w_distance, "tolerance": MEAN_W_TOLERANCE,
             "licence": LICENCE}
    if not fit.fits:
        return {}, [], block
    vectors, meta = named_directions()
    return vectors, meta, {**block, "count": len(meta)}
