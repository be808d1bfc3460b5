"""The generator's own directions: SeFa against an independent computation, PCA orthonormal,
install writes both files deterministically, and edits along them follow the slider formula."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from shared.catalog.directions import generator_directions, pt_path, sidecar_path
from worker.anycost.directions import (
    Directions,
    install_generator_directions,
    load_generator_directions,
    pca_directions,
    sefa,
)
from worker.anycost.factorize import sample_w, sefa_factorize
from worker.anycost.generator import Generator


@pytest.fixture(scope="module")
def small_generator() -> Generator:
    torch.manual_seed(3)
    g = Generator(32, style_dim=24, n_mlp=2, channel_multiplier=1, channel_max=16).eval()
    with torch.no_grad():  # modulation weights random per layer (their init is randn already)
        for name, p in g.named_parameters():
            if name.endswith("modulation.weight"):
                p.copy_(torch.randn_like(p) * (1 + 0.1 * len(name)))
    return g


def _styled_conv_weights_by_state_dict(g: Generator, slots: set[int]) -> np.ndarray:
    """A independent reading of the stacked modulation weights: from the state dict by key.
    Slot of conv1 is 0; convs.{j} take slot j + 1 (two per level, see the synthesis loop)."""
    sd = g.state_dict()
    rows = []
    for key, value in sd.items():
        m = re.fullmatch(r"(conv1|convs\.(\d+))\.conv\.modulation\.weight", key)
        if not m:
            continue
        slot = 0 if m.group(1) == "conv1" else int(m.group(2)) + 1
        if slot in slots:
            rows.append(value.double().numpy() / np.sqrt(g.style_dim))  # EqualLinear's scale
    return np.concatenate(rows)


@pytest.mark.parametrize("normalize", ["official", "raw"])
@pytest.mark.parametrize("slots", [None, [0, 1], [3, 4, 5]])
def test_sefa_matches_an_svd_of_the_stacked_weights(small_generator, slots, normalize):
    g = small_generator
    chosen = set(range(min(12, g.n_style))) if slots is None else set(slots)
    a = _styled_conv_weights_by_state_dict(g, chosen)
    if normalize == "official":  # the official SeFa: every channel's weight row at unit norm
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
    # right singular vectors of A = eigenvectors of AᵀA, singular values squared = eigenvalues
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    k = 5
    got, eigenvalues = sefa_factorize(g, slots, k, normalize=normalize)
    assert got.shape == (k, g.style_dim)
    assert torch.allclose(got.norm(dim=1), torch.ones(k), atol=1e-5)
    assert np.allclose(eigenvalues.numpy(), s[:k] ** 2, rtol=1e-4)
    assert np.all(np.diff(eigenvalues.numpy()) <= 0)  # descending
    cosines = np.abs(np.sum(got.double().numpy() * vt[:k], axis=1))
    assert np.allclose(cosines, 1.0, atol=1e-4), cosines
    assert torch.equal(sefa(g, slots, k, normalize=normalize), got)


def test_official_sefa_is_the_default_and_differs_from_the_raw_variant(small_generator):
    official, raw = sefa(small_generator, None, 3), sefa(small_generator, None, 3, normalize="raw")
    assert torch.equal(official, sefa(small_generator, None, 3, normalize="official"))
    # the layers' weight scales differ (1 + 0.1 * len(name)): normalising changes the answer
    assert float((official[0] @ raw[0]).abs()) < 0.999
    with pytest.raises(ValueError, match="normalize"):
        sefa(small_generator, None, 3, normalize="l2")


def test_sefa_rejects_bad_arguments(small_generator):
    with pytest.raises(ValueError, match="W\\+ slots"):
        sefa(small_generator, [99], 3)
    with pytest.raises(ValueError, match="k must be"):
        sefa(small_generator, None, 0)


def test_pca_directions_are_orthonormal_and_match_numpy(small_generator):
    w = sample_w(small_generator, n=3000, seed=1)
    vecs, std = pca_directions(w, k=6)
    gram = vecs.double() @ vecs.double().T
    assert torch.allclose(gram, torch.eye(6, dtype=torch.float64), atol=1e-5)
    cov = np.cov(w.numpy(), rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    top = vectors[:, ::-1][:, :6].T
    assert np.allclose(np.abs(np.sum(vecs.double().numpy() * top, axis=1)), 1.0, atol=1e-4)
    assert np.allclose(std.numpy() ** 2, values[::-1][:6], rtol=1e-4)
    assert torch.equal(sample_w(small_generator, 100, 7), sample_w(small_generator, 100, 7))


def test_install_writes_vectors_and_a_sidecar_deterministically(small_generator, tmp_path):
    path = install_generator_directions(small_generator, "tiny-random", tmp_path / "a", k=4)
    again = install_generator_directions(small_generator, "tiny-random", tmp_path / "b", k=4)
    assert path == pt_path(tmp_path / "a", "tiny-random")
    loaded = load_generator_directions(path, small_generator.style_dim)
    assert list(loaded) == [f"sefa_0{i}" for i in range(4)] + [f"pca_0{i}" for i in range(4)]
    other = load_generator_directions(again, small_generator.style_dim)
    for key, (vec, slots, gain) in loaded.items():
        assert torch.equal(vec, other[key][0]) and abs(float(vec.norm()) - 1) < 1e-5
        assert slots == list(range(small_generator.n_style)) and gain > 0  # n_style 8 < 12
    assert torch.allclose(loaded["sefa_00"][0], sefa(small_generator, None, 1)[0])
    sidecar = json.loads(sidecar_path(tmp_path / "a", "tiny-random").read_text())
    assert sidecar["config"] == "tiny-random" and sidecar["n_style"] == small_generator.n_style
    assert sidecar["sefa_normalize"] == "official"
    assert [d["key"] for d in sidecar["directions"]] == list(loaded)
    entries = generator_directions(tmp_path / "a", "tiny-random")
    assert entries[0]["method"] == "sefa" and entries[4]["method"] == "pca"
    assert all(e["gain"] == pytest.approx(loaded[e["key"]][2]) for e in entries)
    assert generator_directions(tmp_path / "missing", "tiny-random") == []


def test_tiny_random_install_has_directions_and_edits_use_them(tiny_bundle, tiny_weights_dir):
    entries = generator_directions(tiny_weights_dir, "tiny-random")
    keys = [e["key"] for e in entries]
    assert keys[:2] == ["sefa_00", "sefa_01"] and "pca_09" in keys and len(keys) == 20
    directions: Directions = tiny_bundle.directions
    assert set(keys) <= set(directions.keys()) and "31_Smiling" in directions.keys()
    wplus = torch.randn(2, 10, 512, generator=torch.Generator().manual_seed(0))
    entry = entries[0]
    out = directions.edit(wplus, {"sefa_00": 0.5, "smiling": -0.25})
    d = directions.direction("sefa_00")
    expected = wplus.clone()
    expected[:, entry["slots"]] += 0.5 * entry["gain"] * d
    expected[:, :10] += -0.25 * 0.6 * directions.direction("smiling")
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.equal(out, wplus)


@pytest.mark.slow
def test_importing_a_generator_computes_its_directions(tiny_bundle, tiny_weights_dir, tmp_path,
                                                       capsys):
    from pathlib import Path

    from worker.anycost import weights
    from worker.anycost.weights.cli import run

    target = tmp_path / "imported"
    weights.import_files("tiny-random", [Path(tiny_weights_dir) / "generator_tiny-random.pt"],
                         target)
    assert pt_path(target, "tiny-random").is_file()
    assert generator_directions(target, "tiny-random") == generator_directions(
        tiny_weights_dir, "tiny-random")  # the same generator: the same directions
    assert [r.status for r in weights.verify(target)] == ["ok"]  # derived files: not in it
    pt_path(target, "tiny-random").unlink()
    assert run(["--dir", str(target), "directions", "tiny-random"]) == 0
    assert "directions_tiny-random.pt" in capsys.readouterr().out
    assert pt_path(target, "tiny-random").is_file()
    assert run(["--dir", str(tmp_path / "empty"), "directions", "tiny-random"]) == 2
