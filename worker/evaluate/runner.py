"""One evaluation from its parameters: loads the metric's files as the settings say, picks the
costs, runs the metric. Shared by the command line and the worker's jobs."""

from __future__ import annotations

from dataclasses import dataclass

from shared.platform.settings import Settings
from worker.anycost import perceptual
from worker.anycost.perceptual import LpipsMissing, lpips_available
from worker.evaluate.common import EvaluationError, full_cost, select_costs
from worker.evaluate.consistency import evaluate_consistency
from worker.evaluate.fid import evaluate_fid
from worker.evaluate.inception import load_inception
from worker.evaluate.ppl import evaluate_ppl, with_options
from worker.evaluate.ppl_distance import load_ppl_distance

KINDS = ("fid", "ppl", "consistency")


@dataclass(frozen=True)
class Request:
    """What to measure. ``channels``/``resolution`` narrow the costs (None: FID and consistency
    take every cost, PPL the full one); ``data_dir`` is FID's data set, a folder of images or an
    ``.npz`` statistics file (None: the full model). ``protocol``: FID ``nvidia`` / ``legacy``,
    PPL one of ``worker.evaluate.ppl.PROTOCOLS`` (None: ``nvidia`` / ``ppl2_wend``); the PPL
    options override its space, sampling and crop; ``distance`` picks PPL's LPIPS network."""

    kind: str
    n: int
    channels: float | None = None
    resolution: int | None = None
    seed: int = 0
    data_dir: str | None = None
    batch_size: int = 8
    protocol: str | None = None
    space: str | None = None
    sampling: str | None = None
    crop: bool | None = None
    distance: str = "auto"


def costs_for(request: Request, model_resolution: int) -> list:
    if request.kind == "ppl" and request.channels is None and request.resolution is None:
        return [full_cost(model_resolution)]
    return select_costs(model_resolution, request.channels, request.resolution)


def load_lpips(net: str, backbone_path: str, device) -> object:
    """``perceptual.load_lpips`` with a missing file as this package's EvaluationError."""
    try:
        return perceptual.load_lpips(net, backbone_path, device)
    except LpipsMissing as exc:
        raise EvaluationError(exc.code, exc.message) from exc


def run(request: Request, bundle, settings: Settings) -> dict:
    """The metric's result (JSON-friendly); raises EvaluationError for a missing file."""
    if request.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    costs = costs_for(request, bundle.resolution)
    device = bundle.device
    if request.kind == "fid":
        inception = load_inception(settings.inception_path, settings.inception_sha256, device)
        result = evaluate_fid(bundle, inception, request.n, costs, request.seed, request.data_dir,
                              settings.eval_cache_dir, request.batch_size,
                              protocol=request.protocol or "nvidia")
    elif request.kind == "ppl":
        protocol = with_options(request.protocol or "ppl2_wend", request.space, request.sampling,
                                request.crop)
        distance = load_ppl_distance(settings, request.distance, device)
        result = evaluate_ppl(bundle, distance, request.n, costs, request.seed, protocol,
                              request.batch_size)
    else:
        name = next((n for n in ("vgg", "alex")
                     if lpips_available(n, settings.lpips_vgg_path if n == "vgg" else "")), None)
        net = load_lpips(name, settings.lpips_vgg_path if name == "vgg" else "", device) if name else None
        result = evaluate_consistency(bundle, request.n, costs, request.seed, net,
                                      f"lpips_{name}" if name else None, request.batch_size)
    return {"model": bundle.config, "pretrained": bool(bundle.pretrained), **result}
