"""Hostile and malformed files given to ``weights import-e4e``: exit 2, one line, no traceback,
nothing executed, nothing installed. Also a tampered installed encoder file."""

from __future__ import annotations

import os
import pickle
import subprocess

import pytest
import torch

from tests.support.weights_cli import Reduce
from worker.anycost.checkpoints import CheckpointError, load_encoder


def _small_checkpoint() -> dict:
    """An e4e-shaped file too small to be a real one (a few encoder and decoder tensors)."""
    sd = {"encoder.input_layer.0.weight": torch.zeros(64, 3, 3, 3),
          "decoder.style.1.weight": torch.zeros(512, 512), "decoder.input.input": torch.zeros(1, 512, 4, 4)}
    return {"state_dict": sd, "opts": {"encoder_type": "Encoder4Editing", "stylegan_size": 1024},
            "latent_avg": torch.zeros(18, 512)}


def _write(case: str, path, marker) -> str:
    """Write the case's file to ``path``; returns the message the error must contain."""
    cmd = f"touch {marker}"
    if case == "torch file whose pickle runs code":
        torch.save({"state_dict": {}, "opts": Reduce(os.system, (cmd,))}, path)
        return "refusing to run it"
    if case == "legacy torch file whose pickle runs code":
        torch.save(Reduce(os.system, (cmd,)), path, _use_new_zipfile_serialization=False)
        return "refusing to run it"
    if case == "plain pickle that runs code":
        path.write_bytes(pickle.dumps(Reduce(eval, (f"open({str(marker)!r}, 'w')",))))
        return "refusing to run it"
    if case == "truncated":
        torch.save(_small_checkpoint(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return "truncated or corrupt"
    if case == "empty":
        path.write_bytes(b"")
        return "empty (0 bytes)"
    if case == "html page":
        path.write_bytes(b"<!DOCTYPE html><html><body>Sign in to Google Drive</body></html>")
        return "an HTML page"
    if case == "wrong layout: a generator file":
        torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, path)
        return "not an e4e/pSp checkpoint"
    if case == "wrong layout: missing layers":
        torch.save(_small_checkpoint(), path)
        return "missing keys (789): encoder.input_layer.1.weight"
    if case == "wrong layout: not a dict":
        torch.save([torch.zeros(3)], path)
        return "not an e4e/pSp checkpoint"
    raise AssertionError(case)


CASES = ["torch file whose pickle runs code", "legacy torch file whose pickle runs code",
         "plain pickle that runs code", "truncated", "empty", "html page",
         "wrong layout: a generator file", "wrong layout: missing layers", "wrong layout: not a dict"]


@pytest.mark.parametrize("case", CASES)
def test_bad_files_get_one_line_and_exit_2(case, tmp_path, cli):
    marker = tmp_path / "pwned"
    path = tmp_path / "e4e_ffhq_encode.pt"
    message = _write(case, path, marker)
    wdir = tmp_path / "w"
    result = cli("--dir", str(wdir), "import-e4e", str(path), "--config", "mine")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {path}: ") and message in result.stderr, result.stderr
    assert not marker.exists()
    assert not any(wdir.glob("*.pt")) if wdir.exists() else True


def test_an_nvidia_pickle_is_refused_with_a_hint(tmp_path, cli):
    from tests.nvidia.conftest import REFERENCE

    result = cli("--dir", str(tmp_path / "w"), "import-e4e", str(REFERENCE / "network.pkl"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "refusing to run it" in result.stderr and "import-nvidia" in result.stderr


def test_missing_file_and_bad_names(tmp_path, cli):
    gone = cli("--dir", str(tmp_path / "w"), "import-e4e", str(tmp_path / "nope.pt"))
    assert gone.returncode == 2 and "no such file" in gone.stderr


@pytest.mark.parametrize("tamper", ["encoder_type", "shape", "extra"])
def test_a_tampered_installed_encoder_file_is_refused(tamper, tmp_path):
    from worker.anycost.style_encoder import StyleEncoder

    with torch.device("meta"):
        keys = StyleEncoder("e4e", 8, 8).state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in keys.items()}
    obj = {"encoder_type": "e4e", "state_dict": sd}
    if tamper == "encoder_type":
        obj["encoder_type"] = "psp2"
        want = "wrong layout"
    elif tamper == "shape":
        sd["latlayer1.weight"] = torch.zeros(8, 256, 3, 3)
        want = r"latlayer1.weight is \[8, 256, 3, 3\]"
    else:
        obj["opts"] = {"x": 1}
        want = "unexpected entries in an e4e/psp encoder file: opts"
    torch.save(obj, tmp_path / "encoder.pt")
    with pytest.raises(CheckpointError, match=want):
        load_encoder(tmp_path / "encoder.pt")


def test_a_real_process_prints_one_line_for_a_pickle_that_runs_code(tmp_path):
    """Through ``python -m`` (no pytest capturing warnings): stderr is exactly the error line."""
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    marker = tmp_path / "pwned"
    path = tmp_path / "psp_ffhq_encode.pt"
    _write("plain pickle that runs code", path, marker)
    result = subprocess.run([sys.executable, "-m", "worker.anycost.weights", "--dir",
                             str(tmp_path / "w"), "import-e4e", str(path)], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refusing to run it" in result.stderr, result.stderr
    assert not marker.exists()
