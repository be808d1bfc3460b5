"""Fixtures for the model tests: the reference data produced by the original implementation.

A copy lives in tests/model/data (so a clone can run the suite); the team folder is a fallback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
TEAM_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"


def data_file(name: str) -> Path:
    for root in (DATA, TEAM_REFERENCE):
        if (root / name).exists():
            return root / name
    pytest.skip(f"reference data {name} not found")


@pytest.fixture(scope="session")
def find_data():
    """``find_data(name)`` -> path of a reference data file (skips the test if absent)."""
    return data_file


@pytest.fixture(scope="session")
def res64_dir() -> Path:
    return data_file("anycost-res64")


@pytest.fixture(scope="session")
def res64_generator(res64_dir):
    from worker.anycost.checkpoints import load_generator

    return load_generator(res64_dir / "generator.pt")


@pytest.fixture(scope="session")
def res64_inputs(res64_dir) -> dict:
    return torch.load(res64_dir / "inputs.pt", weights_only=True)


@pytest.fixture(scope="session")
def res64_outputs(res64_dir) -> dict:
    return torch.load(res64_dir / "outputs.pt", weights_only=True)
