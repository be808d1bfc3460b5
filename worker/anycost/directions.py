"""Attribute edits in W+: the boundary directions and the original editor's slider formula.

``Directions`` wraps a boundary dict (``boundary_<config>.pt``: 40 unit-norm [1, S] tensors keyed
'00_5_o_Clock_Shadow' ... '39_Young'). An edit never modifies its input:
``w'[:, :min(12, L)] = w[:, :min(12, L)] + sum(value * 0.6 * direction)``, value in [-1, 1].
Tensor legend: N batch, L n_style, S style_dim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from shared.attributes import (
    ALIASES,
    ATTRIBUTES,
    EDIT_GAIN,
    EDIT_RANGE,
    EDIT_SLOTS,
    resolve_attribute,
)

__all__ = ["ALIASES", "ATTRIBUTES", "Directions", "UnknownAttributeError"]


class UnknownAttributeError(KeyError):
    """An attribute name that is neither an alias, a boundary key nor a CelebA name."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else super().__str__()


class Directions:
    """Edit directions keyed by boundary key, with name resolution and the slider formula."""

    def __init__(self, boundaries: Mapping[str, torch.Tensor]):
        """boundaries: {boundary key: [1, S] or [S] tensor}; the keys need not be all 40."""
        if not boundaries:
            raise ValueError("no edit directions given")
        self._dirs = {k: v.detach().reshape(-1) for k, v in boundaries.items()}
        dims = {v.numel() for v in self._dirs.values()}
        if len(dims) != 1:
            raise ValueError(f"directions of different widths: {sorted(dims)}")
        self.style_dim = dims.pop()

    def keys(self) -> list[str]:
        """Available boundary keys, in file order."""
        return list(self._dirs)

    def resolve(self, name: str) -> str:
        """Boundary key for an alias ('smiling'), a key ('31_Smiling') or a CelebA name ('Smiling')."""
        if name in self._dirs:
            return name
        try:
            key = resolve_attribute(name)
        except KeyError as e:
            raise UnknownAttributeError(e.args[0]) from None
        if key not in self._dirs:
            raise UnknownAttributeError(f"attribute {name!r} ({key}) has no direction in this file")
        return key

    def direction(self, name: str) -> torch.Tensor:
        """The [S] direction for a name (see ``resolve``)."""
        return self._dirs[self.resolve(name)]

    def edit(self, wplus: torch.Tensor, edits: Mapping[str, float]) -> torch.Tensor:
        """Return a new W+ [N, L, S] with every edit applied to the first min(12, L) slots.

        Values must lie in [-1, 1] (ValueError otherwise); unknown names raise
        UnknownAttributeError (a KeyError). The input tensor is left untouched.
        """
        if wplus.ndim != 3 or wplus.shape[-1] != self.style_dim:
            raise ValueError(f"wplus must be [N, L, {self.style_dim}], got {tuple(wplus.shape)}")
        lo, hi = EDIT_RANGE
        resolved = []
        for name, value in edits.items():
            v = float(value)
            if not (lo <= v <= hi) or math.isnan(v):
                raise ValueError(f"edit value for {name!r} must be in [{lo}, {hi}], got {value!r}")
            resolved.append((self.direction(name), v))
        out = wplus.clone()
        n_slots = min(EDIT_SLOTS, wplus.shape[1])
        for direction, v in resolved:
            d = direction.to(device=out.device, dtype=out.dtype)
            out[:, :n_slots] = out[:, :n_slots] + v * EDIT_GAIN * d
        return out
