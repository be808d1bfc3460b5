"""A run killed (SIGKILL, whole torchrun process group) after a checkpoint and resumed with
``--resume`` ends with exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import torch

from tests.train.conftest import REPO, load_state, torchrun, torchrun_command, train_env

STEPS = 12

pytestmark = pytest.mark.slow  # torchrun runs, one killed and resumed (make test-fast leaves it out)


def _args(teacher_file, data_dir, out):
    return ["multires", "--teacher", str(teacher_file), "--data", str(data_dir), "--out", str(out),
            "--batch", "4", "--steps", str(STEPS), "--checkpoint-every", "3", "--workers", "0",
            "--ema-kimg", "0.02", "--log-every", "3", "--r1-every", "4"]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _kill_after_first_checkpoint(args: list[str], state) -> int:
    proc = subprocess.Popen(torchrun_command(2, args), cwd=REPO, env=train_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not state.exists():
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.02)
        # torchrun starts its workers in sessions of their own: kill them by pid, then the agent.
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    return proc.returncode


def test_resume_after_kill_matches_uninterrupted_run(teacher_file, data_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    torchrun(2, _args(teacher_file, data_dir, straight))
    rc = _kill_after_first_checkpoint(_args(teacher_file, data_dir, killed),
                                      killed / "train_state.pt")
    assert rc == -signal.SIGKILL
    interrupted_at = load_state(killed)["step"]
    assert 3 <= interrupted_at < STEPS, interrupted_at
    resumed = torchrun(2, [*_args(teacher_file, data_dir, killed), "--resume"])
    assert f"steps {interrupted_at}->{STEPS}" in resumed.stdout
    a, b = load_state(straight), load_state(killed)
    assert a["step"] == b["step"] == STEPS
    for part in ("g", "d", "g_ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs"
    assert a["g_optim"]["state"].keys() == b["g_optim"]["state"].keys()
    assert torch.equal(a["rng"][1]["torch"], b["rng"][1]["torch"])
