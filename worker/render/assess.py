"""The pipeline's quality steps: how each face got its code (encoder, encoder+refine or
optimisation from w_avg) and at what error, the discriminator's realism logit of every preview
and final, and a final's consistency with the item's last preview.

They work on renders the pipeline already made (one extra cheap pass per final group: the last
preview, re-rendered from the stored code at the preview cost, deterministic noise) and record
on the ``RenderJob``; ``worker.render.store`` writes it with the result. Errors are MSE in [-1, 1] units,
the measure ``inversion.refine`` reports. A measure that fails is logged and left out: it never
costs the item its result.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from worker.render import projection, projector, quality, stages
from worker.render.faces.align import render_quad
from worker.render.images import from_uint8
from worker.render.job import RenderJob
from worker.render.runtime import Runtime

log = logging.getLogger(__name__)


def _best_effort(fn: Callable) -> Callable:
    """Run a measure; on an exception log it and return None (the render stands)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("quality measure %s failed; the result is kept without it", fn.__name__)
            return None

    return run


def discriminator(rt: Runtime) -> torch.nn.Module | None:
    """The model's discriminator, None when the config has none installed."""
    return getattr(rt.bundle, "discriminator", None)


@_best_effort
def score(rt: Runtime, job: RenderJob, kind: str, images: torch.Tensor) -> None:
    """The realism logit of one item's rendered faces ``[F, 3, R, R]`` (their mean) as
    ``job.realism[kind]``; nothing without a discriminator."""
    d = discriminator(rt)
    wanted = rt.settings.realism == "all" or (rt.settings.realism == "finals" and kind == "final")
    if d is None or not wanted:
        return
    started = time.perf_counter()
    with rt.inference():
        logits = quality.realism_logits(d, images)
    job.realism[kind] = quality.item_logit(logits)
    job.add_time(f"realism_{kind}", time.perf_counter() - started)


@_best_effort
def encoder_projection(job: RenderJob, projected: torch.Tensor,
                       method: str = "encoder") -> dict | None:
    """The encoder's projection error: its unedited render ``[F, 3, R, R]`` against the aligned
    faces the encoder saw, at the render's resolution. ``method``: which encoder (``encoder``,
    Anycost's; ``e4e`` or ``psp``, an imported one: ``ModelBundle.encoder_method``)."""
    size = int(projected.shape[-1])
    targets = quality.resize(from_uint8(np.stack(job.crops), projected.device), size)
    error = float(F.mse_loss(projected.float(), targets))
    return {"method": method, "error": quality.finite(error), "resolution": size}


def projection_targets(rt: Runtime, job: RenderJob, rgb: np.ndarray) -> np.ndarray:
    """The aligned faces an encoder-less projection optimises towards ``[F, R, R, 3]``."""
    size = projection.projection_size(rt.bundle.resolution)
    return np.stack([render_quad(rgb, np.asarray(m["transform"]["quad"]), size)
                     for m in job.face_meta])


def render_resolution(rt: Runtime, size: int) -> int:
    """Where a projection compared at ``size`` renders (``projection.fit_render_resolution``)."""
    from shared.catalog.configs import UnknownConfigError, get_model_config

    try:
        config = get_model_config(rt.bundle.config, rt.settings.weights_dir)
    except UnknownConfigError:
        return size
    return projection.fit_render_resolution(rt.bundle.resolution, size, config,
                                            rt.settings.weights_dir, rt.settings.preview_min_psnr)


OPTIMISED = (projection.METHOD, projector.METHOD, f"{projector.METHOD}+wplus")


def optimise(rt: Runtime, job: RenderJob) -> None:
    """Project the item's faces by optimisation from w_avg (a config without an encoder)."""
    limit = float(rt.settings.projection_max_seconds) or None
    steps = int(rt.settings.projection_steps)
    side = render_resolution(rt, int(np.asarray(job.targets).shape[1]))
    if rt.settings.projection_method == "w":
        code, info = projector.project(rt.bundle, job.targets, steps,
                                       wplus_steps=int(rt.settings.projection_wplus_steps),
                                       max_seconds=limit,
                                       optimize_noise=bool(rt.settings.projection_noise),
                                       render_resolution=side)
        details = {"method": info["method"], "distance": info["distance"],
                   "final_distance": quality.finite(info["final_distance"]),
                   "error_start": quality.finite(info["error_before"])}
    else:
        code, info = projection.project(rt.bundle, job.targets, steps, max_seconds=limit,
                                        render_resolution=side)
        details = {"method": projection.METHOD, "loss": info["loss"],
                   "error_start": quality.finite(info["error_before"])}
    job.latent = code.detach()
    job.targets = None
    job.projection = {
        **details, "error": quality.finite(info["error"]), "steps": info["steps"],
        "stopped_early": info["stopped_early"], "resolution": info["resolution"],
    }
    job.add_time("project", info["seconds"])
    job.add_time("project_per_step", info["seconds"] / max(1, info["steps"]))


def after_refine(job: RenderJob, info: dict) -> None:
    """A final's refinement changes how the face was projected, and its error."""
    base = dict(job.projection or {"method": "encoder"})
    encoder = base.get("method", "encoder").removesuffix("+refine")
    method = base["method"] if base.get("method") in OPTIMISED else f"{encoder}+refine"
    job.projection = {
        **base, "method": method, "error": quality.finite(info["error_after"]),
        "error_before_refine": quality.finite(info["error_before"]), "refine_steps": info["steps"],
        "resolution": info["resolution"],
    }


@_best_effort
def render_last_previews(rt: Runtime, group: list[RenderJob]) -> None:
    """The item's last preview again, from its stored code at its preview cost (one forward
    pass per group of the same preview cost), kept in ``job.renders["last_preview"]``."""
    cost = group[0].preview_cost
    started = time.perf_counter()
    with rt.inference():
        codes = [stages.edit_faces(rt.bundle, job.latent, job.edits_per_face(),
                                   job.user_directions) for job in group]
        images = stages.render(rt.bundle, torch.cat(codes), cost).float()
    offset = 0
    share = (time.perf_counter() - started) / len(group)
    for job in group:
        n = len(job.latent)
        job.renders["last_preview"] = images[offset:offset + n]
        offset += n
        job.add_time("render_last_preview", share)


@_best_effort
def final_consistency(job: RenderJob, final: torch.Tensor) -> None:
    """``job.consistency`` of the final's faces ``[F, 3, R, R]`` with the last preview's."""
    preview = job.renders.pop("last_preview", None)
    if preview is None:
        return
    started = time.perf_counter()
    job.consistency = quality.consistency(final, preview)
    job.add_time("consistency", time.perf_counter() - started)
