"""Named FFHQ edits (InterFaceGAN, GANSpace): installed for a generator whose mean W fits the
shipped ``ffhq_pca.pt``, refused (and ``weights list`` says why) for one that does not, and each
named edit moves exactly its documented slots by its documented amount."""

from __future__ import annotations

import json
import math

import pytest
import torch

from shared.catalog.directions import (
    DirectionNameError,
    check_direction_name,
    edit_names,
    generator_directions,
    named_status,
)
from shared.recipe.parse import parse_recipe
from worker.anycost import ffhq_directions as ffhq
from worker.anycost.directions import Direction, Directions
from worker.anycost.factorize import (
    install_generator_directions,
    load_generator_directions,
    sample_w,
)
from worker.anycost.generator import Generator
from worker.anycost.weights.cli import run

INTERFACEGAN = ("smile", "age", "pose")


def _ffhq_shaped(seed: int = 3) -> Generator:
    """A 1024 px generator (18 W+ slots, 512-d W) with narrow layers: cheap, random weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Generator(1024, channel_max=8).eval()


@torch.no_grad()
def _move_mean_w(generator: Generator, target: torch.Tensor, rounds: int = 12) -> None:
    """Shift the last mapping layer's bias until the mean of ``sample_w`` is ``target``
    (Newton steps through its leaky ReLU: slope sqrt(2) * lr_mul * (1 or 0.2))."""
    last = generator.style[-1]
    for _ in range(rounds):
        w = sample_w(generator)
        slope = math.sqrt(2) * last.lr_mul * (0.2 + 0.8 * (w > 0).double().mean(0))
        last.bias += ((target.double() - w.mean(0)) / slope).float()


@pytest.fixture(scope="module")
def fitting(tmp_path_factory):
    """(weights dir, loaded directions) of an FFHQ-shaped generator moved onto FFHQ's mean W."""
    generator = _ffhq_shaped()
    _move_mean_w(generator, ffhq.load_pca()["mean"])
    directory = tmp_path_factory.mktemp("weights-ffhq")
    path = install_generator_directions(generator, "ffhq-like", directory)
    return directory, load_generator_directions(path, 512)


def test_installed_for_a_generator_whose_mean_w_fits(fitting):
    directory, loaded = fitting
    status = named_status(directory, "ffhq-like")
    assert status["installed"] is True and status["count"] == 12
    assert status["mean_w_distance"] < ffhq.MEAN_W_TOLERANCE
    keys = {d["key"]: d for d in generator_directions(directory, "ffhq-like")}
    named = {f"interfacegan_{n}" for n in INTERFACEGAN} | {f"ganspace_{n}" for n in ffhq.GANSPACE_EDITS}
    assert named <= set(keys) and named <= set(loaded)
    assert keys["ganspace_eye_openness"]["label"] == "eye openness (GANSpace)"
    assert keys["interfacegan_smile"]["label"] == "smile (InterFaceGAN)"
    assert keys["sefa_00"]["label"] == "SEFA 0"  # the generator's own directions stay


def test_refused_for_the_nvidia_reference_network(imported, capsys):
    directory, _ = imported
    status = named_status(directory, "ada-ref64")
    assert status["installed"] is False and "18 W+ slots" in status["reason"]
    assert not any(d["method"] in ("interfacegan", "ganspace")
                   for d in generator_directions(directory, "ada-ref64"))
    assert any(d["key"] == "sefa_00" for d in generator_directions(directory, "ada-ref64"))
    assert run(["--dir", str(directory), "list"]) == 0
    out = capsys.readouterr().out
    assert "named FFHQ edits: none: they need 18 W+ slots" in out and "has 10 slots" in out


def test_refused_for_an_ffhq_shaped_generator_with_another_mean_w(tmp_path):
    generator = _ffhq_shaped(seed=5)  # right shape, random mapping: not NVIDIA's network
    install_generator_directions(generator, "other", tmp_path)
    status = named_status(tmp_path, "other")
    assert status["installed"] is False and "mean W" in status["reason"]
    assert status["mean_w_distance"] > 5 * ffhq.MEAN_W_TOLERANCE
    data = json.loads((tmp_path / "directions_other.json").read_text())
    assert all(d["method"] in ("sefa", "pca") for d in data["directions"])


def _edited(loaded, key: str, value: float) -> tuple[torch.Tensor, torch.Tensor]:
    vec, slots, gain = loaded[key]
    directions = Directions({}, {k: Direction.make(v, s, g) for k, (v, s, g) in loaded.items()})
    w = torch.randn(2, 18, 512, generator=torch.Generator().manual_seed(11))
    return w, directions.edit(w, {key: value})


@pytest.mark.parametrize("name", INTERFACEGAN)
@pytest.mark.parametrize("value", [1.0, -0.5])
def test_interfacegan_edit_moves_every_slot_by_factor_three(fitting, name, value):
    _, loaded = fitting
    raw = torch.load(ffhq.DATA_DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    unit = raw.reshape(-1, 512)[0]
    w, out = _edited(loaded, f"interfacegan_{name}", value)
    # documented: w + factor * boundary in every W+ slot, factor = 3 * value
    expected = w + 3.0 * value * unit / unit.norm()
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("name", list(ffhq.GANSPACE_EDITS))
def test_ganspace_edit_moves_its_slots_by_its_strength(fitting, name):
    _, loaded = fitting
    component, first, end, strength = ffhq.GANSPACE_EDITS[name]
    pca = ffhq.load_pca()
    value = 0.75
    w, out = _edited(loaded, f"ganspace_{name}", value)
    moved = (out - w).abs().amax(dim=(0, 2)) > 0
    assert moved.nonzero().flatten().tolist() == list(range(first, end))
    delta = out[:, first:end] - w[:, first:end]
    # the coordinate along comp[c], in units of std[c], moves by value * strength ...
    coordinate = (delta @ pca["comp"][component]) / pca["std"][component]
    assert torch.allclose(coordinate, torch.full_like(coordinate, value * strength), atol=1e-3)
    # ... and nothing else moves
    rest = delta - (delta @ pca["comp"][component])[..., None] * pca["comp"][component]
    assert rest.abs().max() < 1e-4


def test_named_edits_are_recipe_names_and_not_user_names(fitting):
    directory, _ = fitting
    names = edit_names([d["key"] for d in generator_directions(directory, "ffhq-like")], [])
    recipe = parse_recipe({"edits": {"ganspace_smile": 0.5, "interfacegan_age": -1,
                                     "sefa_01": 0.2}}, 1024, names)
    assert recipe.edits == {"ganspace_smile": 0.5, "interfacegan_age": -1.0, "sefa_01": 0.2}
    for taken in ("ganspace_smile", "interfacegan_mine"):
        with pytest.raises(DirectionNameError):
            check_direction_name(taken)


def test_named_edits_combine_with_generator_and_user_directions(fitting):
    _, loaded = fitting
    own = {k: Direction.make(v, s, g) for k, (v, s, g) in loaded.items()}
    mine = {"user:mine": Direction.make(torch.ones(512), [0, 1], 0.5)}
    directions = Directions({}, own)
    w = torch.zeros(1, 18, 512)
    both = directions.edit(w, {"ganspace_yaw": 1.0, "sefa_00": 1.0, "user:mine": 1.0}, mine)
    parts = sum(directions.edit(w, {k: 1.0}, mine) for k in ("ganspace_yaw", "sefa_00", "user:mine"))
    assert torch.allclose(both, parts, atol=1e-5)  # additive, as every edit is
