"""Measured preview costs (pure Python: the web side reads this, never torch).

When a generator is installed (and at the end of a training run) the worker measures how well
each preview cost agrees with the full render (``worker.anycost.preview_consistency``) and writes
the ``consistency_<config>.json`` sidecar beside the weights::

    {"version": 1, "config": "tiny-random", "resolution": 64, "n": 8, "seed": 0,
     "lpips": "vgg" or null, "measured_at": "2026-12-05T11:00:00+00:00",
     "costs": [{"channels": 0.25, "resolution": 32, "psnr": 17.76, "lpips": 0.41}, ...]}

``psnr`` (dB, images in [0, 1]) compares the preview with the full render box-filtered to the
preview's resolution; 100 means identical. ``lpips`` is null without the LPIPS files.

The model's default preview is the cheapest cost (by multiply-accumulates) whose PSNR meets the
bar (``ANYCOST_PREVIEW_MIN_PSNR``, 24 dB) at no less than the unmeasured default's resolution (a
quarter of the model's, 128 px at least where the model has it), else the full network. Costs
below the bar are *untrained*: a recipe may still pick one, but its preview may not match the
final. A model never measured keeps the unmeasured default (0.5 channels, a quarter of its size).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from shared.catalog.costs import generator_macs

SIDECAR_VERSION = 1
#: Default of ``ANYCOST_PREVIEW_MIN_PSNR``: a preview below this many dB is called untrained.
DEFAULT_MIN_PSNR = 24.0
#: What an identical render scores (PSNR is infinite there; JSON has no infinity).
IDENTICAL_PSNR = 100.0


def psnr_db(mse: float, peak: float = 1.0, cap: float | None = IDENTICAL_PSNR) -> float:
    """PSNR in dB of a mean squared error of images whose values span ``peak`` (1 for [0, 1],
    255 for 8-bit), at most ``cap``; identical images (``mse`` 0) score ``cap``, or infinity
    with ``cap=None``. The one convention of every PSNR the service reports."""
    if mse <= 0:
        return math.inf if cap is None else cap
    value = 10.0 * math.log10(peak * peak / mse)
    return value if cap is None else min(cap, value)

#: ``(channels, resolution)`` of one cost.
CostPair = tuple[float, int]


def sidecar_path(weights_dir: str | Path, config: str) -> Path:
    return Path(weights_dir) / f"consistency_{config}.json"


def legacy_preview(model_resolution: int) -> CostPair:
    """The preview of a model never measured: half the channels at a quarter of its size (128 px
    at least, or half a small model's size)."""
    floor = min(128, model_resolution // 2)
    return 0.5, max(floor, model_resolution // 4)


_cache: dict[Path, tuple[tuple[int, int], dict | None]] = {}


def read_consistency(weights_dir: str | Path, config: str) -> dict | None:
    """The config's measured table (``{(channels, resolution): {"psnr", "lpips"}}`` under
    ``"by_cost"``, plus the sidecar's fields), or None when never measured or unreadable."""
    path = sidecar_path(weights_dir, config)
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_ino)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        data = json.loads(path.read_text())
        by_cost = {
            (float(c["channels"]), int(c["resolution"])): {
                "psnr": float(c["psnr"]),
                "lpips": None if c.get("lpips") is None else float(c["lpips"]),
            }
            for c in data["costs"]
        }
        table = {**{k: data[k] for k in ("n", "seed", "lpips", "measured_at") if k in data},
                 "by_cost": by_cost}
    except (OSError, ValueError, KeyError, TypeError):
        table = None
    _cache[path] = (stamp, table)
    return table


def _macs(config, cost: CostPair) -> float:
    try:
        return generator_macs(config.resolution, cost[0], target_resolution=cost[1],
                              channel_multiplier=config.channel_multiplier,
                              channel_max=config.channel_max, style_dim=config.style_dim)
    except ValueError:  # a config the cost model cannot describe: width^2 x pixels ranks alike
        return (cost[0] * cost[1]) ** 2


def pick_preview(config, by_cost: dict[CostPair, dict], min_psnr: float) -> CostPair:
    """The cheapest measured cost meeting ``min_psnr`` at the preview floor, else the full network."""
    floor = legacy_preview(config.resolution)[1]
    meeting = [cost for cost, figures in by_cost.items()
               if floor <= cost[1] <= config.resolution and figures["psnr"] >= min_psnr]
    if not meeting:
        return 1.0, config.resolution
    return min(meeting, key=lambda cost: (_macs(config, cost), cost))


def default_preview(config, weights_dir: str | Path, min_psnr: float) -> CostPair:
    """``config``'s default preview cost (see the module doc)."""
    table = read_consistency(weights_dir, config.name)
    if table is None:
        return legacy_preview(config.resolution)
    return pick_preview(config, table["by_cost"], min_psnr)


def cost_figures(config, weights_dir: str | Path, min_psnr: float,
                 cost: CostPair) -> dict:
    """What the API and the portal show of one cost: ``psnr``, ``lpips`` (None when not
    measured) and ``untrained`` (below the bar; None when the model was never measured)."""
    table = read_consistency(weights_dir, config.name)
    figures = None if table is None else table["by_cost"].get((float(cost[0]), int(cost[1])))
    if figures is None:
        return {"psnr": None, "lpips": None, "untrained": None}
    return {**figures, "untrained": figures["psnr"] < min_psnr}


def preview_untrained(config, weights_dir: str | Path, min_psnr: float, cost: CostPair) -> bool:
    """Whether a preview at ``cost`` was measured below the bar (its preview may not match the
    final); False when the model was never measured."""
    return bool(cost_figures(config, weights_dir, min_psnr, cost)["untrained"])
