"""The cost model reproduces the published MAC counts and channel semantics."""

from __future__ import annotations

import json
import re

import pytest

from shared.catalog import costs as costmodel
from shared.catalog.costs import channel_counts, generator_macs


def test_uniform_macs_table(find_data):
    text = find_data("macs_res1024.txt").read_text()
    rows = re.findall(r"^ratio ([\d.]+)\s+(.*)$", text, flags=re.M)
    assert len(rows) == 4
    for ratio, rest in rows:
        for res, gmacs in re.findall(r"(\d+):\s+([\d.]+)G", rest):
            ours = generator_macs(1024, float(ratio), int(res)) / 1e9
            assert round(ours, 2) == float(gmacs), (ratio, res)


def test_flexible_configs_exact(find_data):
    configs = json.loads(find_data("flexible_configs_anycost-ffhq-config-f.json").read_text())
    assert len(configs) == 11
    for name, cfg in configs.items():
        assert generator_macs(1024, cfg["channels"], cfg["res"]) == cfg["macs"], name


def test_design_numbers():
    assert round(generator_macs(1024) / 1e9, 2) == 144.37
    assert round(generator_macs(1024, 0.5, 256) / 1e9, 1) == 28.9
    assert round(generator_macs(1024, 0.25, 128) / 1e9, 2) == 7.33
    # Cheaper sub-networks really are cheaper, monotonically.
    costs = [generator_macs(1024, r, s) for r in (0.25, 0.5, 0.75, 1.0) for s in (128, 256, 512, 1024)]
    assert costs[0] == min(costs) and costs[-1] == max(costs)


def test_channel_counts():
    assert channel_counts(1024, 1.0) == [512] * 10 + [256, 256, 128, 128, 64, 64, 32, 32]
    assert channel_counts(1024, 0.5) == [512] * 8 + [256, 256, 128, 128, 64, 64, 32, 32, 16, 16]
    assert channel_counts(1024, 0.25)[-2:] == [8, 8]
    assert channel_counts(1024, None) == channel_counts(1024, 1.0)
    # The res-64 reference model (channel_max=64): the multiplier comes from the last level.
    assert channel_counts(64, 0.25, 2, 64) == [64, 64, 64, 64, 64, 64, 32, 32, 16, 16]
    flex = [512] * 10 + [256, 128, 64, 64, 32, 16, 8, 8]
    assert channel_counts(1024, flex) == flex


@pytest.mark.parametrize(
    "bad", [0.0, 1.5, -0.5, [512] * 17, [512] * 10 + [512, 256, 128, 128, 64, 64, 32, 32], [0] * 18]
)
def test_channel_counts_rejects(bad):
    with pytest.raises(ValueError):
        channel_counts(1024, bad)


def test_bad_resolutions():
    with pytest.raises(ValueError):
        generator_macs(1024, 1.0, 2048)
    with pytest.raises(ValueError):
        generator_macs(1000)
    assert costmodel.n_channel_layers(1024) == 18
    assert costmodel.levels(32) == [4, 8, 16, 32]


def test_costmodel_is_pure_python():
    import subprocess
    import sys

    code = "import sys, shared.catalog.costs, shared.codes.attributes; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
