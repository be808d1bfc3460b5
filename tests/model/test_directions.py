"""Attribute names resolve, and edits follow the original slider formula without side effects."""

from __future__ import annotations

import pytest
import torch

from shared.codes.attributes import ALIASES, ATTRIBUTES, resolve_attribute
from worker.anycost.directions import Directions, UnknownAttributeError


@pytest.fixture
def directions() -> Directions:
    gen = torch.Generator().manual_seed(0)
    bounds = {}
    for key in ATTRIBUTES:
        v = torch.randn(1, 512, generator=gen)
        bounds[key] = v / v.norm()
    return Directions(bounds)


def test_catalogue():
    assert len(ATTRIBUTES) == 40 and ATTRIBUTES[0] == "00_5_o_Clock_Shadow" and ATTRIBUTES[-1] == "39_Young"
    assert all(k.startswith(f"{i:02d}_") for i, k in enumerate(ATTRIBUTES))
    assert set(ALIASES.values()) <= set(ATTRIBUTES) and len(ALIASES) == 7


@pytest.mark.parametrize(
    ("name", "key"),
    [("smiling", "31_Smiling"), ("Smiling", "31_Smiling"), ("31_Smiling", "31_Smiling"),
     ("SMILING", "31_Smiling"), ("blonde_hair", "09_Blond_Hair"), ("Blond_Hair", "09_Blond_Hair"),
     ("eyeglasses", "15_Eyeglasses"), ("young", "39_Young"), ("gray hair", "17_Gray_Hair"),
     ("5_o_Clock_Shadow", "00_5_o_Clock_Shadow")],
)
def test_resolve(directions, name, key):
    assert directions.resolve(name) == key
    assert resolve_attribute(name) == key


def test_unknown_name(directions):
    with pytest.raises(KeyError) as exc:
        directions.resolve("happiness")
    assert isinstance(exc.value, UnknownAttributeError)
    assert "happiness" in str(exc.value) and "smiling" in str(exc.value)
    partial = Directions({"31_Smiling": torch.ones(1, 512)})
    with pytest.raises(KeyError):
        partial.resolve("young")  # a real attribute, but not in this file


def test_edit_formula(directions):
    torch.manual_seed(0)
    wplus = torch.randn(2, 18, 512)
    before = wplus.clone()
    out = directions.edit(wplus, {"smiling": 0.5, "Young": -0.25})
    assert torch.equal(wplus, before)  # input untouched
    expected = before.clone()
    d1 = directions.direction("smiling")
    d2 = directions.direction("young")
    expected[:, :12] += 0.5 * 0.6 * d1 - 0.25 * 0.6 * d2
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(out[:, 12:], before[:, 12:])


def test_edit_few_slots_and_zero(directions):
    wplus = torch.randn(1, 10, 512)
    out = directions.edit(wplus, {"smiling": 1.0})
    assert torch.allclose(out - wplus, 0.6 * directions.direction("smiling").expand(1, 10, 512), atol=1e-6)
    assert torch.equal(directions.edit(wplus, {}), wplus)
    assert torch.equal(directions.edit(wplus, {"smiling": 0.0}), wplus)


@pytest.mark.parametrize("value", [1.01, -2, float("nan"), float("inf")])
def test_edit_value_range(directions, value):
    with pytest.raises(ValueError):
        directions.edit(torch.zeros(1, 18, 512), {"smiling": value})
