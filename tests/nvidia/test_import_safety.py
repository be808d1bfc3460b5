"""Hostile and broken files: refused with one line, nothing in them executed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.weights_cli import Reduce
from worker.anycost.nvidia.importer import NvidiaImportError, import_nvidia
from worker.anycost.nvidia.unpickle import UnsafePickleError, loads_nvidia_pickle

PLACEHOLDER = b"# module source omitted from this reference file\n"






def _hostile(marker: Path) -> dict[str, bytes]:
    """Pickles that would create ``marker`` (or worse) if anything in them ran."""
    cmd = f"touch {marker}"
    return {
        "os.system": pickle.dumps({"G_ema": Reduce(os.system, (cmd,))}),
        "builtins.eval": pickle.dumps(Reduce(eval, (f"open({str(marker)!r}, 'w')",))),
        "builtins.exec": pickle.dumps(Reduce(exec, (f"open({str(marker)!r}, 'w')",))),
        "subprocess.call": pickle.dumps(Reduce(subprocess.call, (["touch", str(marker)],))),
        "builtins.getattr": pickle.dumps(Reduce(getattr, (Reduce(__import__, ("os",)), "system"))),
        "object array": pickle.dumps(np.array([Reduce(os.system, (cmd,))], dtype=object)),
    }


@pytest.mark.parametrize("case", sorted(_hostile(Path("/x"))))
def test_hostile_pickles_are_refused_and_nothing_runs(case, tmp_path):
    marker = tmp_path / "pwned"
    data = _hostile(marker)[case]
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(data)
    with pytest.raises((UnsafePickleError, pickle.UnpicklingError)):
        loads_nvidia_pickle(data)
    with pytest.raises(NvidiaImportError) as info:
        import_nvidia(path, "hostile", tmp_path / "w")
    assert "\n" not in str(info.value)
    assert "unsafe pickle" in str(info.value) or "refusing" in str(info.value)
    assert not marker.exists()
    assert not (tmp_path / "w" / "generator_hostile.pt").exists()


def test_refusal_names_the_global(tmp_path):
    data = pickle.dumps(Reduce(os.system, ("true",)))
    with pytest.raises(UnsafePickleError, match=r"refusing global (posix|os)\.system"):
        loads_nvidia_pickle(data)


@pytest.mark.slow
def test_module_source_in_a_persistent_object_is_never_executed(ada_pickle, tmp_path, monkeypatch):
    """The reference pickle with its placeholder source swapped for code that writes a file
    (same length, so the pickle stays valid): the import succeeds and the file never appears."""
    monkeypatch.chdir(tmp_path)  # the code would write ./ran
    marker = tmp_path / "ran"
    code = b"open('ran','w').write('x')#"
    code = code + b"#" * (len(PLACEHOLDER) - len(code) - 1) + b"\n"
    data = ada_pickle.read_bytes()
    assert data.count(PLACEHOLDER) == 1  # memoised: one string shared by every persistent object
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(data.replace(PLACEHOLDER, code))
    entries = import_nvidia(evil, "evil-src", tmp_path / "w")
    assert [e.kind for e in entries] == ["generator", "discriminator"]
    assert not marker.exists()


def test_a_storage_with_an_unsafe_inner_pickle_is_refused(tmp_path):
    """torch.storage._load_from_bytes gets bytes of a torch file whose pickle runs os.system."""
    marker = tmp_path / "pwned"
    inner = tmp_path / "inner.pt"
    torch.save(Reduce(os.system, (f"touch {marker}",)), inner)

    class _Storage:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (inner.read_bytes(),)

    with pytest.raises(pickle.UnpicklingError):
        loads_nvidia_pickle(pickle.dumps({"G_ema": _Storage()}))
    assert not marker.exists()


BROKEN = {
    "empty": (b"", "empty (0 bytes)"),
    "text": (b"hello, this is not a network\n", "not a pickle"),
    "jpeg": (b"\xff\xd8\xff\xe0" + b"\0" * 64, "not a pickle"),
    "torch zip": (None, "a PyTorch checkpoint (zip)"),
    "wrong content": (pickle.dumps({"weights": [1, 2, 3]}), "not an NVIDIA StyleGAN2 network pickle"),
    "truncated": ("half", "truncated or corrupt pickle"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_get_one_line_errors(case, ada_pickle, tmp_path, cli):
    data, message = BROKEN[case]
    path = tmp_path / "net.pkl"
    if data is None:
        torch.save({"g_ema": {"x": torch.zeros(1)}}, path)
    elif data == "half":
        raw = ada_pickle.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(data)
    result = cli("--dir", str(tmp_path / "w"), "import-nvidia", str(path), "--config", "broken")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "w" / "generator_broken.pt").exists()


@pytest.mark.slow
def test_cli_import_is_idempotent_and_registers_the_config(ada_pickle, tmp_path, cli):
    wdir = tmp_path / "w"
    no_name = cli("--dir", str(wdir), "import-nvidia", str(ada_pickle))
    assert no_name.returncode == 2 and "--config NAME" in no_name.stderr
    bad_name = cli("--dir", str(wdir), "import-nvidia", str(ada_pickle), "--config", "Bad Name/..")
    assert bad_name.returncode == 2 and "config name" in bad_name.stderr
    builtin = cli("--dir", str(wdir), "import-nvidia", str(ada_pickle), "--config", "anycost-ffhq-config-f")
    assert builtin.returncode == 2 and "built-in Anycost config" in builtin.stderr

    first = cli("--dir", str(wdir), "import-nvidia", str(ada_pickle), "--config", "cars-64")
    assert first.returncode == 0, first.stderr
    assert "ANYCOST_MODEL=cars-64" in first.stdout and "Non" in first.stdout.replace("NC", "Non")
    manifest1 = json.loads((wdir / "weights.json").read_text())
    second = cli("--dir", str(wdir), "import-nvidia", str(ada_pickle), "--config", "cars-64")
    assert second.returncode == 0, second.stderr
    manifest2 = json.loads((wdir / "weights.json").read_text())
    assert sorted(manifest2["files"]) == ["discriminator_cars-64.pt", "generator_cars-64.pt"]
    assert {k: v["sha256"] for k, v in manifest1["files"].items()} == \
        {k: v["sha256"] for k, v in manifest2["files"].items()}
    config = manifest2["configs"]["cars-64"]
    assert config["resolution"] == 64 and config["channel_max"] == 64
    assert "NVIDIA Source Code License-NC" in config["licence"]
    assert len(config["sha256"]) == 64 and config["format"] == "stylegan2-ada-pytorch"

    sidecar = json.loads((wdir / "directions_cars-64.json").read_text())  # computed at import
    assert {d["key"] for d in sidecar["directions"]} >= {"sefa_00", "pca_00"}

    listing = cli("--dir", str(wdir), "list")
    assert "cars-64" in listing.stdout and "generator discriminator" in listing.stdout
    assert cli("--dir", str(wdir), "installed", "cars-64").returncode == 0
    verify = cli("--dir", str(wdir), "verify")
    assert verify.returncode == 0 and "0 problem(s)" in verify.stdout


def test_networks_we_cannot_convert_say_why():
    from worker.anycost.nvidia import convert

    with pytest.raises(convert.ConversionError, match="StyleGAN3"):
        convert.generator_state_dict({"synthesis.input.affine.weight": torch.zeros(4, 512)})
    with pytest.raises(convert.ConversionError, match="class-conditional"):
        convert.generator_arch({"c_dim": 10})
    with pytest.raises(convert.ConversionError, match="'resnet'"):
        convert.generator_arch({"synthesis_kwargs": {"architecture": "resnet"}})
    with pytest.raises(convert.ConversionError, match="only 'resnet'"):
        convert.discriminator_arch({"architecture": "skip"})
    with pytest.raises(convert.ConversionError, match="missing parameter mapping.w_avg"):
        convert.generator_state_dict({"mapping.fc0.weight": torch.zeros(2, 2),
                                      "mapping.fc0.bias": torch.zeros(2)})
