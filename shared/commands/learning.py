"""Learning an edit direction from examples: a linear classifier in W (numpy, no torch).

A user marks items that have an attribute and items that lack it. Each item's feature is the
mean of its first face's W+ code over the slots edits touch (the W the slider formula moves);
an L2-regularised logistic regression separates the two sets, and its weight vector, made
unit norm, is the direction (InterFaceGAN's idea, with a logistic model instead of an SVM).
The gain is the distance between the two sets' centroids along it, so value 1 moves a typical
"lacking" item about as far as a typical "having" one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.catalog.directions import MIN_EXAMPLES
from shared.codes.attributes import EDIT_SLOTS

#: L2 penalty relative to the mean squared feature norm: strong enough to keep the separable,
#: few-example problem well posed, weak enough not to wash out the signal.
RIDGE = 0.1
NEWTON_STEPS = 50


@dataclass(frozen=True)
class LearnedDirection:
    vector: list[float]  # unit norm, [S]
    gain: float  # W displacement at value 1
    slots: list[int]  # W+ slots it applies to
    accuracy: float  # on the examples themselves
    margin: float  # min positive projection minus max negative one (> 0: separated)


def latent_feature(data: bytes, shape: Sequence[int]) -> np.ndarray:
    """Stored latent bytes (float32 ``[F, L, S]``) -> the first face's W ``[S]`` (float64)."""
    arr = np.frombuffer(data, dtype=np.float32).reshape(tuple(shape))
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise ValueError(f"a latent is [faces, slots, style_dim], got {list(shape)}")
    return arr[0, :min(EDIT_SLOTS, arr.shape[1])].astype(np.float64).mean(0)


def edit_slots(n_style: int) -> list[int]:
    return list(range(min(EDIT_SLOTS, n_style)))


def _logistic(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights [S + 1] (last: bias) of an L2-regularised logistic regression, by Newton steps.
    Solved in the n-dimensional dual form of each step, since n (examples) << S (dims)."""
    n, s = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    lam = ridge * float(np.mean(np.sum(x * x, axis=1))) + 1e-12
    penalty = np.full(s + 1, lam)
    penalty[-1] = lam * 1e-2  # the features are centred: the bias stays small anyway
    w = np.zeros(s + 1)
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + penalty * w
        r = np.maximum(p * (1 - p), 1e-9)
        # (X^T R X + P)^-1 g via Woodbury: P^-1 g - P^-1 X^T (R^-1 + X P^-1 X^T)^-1 X P^-1 g
        pinv_g = grad / penalty
        xp = xb / penalty
        inner = np.diag(1.0 / r) + xp @ xb.T
        step = pinv_g - xp.T @ np.linalg.solve(inner, xb @ pinv_g)
        w -= step
        if np.linalg.norm(step) < 1e-10 * (1 + np.linalg.norm(w)):
            break
    return w


def learn_direction(
    positive: Sequence[np.ndarray], negative: Sequence[np.ndarray], n_style: int,
    ridge: float = RIDGE,
) -> LearnedDirection:
    """A unit direction from W features of items with (``positive``) and without the attribute."""
    if len(positive) < MIN_EXAMPLES or len(negative) < MIN_EXAMPLES:
        raise ValueError(f"need at least {MIN_EXAMPLES} items with and {MIN_EXAMPLES} without")
    x = np.vstack([np.asarray(v, dtype=np.float64) for v in (*positive, *negative)])
    if not np.all(np.isfinite(x)):
        raise ValueError("the examples' codes are not finite")
    y = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    centre = x.mean(0)
    w = _logistic(x - centre, y, ridge)[:-1]
    norm = float(np.linalg.norm(w))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("the examples do not define a direction (identical codes?)")
    d = w / norm
    proj = x @ d
    pos, neg = proj[: len(positive)], proj[len(positive):]
    if pos.mean() <= neg.mean():
        raise ValueError("the examples are not separable along any direction")
    threshold = (pos.mean() + neg.mean()) / 2
    accuracy = float(np.mean(np.r_[pos > threshold, neg <= threshold]))
    return LearnedDirection(
        vector=[float(v) for v in d], gain=float(pos.mean() - neg.mean()),
        slots=edit_slots(n_style), accuracy=accuracy, margin=float(pos.min() - neg.max()),
    )
