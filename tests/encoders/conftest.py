"""Fixtures of the encoder tests: the reference e4e / pSp checkpoints rebuilt in the released
layout, and each imported once into its own weights directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.encoders import reference


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """``released(method)`` -> path of the rebuilt checkpoint (written once per session)."""
    if not reference.REFERENCE.is_dir():
        pytest.fail(f"reference data missing: {reference.REFERENCE}")
    folder = tmp_path_factory.mktemp("e4e-released")
    made: dict[str, Path] = {}

    def get(method: str) -> Path:
        if method not in made:
            path = folder / f"{method}_ref_encode.pt"
            torch.save(reference.rebuild(method), path)
            made[method] = path
        return made[method]

    return get


@pytest.fixture(scope="session")
def imported(released, tmp_path_factory):
    """``imported(method)`` -> (weights dir, E4eImport) of the checkpoint as config ref-<method>."""
    from worker.anycost.e4e_import import import_e4e

    done: dict[str, tuple] = {}

    def get(method: str):
        if method not in done:
            directory = tmp_path_factory.mktemp(f"weights-{method}")
            done[method] = directory, import_e4e(released(method), f"ref-{method}", directory)
        return done[method]

    return get
