"""Fixtures for the NVIDIA import tests: the reference pickle made by NVIDIA's own code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nvidia-ada-res64"


@pytest.fixture(scope="session")
def ada_pickle() -> Path:
    path = REFERENCE / "network.pkl"
    if not path.exists():
        pytest.fail(f"reference pickle missing: {path} (the team folder ../shared is needed)")
    return path


@pytest.fixture(scope="session")
def expected(ada_pickle) -> dict:
    return torch.load(ada_pickle.parent / "expected.pt", weights_only=True)


@pytest.fixture(scope="session")
def imported(ada_pickle, tmp_path_factory):
    """The reference pickle imported once as user config ``ada-ref64``: (weights dir, entries)."""
    from worker.anycost.nvidia.importer import import_nvidia

    directory = tmp_path_factory.mktemp("weights-nvidia")
    return directory, import_nvidia(ada_pickle, "ada-ref64", directory)
