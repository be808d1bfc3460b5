"""One PSNR convention for every figure the service reports (shared.catalog.preview_costs)."""

from __future__ import annotations

import math

import pytest

from shared.catalog.preview_costs import IDENTICAL_PSNR, psnr_db


def test_units_cap_and_identical_images():
    assert psnr_db(0.01) == pytest.approx(20.0)  # [0, 1] images
    assert psnr_db(255.0 ** 2 * 0.01, peak=255.0) == pytest.approx(20.0)  # 8-bit, same error
    assert psnr_db(0.0) == IDENTICAL_PSNR and psnr_db(1e-30) == IDENTICAL_PSNR
    assert psnr_db(0.0, cap=None) == math.inf
    assert psnr_db(1e-30, cap=None) == pytest.approx(300.0)
    assert psnr_db(0.04, cap=10.0) == 10.0 and psnr_db(0.2, cap=10.0) < 10.0
