"""Attribute edits in W+: the boundary directions, the generator's own directions, a user's
directions, and the original editor's slider formula.

``Directions`` wraps a boundary dict (``boundary_<config>.pt``: 40 unit-norm [1, S] tensors keyed
'00_5_o_Clock_Shadow' ... '39_Young') and, optionally, more ``Direction``s by stored key
(``sefa_00``, ``pca_00`` ... from ``directions_<config>.pt``; ``user:<name>`` per edit). An edit
never modifies its input: ``w'[:, slots] = w[:, slots] + sum(value * gain * direction)``, value
in [-1, 1]; a boundary's slots are the first min(12, L) and its gain 0.6 (the slider formula).
``sefa`` and ``install_generator_directions`` (``worker.anycost.factorize``) compute the
generator's own directions. Tensor legend: N batch, L n_style, S style_dim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from shared.codes.attributes import (
    ALIASES,
    ATTRIBUTES,
    EDIT_GAIN,
    EDIT_RANGE,
    EDIT_SLOTS,
    resolve_attribute,
)
from worker.anycost.factorize import (
    install_generator_directions,
    load_generator_directions,
    pca_directions,
    sefa,
)

__all__ = [
    "ALIASES", "ATTRIBUTES", "Direction", "Directions", "UnknownAttributeError",
    "install_generator_directions", "load_generator_directions", "pca_directions", "sefa",
]


class UnknownAttributeError(KeyError):
    """An attribute name that is neither an alias, a boundary key nor a CelebA name."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else super().__str__()


@dataclass(frozen=True)
class Direction:
    """One edit direction: a unit vector [S], the W+ slots it moves (None: the first
    min(12, L)) and the W displacement at value 1."""

    vector: torch.Tensor
    slots: tuple[int, ...] | None = None
    gain: float = EDIT_GAIN

    @classmethod
    def make(cls, vector, slots: Sequence[int] | None = None, gain: float = EDIT_GAIN) -> Direction:
        vec = torch.as_tensor(vector, dtype=torch.float32).detach().reshape(-1)
        if not torch.isfinite(vec).all() or not math.isfinite(gain) or gain <= 0:
            raise ValueError("a direction needs a finite vector and a positive gain")
        return cls(vec, tuple(int(s) for s in slots) if slots else None, float(gain))

    def slot_index(self, n_style: int) -> slice | list[int]:
        if self.slots is None:
            return slice(0, min(EDIT_SLOTS, n_style))
        if max(self.slots) >= n_style or min(self.slots) < 0:
            raise ValueError(f"direction slots {list(self.slots)} do not fit {n_style} W+ slots")
        return list(self.slots)


class Directions:
    """Edit directions keyed by stored key, with name resolution and the slider formula."""

    def __init__(
        self, boundaries: Mapping[str, torch.Tensor] | None = None,
        extra: Mapping[str, Direction] | None = None,
    ):
        """boundaries: {boundary key: [1, S] or [S] tensor}; the keys need not be all 40.
        extra: more directions by stored key (generator directions)."""
        self._dirs: dict[str, Direction] = {
            k: Direction.make(v) for k, v in (boundaries or {}).items()
        }
        self._dirs.update(extra or {})
        if not self._dirs:
            raise ValueError("no edit directions given")
        dims = {d.vector.numel() for d in self._dirs.values()}
        if len(dims) != 1:
            raise ValueError(f"directions of different widths: {sorted(dims)}")
        self.style_dim = dims.pop()

    def keys(self) -> list[str]:
        """Available stored keys: boundaries in file order, then the extra ones."""
        return list(self._dirs)

    def resolve(self, name: str, extra: Mapping[str, Direction] | None = None) -> str:
        """Stored key for an alias ('smiling'), a key ('31_Smiling', 'sefa_00', or one of
        ``extra``) or a CelebA name ('Smiling')."""
        if name in self._dirs or (extra and name in extra):
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
        return self._dirs[self.resolve(name)].vector

    def get(self, name: str, extra: Mapping[str, Direction] | None = None) -> Direction:
        """The ``Direction`` for a name (see ``resolve``), looked up in ``extra`` too."""
        key = self.resolve(name, extra)
        return extra[key] if extra and key in extra else self._dirs[key]

    def edit(
        self, wplus: torch.Tensor, edits: Mapping[str, float],
        extra: Mapping[str, Direction] | None = None,
    ) -> torch.Tensor:
        """Return a new W+ [N, L, S] with every edit applied to its direction's slots.

        Values must lie in [-1, 1] (ValueError otherwise); unknown names raise
        UnknownAttributeError (a KeyError). ``extra``: directions of this call only (a user's).
        The input tensor is left untouched.
        """
        if wplus.ndim != 3 or wplus.shape[-1] != self.style_dim:
            raise ValueError(f"wplus must be [N, L, {self.style_dim}], got {tuple(wplus.shape)}")
        lo, hi = EDIT_RANGE
        resolved = []
        for name, value in edits.items():
            v = float(value)
            if not (lo <= v <= hi) or math.isnan(v):
                raise ValueError(f"edit value for {name!r} must be in [{lo}, {hi}], got {value!r}")
            direction = self.get(name, extra)
            if direction.vector.numel() != self.style_dim:
                raise ValueError(f"direction {name!r} has {direction.vector.numel()} dims, "
                                 f"need {self.style_dim}")
            resolved.append((direction, v))
        out = wplus.clone()
        for direction, v in resolved:
            d = direction.vector.to(device=out.device, dtype=out.dtype)
            slots = direction.slot_index(wplus.shape[1])
            out[:, slots] = out[:, slots] + v * direction.gain * d
        return out
