"""Edit directions computed from the generator itself, for any config.

* SeFa (closed-form factorisation, Shen & Zhou, CVPR 2021): the directions in W that the
  style-modulation layers of the chosen W+ slots amplify most are the top eigenvectors of AᵀA,
  A the stacked (effective) modulation weights of those layers, one row per modulated channel.
  ``normalize="official"`` (the default) scales every row of A to unit norm first, as the
  official SeFa code does (each channel's weight vector counts equally, whatever its scale), so
  ``sefa_NN`` are that tool's directions; ``"raw"`` factorises A as it is.
* GANSpace (Härkönen et al., 2020): the principal components of mapped W samples.
* Named edits for NVIDIA's FFHQ network (``worker.anycost.ffhq_directions``), added only when
  the generator is that network (its slots, width and mean W fit; the ``named`` block says why).

``install_generator_directions`` computes both once, when a generator is installed, and writes
``directions_<config>.pt`` (vectors, for the worker) and ``directions_<config>.json`` (names,
slots, gains and eigenvalues, no vectors: the web side reads it without torch) into the weights
directory. Everything is deterministic: fixed seed for the W samples, fixed eigenvector signs.
Tensor legend: S style_dim, L n_style (W+ slots), K directions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from shared.catalog.directions import (
    GAIN_SIGMAS,
    SIDECAR_VERSION,
    generator_key,
    pt_path,
    sidecar_path,
)
from shared.codes.attributes import EDIT_SLOTS

from .ffhq_directions import install_block
from .generator import Generator

#: SeFa's variants: rows of A normalised first (the official code), or A as it is.
SEFA_NORMALIZATIONS = ("official", "raw")
#: How many directions of each method an install computes (sefa_00..09, pca_00..09).
DEFAULT_COUNT = 10
#: W samples for GANSpace's PCA (and for the gains): 8x the width pins the top components (their
#: variances are well apart) and maps in about a second on a CPU core for any config (the mapping
#: network is 8 x 512 x 512 whatever the resolution), so installs and test sessions stay quick.
PCA_SAMPLES = 4096
PCA_SEED = 20200601


def default_slots(generator: Generator) -> list[int]:
    """The W+ slots generator directions apply to: the first min(12, L), the built-in edits' ones.

    SeFa's paper selects layer ranges for coarse (pose), middle (face shape, expression) and fine
    (colour, texture) attributes; the first 12 slots cover coarse and middle (up to 128 px at
    1024 px), the range where face attributes live, so one slider formula fits every direction.
    """
    return list(range(min(EDIT_SLOTS, generator.n_style)))


def modulation_layers(generator: Generator, include_rgb: bool = False) -> list[tuple[str, int, torch.Tensor]]:
    """``(module name, W+ slot, effective weight [C_in, S])`` of every style modulation, in slot
    order. ToRGB layers (which only set colours) are left out unless ``include_rgb``."""
    rows: list[tuple[str, int, object]] = [("conv1", 0, generator.conv1.conv),
                                           ("to_rgb1", 1, generator.to_rgb1.conv)]
    for level in range(len(generator.to_rgbs)):
        i = 2 * level + 1  # the level's first slot, as in Generator._synthesize
        rows.append((f"convs.{2 * level}", i, generator.convs[2 * level].conv))
        rows.append((f"convs.{2 * level + 1}", i + 1, generator.convs[2 * level + 1].conv))
        rows.append((f"to_rgbs.{level}", i + 2, generator.to_rgbs[level].conv))
    out = []
    for name, slot, conv in rows:
        if name.startswith("to_rgb") and not include_rgb:
            continue
        linear = conv.modulation  # EqualLinear: the layer uses weight * scale
        out.append((name, slot, (linear.weight * linear.scale).detach()))
    return sorted(out, key=lambda row: row[1])


def _fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign: make each one's largest-magnitude entry positive."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(vectors.gather(1, idx))
    return vectors * torch.where(signs == 0, torch.ones_like(signs), signs)


def sefa_factorize(
    generator: Generator, layers: Sequence[int] | None = None, k: int = DEFAULT_COUNT,
    include_rgb: bool = False, normalize: str = "official",
) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa's top-``k`` directions ``[K, S]`` and their eigenvalues ``[K]``, descending.

    ``layers``: the W+ slots whose modulation layers to factorise (default ``default_slots``).
    ``normalize``: ``official`` (unit-norm rows of A) or ``raw`` (see the module doc).
    """
    if normalize not in SEFA_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(SEFA_NORMALIZATIONS)}")
    slots = set(default_slots(generator) if layers is None else (int(s) for s in layers))
    if not slots or not all(0 <= s < generator.n_style for s in slots):
        raise ValueError(f"layers must be W+ slots in 0..{generator.n_style - 1}, got {sorted(slots)}")
    weights = [w for _, slot, w in modulation_layers(generator, include_rgb) if slot in slots]
    if not weights:
        raise ValueError(f"no modulation layer is fed by slots {sorted(slots)}")
    a = torch.cat(weights).double()  # [sum C_in, S]
    if normalize == "official":
        a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-30)  # a zero row stays zero
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"k must be in 1..{a.shape[1]}, got {k}")
    values, vectors = torch.linalg.eigh(a.T @ a)  # ascending
    order = torch.argsort(values, descending=True)[:k]
    top = vectors[:, order].T  # [K, S], orthonormal columns -> rows
    return _fix_signs(top).float(), values[order].float()


def sefa(generator: Generator, layers: Sequence[int] | None = None, k: int = DEFAULT_COUNT,
         normalize: str = "official") -> torch.Tensor:
    """SeFa directions ``[k, style_dim]``: unit norm, by eigenvalue descending."""
    return sefa_factorize(generator, layers, k, normalize=normalize)[0]


@torch.no_grad()
def sample_w(generator: Generator, n: int = PCA_SAMPLES, seed: int = PCA_SEED) -> torch.Tensor:
    """``n`` mapped W samples ``[n, S]`` (float64) from a fixed seed, mapped in chunks."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.style_dim, generator=rng)
    device = generator.input.input.device
    chunks = [generator.mapping(part.to(device)).double().cpu() for part in z.split(2048)]
    return torch.cat(chunks)


def pca_directions(w: torch.Tensor, k: int = DEFAULT_COUNT) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace: the top-``k`` principal axes ``[K, S]`` (orthonormal) of W samples ``[n, S]``
    and the standard deviation of the samples along each."""
    if w.ndim != 2 or not 1 <= k <= min(w.shape):
        raise ValueError(f"need [n, S] samples with k <= min(n, S), got {tuple(w.shape)}, k={k}")
    centred = w.double() - w.double().mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)  # singular values descending
    std = s[:k] / max(1, w.shape[0] - 1) ** 0.5
    return _fix_signs(vh[:k]).float(), std.float()


def _std_along(w: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return (w.double() @ vectors.double().T).std(0).float()


def compute_generator_directions(generator: Generator, k: int = DEFAULT_COUNT) -> dict:
    """Both methods' directions in the ``directions_<config>.pt`` layout (see module doc)."""
    slots = default_slots(generator)
    w = sample_w(generator)
    sefa_vecs, eigenvalues = sefa_factorize(generator, slots, k)
    pca_vecs, pca_std = pca_directions(w, k)
    vectors: dict[str, torch.Tensor] = {}
    meta: list[dict] = []
    for method, vecs, stds, extra in (
        ("sefa", sefa_vecs, _std_along(w, sefa_vecs), eigenvalues),
        ("pca", pca_vecs, pca_std, pca_std ** 2),
    ):
        for i in range(vecs.shape[0]):
            key = generator_key(method, i)
            vectors[key] = vecs[i].contiguous()
            meta.append({
                "key": key, "method": method, "index": i, "slots": list(slots),
                # full slider travel: GAIN_SIGMAS standard deviations of W along the direction
                "gain": round(GAIN_SIGMAS * float(stds[i]), 6),
                "sigma": round(float(stds[i]), 6),
                ("eigenvalue" if method == "sefa" else "variance"): round(float(extra[i]), 6),
            })
    named_vectors, named_meta, named = install_block(generator.n_style, w)
    vectors.update(named_vectors)
    meta.extend(named_meta)
    return {"version": SIDECAR_VERSION, "style_dim": generator.style_dim,
            "n_style": generator.n_style, "sefa_normalize": "official",
            "pca_samples": int(w.shape[0]), "pca_seed": PCA_SEED,
            "vectors": vectors, "directions": meta, "named": named}


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    write(tmp)
    os.replace(tmp, path)


def install_generator_directions(
    generator: Generator, config_name: str, weights_dir: str | Path, k: int = DEFAULT_COUNT
) -> Path:
    """Compute SeFa and PCA directions of ``generator`` and write them beside its weights:
    ``directions_<config>.pt`` (returned) and the ``directions_<config>.json`` sidecar."""
    directory = Path(weights_dir)
    directory.mkdir(parents=True, exist_ok=True)
    data = compute_generator_directions(generator, k)
    tensors = {"version": data["version"], "vectors": data["vectors"],
               "slots": {m["key"]: m["slots"] for m in data["directions"]},
               "gains": {m["key"]: m["gain"] for m in data["directions"]}}
    target = pt_path(directory, config_name)

    def save_pt(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: the archive's inner name stays fixed
            torch.save(tensors, f)

    _write_atomic(target, save_pt)
    sidecar = {k_: v for k_, v in data.items() if k_ != "vectors"}
    sidecar["config"] = config_name
    _write_atomic(sidecar_path(directory, config_name),
                  lambda tmp: tmp.write_text(json.dumps(sidecar, indent=1) + "\n"))
    return target


def load_generator_directions(path: str | Path, style_dim: int) -> dict[str, tuple[torch.Tensor, list[int], float]]:
    """``{key: (unit vector [S], slots, gain)}`` from a ``directions_<config>.pt`` file."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("vectors"), dict):
        raise ValueError(f"{path}: not a directions file (no 'vectors')")
    out = {}
    for key, vec in obj["vectors"].items():
        vec = torch.as_tensor(vec, dtype=torch.float32).reshape(-1)
        if vec.numel() != style_dim or not torch.isfinite(vec).all() or float(vec.norm()) == 0:
            raise ValueError(f"{path}: direction {key} is not a usable [{style_dim}] vector")
        slots = [int(s) for s in obj.get("slots", {}).get(key, [])]
        gain = float(obj.get("gains", {}).get(key, 0.0))
        out[str(key)] = (vec / vec.norm(), slots, gain)
    return out
