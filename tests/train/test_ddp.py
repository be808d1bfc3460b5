"""One data-parallel step on 2 torchrun processes with batch b equals one single-process step
with batch 2b: same parameters of the generator and the discriminator (stage 2, two
resolutions per step, R1 on that step, float64 so that only the arrangement is tested)."""

from __future__ import annotations

import pytest

from tests.train.conftest import load_state, torchrun

pytestmark = pytest.mark.slow  # two torchrun runs (make test-fast leaves it out)


def test_two_processes_batch_b_equal_one_process_batch_2b(teacher_file, data_dir, tmp_path):
    common = ["channels", "--teacher", str(teacher_file), "--data", str(data_dir),
              "--steps", "1", "--workers", "0", "--noise", "const", "--ema-kimg", "0",
              "--res-per-step", "2", "--dtype", "float64", "--log-every", "1"]
    ddp = torchrun(2, [*common, "--batch", "4", "--out", str(tmp_path / "ddp")])
    single = torchrun(1, [*common, "--batch", "8", "--out", str(tmp_path / "single")])
    assert "2 process(es) x batch 4" in ddp.stdout and "1 process(es) x batch 8" in single.stdout
    a, b = load_state(tmp_path / "ddp"), load_state(tmp_path / "single")
    assert a["world_size"] == 2 and b["world_size"] == 1 and a["step"] == b["step"] == 1
    assert "r1" in ddp.stdout  # step 0 is an R1 step: the penalty is part of the comparison
    for part in ("g", "d"):
        assert a[part].keys() == b[part].keys()
        worst = max(float((a[part][k] - b[part][k]).abs().max()) for k in a[part])
        assert worst < 1e-6, f"{part}: max parameter difference {worst}"
    # ...and the step did change them (a comparison of two untouched models proves nothing)
    teacher = __import__("torch").load(teacher_file, weights_only=True)["g_ema"]
    moved = max(float((a["g"][k].float() - teacher[k]).abs().max()) for k in ("to_rgbs.2.bias",))
    assert moved > 1e-4
