"""The weights registry and its CLI: import, fetch (file:// and a real local HTTP server),
verify after tampering, tiny-random determinism and load_bundle. All in temp directories."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from shared.catalog.configs import UnknownConfigError, get_model_config
from worker.anycost import weights
from worker.anycost.bundle import WeightsNotInstalledError, load_bundle
from worker.anycost.checkpoints import CheckpointError, load_generator
from worker.anycost.weights.cli import run as cli

REPO = Path(__file__).resolve().parents[2]
FFHQ = "anycost-ffhq-config-f"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def weights_env(tmp_path, monkeypatch) -> Path:
    """A private weights directory; no mirrors and no official hosts unless a test adds them."""
    directory = tmp_path / "weights"
    monkeypatch.setenv("ANYCOST_WEIGHTS_DIR", str(directory))
    monkeypatch.delenv("ANYCOST_WEIGHTS_MIRRORS", raising=False)
    monkeypatch.setenv("ANYCOST_WEIGHTS_OFFICIAL", "0")
    return directory


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """tiny-random built once for the session (read-only for tests: copy before changing)."""
    directory = tmp_path_factory.mktemp("tiny-weights")
    weights.ensure_tiny_random(directory)
    return directory


@pytest.fixture()
def ref_generator(res64_dir) -> Path:
    return res64_dir / "generator.pt"


@pytest.fixture()
def boundary_mirror(tmp_path, tiny_dir) -> Path:
    """A mirror directory holding a valid FFHQ boundary file (the tiny one fits: 40 x [1, 512])."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(tiny_dir / "boundary_tiny-random.pt", mirror / f"boundary_{FFHQ}.pt")
    return mirror


@pytest.fixture()
def http_server(boundary_mirror):
    """python's http.server serving the mirror directory from a thread; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(boundary_mirror))
    handler.log_message = lambda *args: None  # keep test output clean
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def manifest(directory: Path) -> dict:
    return json.loads((directory / "weights.json").read_text())["files"]


# --------------------------------------------------------------------------- catalogue


def test_catalog_knows_released_configs():
    ffhq = get_model_config(FFHQ)
    assert (ffhq.resolution, ffhq.n_style, ffhq.pretrained) == (1024, 18, True)
    assert ffhq.urls("encoder") == [
        "https://hanlab18.mit.edu/projects/anycost-gan/files/encoder_anycost-ffhq-config-f.pt",
        "https://hanlab.mit.edu/projects/anycost-gan/files/encoder_anycost-ffhq-config-f.pt",
    ]
    car = get_model_config("anycost-car-config-f")
    assert (car.resolution, car.kinds) == (512, ("generator",))
    with pytest.raises(ValueError, match="no 'encoder' file"):
        car.urls("encoder")
    tiny = get_model_config("tiny-random")
    assert (tiny.resolution, tiny.n_style, tiny.pretrained, tiny.urls("generator")) == (
        64, 10, False, [])
    with pytest.raises(UnknownConfigError, match="known configs: anycost-ffhq-config-f, "):
        get_model_config("ffhq")


# --------------------------------------------------------------------------- import + CLI


@pytest.mark.slow
def test_cli_imports_reference_generator(weights_env, ref_generator, capsys):
    assert cli(["import", "tiny-random", str(ref_generator)]) == 0
    assert "imported generator" in capsys.readouterr().out
    assert cli(["list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    tiny_line = next(line for line in listing if line.startswith("tiny-random"))
    assert "generator" in tiny_line and "(encoder missing)" in tiny_line
    assert "[random weights]" in tiny_line
    assert cli(["installed", "tiny-random"]) == 1  # encoder and boundary still missing
    assert "encoder   not installed" in capsys.readouterr().out
    installed = weights_env / "generator_tiny-random.pt"
    record = manifest(weights_env)[installed.name]
    assert record["sha256"] == sha256(ref_generator) == sha256(installed)
    assert record["kind"] == "generator" and record["size"] == ref_generator.stat().st_size
    assert record["config"] == "tiny-random" and record["pretrained"] is False
    assert record["source"] == str(ref_generator.resolve())
    g = load_generator(installed)
    assert (g.resolution, g.channel_max, g.n_style) == (64, 64, 10)


@pytest.mark.slow
def test_cli_entry_point_runs_as_module(weights_env, ref_generator):
    env = dict(os.environ, ANYCOST_WEIGHTS_DIR=str(weights_env))
    ok = subprocess.run([sys.executable, "-m", "worker.anycost.weights", "import", "tiny-random",
                         str(ref_generator)], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "imported generator" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "worker.anycost.weights", "import", FFHQ,
                          str(ref_generator)], cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "does not fit config anycost-ffhq-config-f: resolution 64 (config says 1024)" in bad.stderr


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format="JPEG")
    return buf.getvalue()


def _bad_file(kind: str, path: Path, ref: Path) -> Path:
    sd = torch.load(ref, weights_only=True)["g_ema"]
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(ref.read_bytes()[:4096])
    elif kind == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif kind == "html":
        path.write_text("<html><body>Access denied</body></html>")
    elif kind == "jpeg":
        path.write_bytes(_jpeg())
    elif kind == "unsafe":
        torch.save({"g_ema": sd, "opt": argparse.Namespace(a=1)}, path)
    elif kind == "layout":
        torch.save({"model": sd}, path)
    elif kind == "missing":
        torch.save({"g_ema": {k: v for k, v in sd.items() if k != "to_rgb1.bias"}}, path)
    elif kind == "unexpected":
        torch.save({"g_ema": dict(sd, bogus=torch.zeros(1))}, path)
    return path


BAD_FILES = {
    "zero": "empty (0 bytes)",
    "truncated": "truncated or corrupt torch archive",
    "text": "a text file",
    "html": "an HTML page",
    "jpeg": "a JPEG image",
    "unsafe": "unsafe global argparse.Namespace",
    "layout": "not a generator, encoder, boundary or discriminator checkpoint: a dict with keys 'model'",
    "missing": "missing keys (1): to_rgb1.bias",
    "unexpected": "unexpected keys (1): bogus",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_cli_import_rejects_bad_file(kind, tmp_path, weights_env, ref_generator, capsys):
    path = _bad_file(kind, tmp_path / f"{kind}.pt", ref_generator)
    assert cli(["import", "tiny-random", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
    assert BAD_FILES[kind] in err
    assert not (weights_env / "generator_tiny-random.pt").exists()


def test_cli_import_missing_file_and_unknown_config(tmp_path, ref_generator, capsys):
    assert cli(["import", "tiny-random", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt: no such file" in capsys.readouterr().err
    assert cli(["import", "no-such-config", str(ref_generator)]) == 2
    assert "unknown model config 'no-such-config'; known configs:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli(["frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_import_detects_kind_and_rejects_kind_the_config_lacks(tmp_path, tiny_dir, capsys):
    boundary = tiny_dir / "boundary_tiny-random.pt"
    assert cli(["import", "anycost-car-config-f", str(boundary)]) == 2
    assert "config anycost-car-config-f has no boundary file" in capsys.readouterr().err
    entries = weights.import_files(FFHQ, [boundary])
    assert [(e.kind, e.path.name) for e in entries] == [("boundary", f"boundary_{FFHQ}.pt")]
    assert entries[0].pretrained is True  # the catalogue vouches for a released config


@pytest.mark.slow
def test_import_rejects_encoder_of_wrong_n_style(tiny_dir, capsys):
    assert cli(["import", FFHQ, str(tiny_dir / "encoder_tiny-random.pt")]) == 2
    assert "encoder has n_style 10, config anycost-ffhq-config-f needs 18" in capsys.readouterr().err


@pytest.mark.slow
def test_import_registers_a_file_dropped_into_the_weights_dir(weights_env, ref_generator):
    weights_env.mkdir()
    dropped = weights_env / "generator_tiny-random.pt"
    shutil.copy(ref_generator, dropped)
    assert weights.installed("tiny-random")["generator"].sha256 is None  # usable, untracked
    assert [r.status for r in weights.verify()] == ["untracked"]
    [entry] = weights.import_files("tiny-random", [dropped])
    assert entry.sha256 == sha256(ref_generator)
    assert [r.status for r in weights.verify()] == ["ok"]


# --------------------------------------------------------------------------- verify


@pytest.mark.slow
def test_verify_reports_tampering_missing_and_untracked(weights_env, ref_generator, tiny_dir,
                                                        capsys):
    weights.import_files("tiny-random", [ref_generator, tiny_dir / "boundary_tiny-random.pt"])
    assert cli(["verify"]) == 0
    assert "2 ok or untracked, 0 problem(s)" in capsys.readouterr().out

    generator = weights_env / "generator_tiny-random.pt"
    data = bytearray(generator.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    generator.write_bytes(bytes(data))
    (weights_env / "boundary_tiny-random.pt").unlink()
    shutil.copy(ref_generator, weights_env / "generator_stray.pt")

    by_name = {r.filename: r for r in weights.verify()}
    assert by_name["generator_tiny-random.pt"].status == "sha256"
    assert by_name["boundary_tiny-random.pt"].status == "missing"
    assert by_name["generator_stray.pt"].status == "untracked"
    assert cli(["verify"]) == 1
    out = capsys.readouterr().out
    assert "sha256    generator_tiny-random.pt" in out and "2 problem(s)" in out

    generator.write_bytes(bytes(data[:-10]))
    assert {r.filename: r.status for r in weights.verify()}["generator_tiny-random.pt"] == "size"


# --------------------------------------------------------------------------- fetch


def test_fetch_from_file_url_mirror(weights_env, boundary_mirror, monkeypatch):
    monkeypatch.setenv("ANYCOST_WEIGHTS_MIRRORS", boundary_mirror.as_uri())
    [entry] = weights.fetch(FFHQ, ["boundary"], progress=None)
    src = boundary_mirror / f"boundary_{FFHQ}.pt"
    assert entry.sha256 == sha256(src) == sha256(entry.path)
    assert entry.source == f"{boundary_mirror.as_uri()}/boundary_{FFHQ}.pt"
    record = manifest(weights_env)[f"boundary_{FFHQ}.pt"]
    assert (record["sha256"], record["size"], record["pretrained"]) == (entry.sha256,
                                                                        src.stat().st_size, True)
    assert weights.installed(FFHQ)["boundary"].sha256 == entry.sha256


def test_fetch_from_local_http_server_with_progress(weights_env, http_server, boundary_mirror,
                                                    monkeypatch, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    # A directory without the file comes first: fetch must fall through to the HTTP mirror.
    monkeypatch.setenv("ANYCOST_WEIGHTS_MIRRORS", f"{empty}, {http_server}/")
    calls = []
    [entry] = weights.fetch(FFHQ, ["boundary"], progress=lambda *a: calls.append(a))
    size = (boundary_mirror / f"boundary_{FFHQ}.pt").stat().st_size
    assert entry.source == f"{http_server}/boundary_{FFHQ}.pt"
    assert entry.sha256 == sha256(boundary_mirror / f"boundary_{FFHQ}.pt")
    assert calls and calls[-1] == (f"boundary_{FFHQ}.pt", size, size)
    assert manifest(weights_env)[f"boundary_{FFHQ}.pt"]["source"] == entry.source
    assert not list(weights_env.glob(".*.part"))


def test_fetch_failure_lists_every_source(weights_env, http_server, boundary_mirror, monkeypatch,
                                          capsys):
    # HTTP mirror serves an HTML page under the file name; the second mirror has no file at all.
    (boundary_mirror / f"generator_{FFHQ}.pt").write_text("<!doctype html><p>moved</p>")
    monkeypatch.setenv("ANYCOST_WEIGHTS_MIRRORS", f"{http_server},{http_server}/missing")
    assert cli(["fetch", FFHQ, "--kind", "generator", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"could not fetch generator_{FFHQ}.pt" in err
    assert "an HTML page" in err and "HTTP 404" in err
    assert f"python -m worker.anycost.weights import {FFHQ} PATH" in err
    assert "Traceback" not in err
    assert not (weights_env / f"generator_{FFHQ}.pt").exists()
    assert not list(weights_env.glob(".*.part"))


def test_fetch_rejects_file_of_wrong_architecture(weights_env, tmp_path, ref_generator,
                                                  monkeypatch):
    mirror = tmp_path / "m"
    mirror.mkdir()
    shutil.copy(ref_generator, mirror / "generator_anycost-car-config-f.pt")
    monkeypatch.setenv("ANYCOST_WEIGHTS_MIRRORS", str(mirror))
    with pytest.raises(weights.FetchError, match="resolution 64 \\(config says 512\\)"):
        weights.fetch("anycost-car-config-f", progress=None)


# --------------------------------------------------------------------------- tiny-random + bundle


@pytest.mark.slow
def test_tiny_random_is_deterministic(tiny_dir, tmp_path):
    from worker.anycost.tiny import build_tiny_random

    rebuilt = build_tiny_random(tmp_path / "again")
    recorded = manifest(tiny_dir)
    assert set(rebuilt) == {"generator", "encoder", "boundary"}
    for kind, path in rebuilt.items():
        record = recorded[path.name]
        assert record["sha256"] == sha256(path), kind
        assert record["pretrained"] is False and record["config"] == "tiny-random"


@pytest.mark.slow
def test_tiny_random_bundle_renders_visible_images(tiny_dir):
    bundle = load_bundle("tiny-random", tiny_dir)
    assert (bundle.config, bundle.pretrained, bundle.resolution, bundle.n_style) == (
        "tiny-random", False, 64, 10)
    assert bundle.can_edit and bundle.encoder.n_style == bundle.n_style
    g = bundle.generator
    with torch.no_grad():
        z = torch.randn(2, 512, generator=torch.Generator().manual_seed(0))
        images = g.synthesis(g.broadcast(g.mapping(z)))
        assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()
        assert images[0].std() > 0.2 and images[1].std() > 0.2  # not flat
        assert (images[0] - images[1]).abs().mean() > 0.1  # varies with z
        assert images.abs().mean() < 1.5  # in the usual ~[-1, 1] range, not blown out
        wplus = bundle.encoder(images[:1].clamp(-1, 1))
        assert wplus.shape == (1, 10, 512) and torch.isfinite(wplus).all()
        edited = bundle.directions.edit(wplus, {"smiling": 1.0})
        assert not torch.equal(edited, wplus)
        assert torch.isfinite(g.synthesis(edited)).all()


@pytest.mark.slow
def test_ensure_tiny_random_from_two_threads(weights_env):
    results = []
    threads = [threading.Thread(target=lambda: results.append(weights.ensure_tiny_random()))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert {k: v.sha256 for k, v in results[0].items()} == {k: v.sha256 for k, v in results[1].items()}
    assert sorted(manifest(weights_env)) == sorted(
        f"{k}_tiny-random.pt" for k in ("generator", "encoder", "boundary"))
    assert not list(weights_env.glob(".*.part"))
    assert weights.verify() and all(r.status == "ok" for r in weights.verify())
    assert cli(["installed", "tiny-random"]) == 0


def test_load_bundle_missing_pretrained_config_says_how_to_install(weights_env, tiny_dir):
    with pytest.raises(WeightsNotInstalledError) as info:
        load_bundle(FFHQ)
    message = str(info.value)
    # The released files' hosts are gone: the message gives the route that works today.
    assert "import-nvidia" in message and "fetch" not in message.split("not installed")[0]
    assert str(weights_env) in message and "generator, encoder, boundary" in message

    weights.import_files(FFHQ, [tiny_dir / "boundary_tiny-random.pt"])
    with pytest.raises(WeightsNotInstalledError, match="generator, encoder not installed"):
        load_bundle(FFHQ)
    with pytest.raises(UnknownConfigError, match="known configs"):
        load_bundle("nonsense")


def test_load_bundle_reports_a_corrupted_installed_file(weights_env, tiny_dir):
    shutil.copytree(tiny_dir, weights_env)
    (weights_env / "generator_tiny-random.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_bundle("tiny-random")


@pytest.mark.gpu
def test_tiny_random_bundle_on_cuda_matches_cpu(tiny_dir):
    cpu = load_bundle("tiny-random", tiny_dir, device="cpu")
    gpu = load_bundle("tiny-random", tiny_dir, device="cuda")
    assert gpu.device.type == "cuda"
    assert next(gpu.generator.parameters()).device.type == "cuda"
    assert gpu.encoder.mean_latent.device.type == "cuda"
    wplus = cpu.generator.broadcast(cpu.generator.mapping(torch.randn(1, 512)))
    with torch.no_grad():
        on_cpu = cpu.generator.synthesis(wplus)
        on_gpu = gpu.generator.synthesis(wplus.cuda()).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-2)  # TF32 convolutions on Ampere+
