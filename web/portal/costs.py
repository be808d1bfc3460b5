"""Preview and final costs as the portal shows them: the choices a model allows, the MACs of each
(channel ratio, resolution) sub-network and a rough time to render one image.

The time is MACs divided by a throughput. When the worker has rendered for this user before, the
throughput measured on those renders is used; otherwise a typical data-centre GPU's figure. It is
a rough guide, and the page says so.
"""

from __future__ import annotations

import statistics

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.catalog.configs import ModelConfig
from shared.catalog.costs import generator_macs
from shared.catalog.preview_costs import cost_figures
from shared.recipe.parse import (
    CHANNEL_RATIOS,
    allowed_resolutions,
    default_costs,
    model_default_costs,
)
from shared.store.tables import Batch, Item

#: Renders looked at to measure the workers' speed.
SAMPLE_ITEMS = 40

#: Assumed effective throughput (multiply-accumulates per second) of a current GPU in fp32, when
#: nothing has been measured yet. Real kernels reach a fraction of the peak; this is that fraction.
DEFAULT_MACS_PER_SECOND = 5e12


def cost_table(model: ModelConfig) -> dict[str, int]:
    """``"<ratio>@<px>" -> MACs`` for every allowed cost of ``model``."""
    table = {}
    for ratio in CHANNEL_RATIOS:
        for res in allowed_resolutions(model.resolution):
            table[cost_key(ratio, res)] = generator_macs(
                model.resolution, ratio, target_resolution=res,
                channel_multiplier=model.channel_multiplier, channel_max=model.channel_max,
                style_dim=model.style_dim,
            )
    return table


def cost_key(ratio: float, resolution: int) -> str:
    return f"{float(ratio):g}@{int(resolution)}"


def measured_macs_per_second(db: Session, owner_id: int, model: ModelConfig) -> float | None:
    """The workers' speed on this model, from the render times of the user's recent items
    (the worker stores ``render_preview`` / ``render_final`` seconds per image); None if none."""
    rows = db.execute(
        select(Item.timings, Item.preview_cost, Item.final_cost).join(Batch)
        .where(Batch.owner_id == owner_id, Item.model_name == model.name)
        .order_by(Item.updated_at.desc()).limit(SAMPLE_ITEMS)
    ).all()
    table = cost_table(model)
    rates = []
    for timings, preview, final in rows:
        for stage, cost in (("preview", preview), ("final", final)):
            seconds = (timings or {}).get(f"render_{stage}")
            macs = table.get(cost_key(cost["channels"], cost["resolution"])) if cost else None
            if isinstance(seconds, int | float) and seconds > 0 and macs:
                rates.append(macs / seconds)
    return statistics.median(rates) if rates else None


def measured_figures(model: ModelConfig, settings) -> dict[str, dict]:
    """``"<ratio>@<px>" -> {"psnr", "lpips", "untrained"}``: each cost's measured agreement with
    the full render (``shared.catalog.preview_costs``; None figures when never measured)."""
    bar = settings.preview_min_psnr
    return {cost_key(ratio, res): cost_figures(model, settings.weights_dir, bar, (ratio, res))
            for ratio in CHANNEL_RATIOS for res in allowed_resolutions(model.resolution)}


def cost_options(model: ModelConfig, macs_per_second: float | None = None,
                 settings=None) -> dict:
    """Everything the cost sliders need, for the page's JSON (``data-costs``); with
    ``settings``, the model's measured default preview and each cost's measured figures."""
    if settings is None:
        preview, final = default_costs(model.resolution)
        figures, bar = {}, None
    else:
        preview, final = model_default_costs(model, settings.weights_dir,
                                             settings.preview_min_psnr)
        figures, bar = measured_figures(model, settings), settings.preview_min_psnr
    return {
        "channels": list(CHANNEL_RATIOS),
        "resolutions": allowed_resolutions(model.resolution),
        "macs": cost_table(model),
        "macs_per_second": macs_per_second or DEFAULT_MACS_PER_SECOND,
        "measured": macs_per_second is not None,
        "default_preview": preview.as_dict(),
        "default_final": final.as_dict(),
        "consistency": figures,
        "preview_min_psnr": bar,
    }


def format_macs(macs: float) -> str:
    """``28.9 GMACs``, ``412 MMACs``: the unit the paper uses."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.3g} {unit}MACs"
    return f"{int(macs)} MACs"
