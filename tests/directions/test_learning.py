"""A direction learned from examples separates them and points along the attribute (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.catalog.directions import DirectionNameError, check_direction_name
from shared.commands.learning import latent_feature, learn_direction


def _examples(seed: int, n_pos: int, n_neg: int, shift: float = 1.5, dims: int = 512):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal(dims)
    hidden /= np.linalg.norm(hidden)
    base = rng.standard_normal((n_pos + n_neg, dims))  # ~N(0, 1) per dim: |noise| ~ 22 >> shift
    pos = base[:n_pos] + shift * hidden
    neg = base[n_pos:] - shift * hidden
    return list(pos), list(neg), hidden


@pytest.mark.parametrize(("seed", "n"), [(0, 5), (1, 12), (2, 40)])
def test_learned_direction_separates_its_examples(seed, n):
    pos, neg, hidden = _examples(seed, n, n + 1)
    learned = learn_direction(pos, neg, n_style=10)
    d = np.asarray(learned.vector)
    assert abs(np.linalg.norm(d) - 1) < 1e-9
    proj_pos, proj_neg = np.asarray(pos) @ d, np.asarray(neg) @ d
    assert proj_pos.min() > proj_neg.max()  # every example on its side
    assert learned.margin == pytest.approx(proj_pos.min() - proj_neg.max())
    assert learned.accuracy == 1.0 and learned.slots == list(range(10))
    assert learned.gain == pytest.approx(proj_pos.mean() - proj_neg.mean()) and learned.gain > 0
    if n >= 40:  # it finds the attribute, not just any separating plane: a random unit
        # vector has |cos| ~ 0.04 here, the best linear estimate from 81 examples about 0.5
        assert float(d @ hidden) > 0.3


def test_learning_refuses_too_few_or_degenerate_examples():
    pos, neg, _ = _examples(3, 5, 5)
    with pytest.raises(ValueError, match="at least 5"):
        learn_direction(pos[:4], neg, n_style=18)
    same = [np.ones(512)] * 5
    with pytest.raises(ValueError):
        learn_direction(same, same, n_style=18)
    with pytest.raises(ValueError, match="not finite"):
        learn_direction([np.full(512, np.nan)] * 5, neg, n_style=18)


def test_latent_feature_is_the_first_face_over_the_edit_slots():
    codes = np.arange(2 * 14 * 3, dtype=np.float32).reshape(2, 14, 3)
    feature = latent_feature(codes.tobytes(), [2, 14, 3])
    assert np.allclose(feature, codes[0, :12].mean(0))
    with pytest.raises(ValueError):
        latent_feature(codes.tobytes(), [84])


@pytest.mark.parametrize("bad", ["", "Smiling", "smiling", "31_smiling", "sefa_01", "pca_x",
                                 "9lives", "a" * 41, "has space", 7])
def test_direction_names(bad):
    assert check_direction_name("freckles") == "freckles"
    assert check_direction_name("user:red_nose2") == "red_nose2"
    with pytest.raises(DirectionNameError):
        check_direction_name(bad)
