"""The route to real faces that works today (the released Anycost files are gone), as ``weights
list``, ``fetch``'s error, a worker that cannot load its model and ``make run`` say it, and the
model ``make run`` serves (``worker.anycost.weights.stack.pick_model``)."""

from __future__ import annotations

import pytest

from shared.platform.settings import Settings
from worker.anycost.bundle import WeightsNotInstalledError, load_bundle
from worker.anycost.weights import cli
from worker.anycost.weights.routes import NVIDIA_FFHQ_URL, fix_for, route_lines
from worker.anycost.weights.stack import main as stack_main
from worker.anycost.weights.stack import pick_model
from worker.process.load_failure import describe

ANYCOST = "anycost-ffhq-config-f"
NVIDIA = "stylegan2-ffhq-config-f"


def _touch(directory, *names):
    for name in names:
        (directory / name).write_bytes(b"")  # a file under its released name counts as installed


def test_make_run_serves_anycost_then_an_imported_model_then_tiny_random(tmp_path):
    assert pick_model(tmp_path) == "tiny-random"
    _touch(tmp_path, f"generator_{NVIDIA}.pt")  # what import-nvidia installs
    assert pick_model(tmp_path) == NVIDIA
    _touch(tmp_path, f"generator_{ANYCOST}.pt", f"encoder_{ANYCOST}.pt")
    assert pick_model(tmp_path) == NVIDIA, "an Anycost config needs all of its files"
    _touch(tmp_path, f"boundary_{ANYCOST}.pt")
    assert pick_model(tmp_path) == ANYCOST


def test_the_banner_names_where_nvidia_and_e4e_publish_and_both_import_commands(capsys):
    assert stack_main(["banner"]) == 0
    banner = capsys.readouterr().out
    assert banner.splitlines() == route_lines()
    assert NVIDIA_FFHQ_URL in banner and "import-nvidia stylegan2-ffhq-1024x1024.pkl" in banner
    assert "github.com/omertov/encoder4editing" in banner and "e4e_ffhq_encode.pt" in banner
    assert f"import-e4e e4e_ffhq_encode.pt --config {NVIDIA}" in banner


def test_weights_list_gives_the_route_for_configs_whose_files_are_gone(tmp_path, capsys):
    assert cli.run(["--dir", str(tmp_path), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    after = {lines[i].split()[0]: lines[i + 1] for i in range(1, len(lines) - 1)
             if lines[i] and not lines[i].startswith(" ")}
    assert "no longer served" in after[ANYCOST] and "import-nvidia" in after[ANYCOST]
    assert NVIDIA_FFHQ_URL in after[NVIDIA] and "import-e4e" in after[NVIDIA]
    _touch(tmp_path, f"generator_{NVIDIA}.pt")
    assert cli.run(["--dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert NVIDIA_FFHQ_URL in out  # still said for the Anycost configs
    row = next(i for i, line in enumerate(out.splitlines()) if line.startswith(NVIDIA))
    under = out.splitlines()[row + 1]  # the derived files' lines may follow, never a route
    assert NVIDIA_FFHQ_URL not in under and "import-nvidia" not in under, "installed: no route"


def test_fetch_fails_with_the_route_that_works_today(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANYCOST_WEIGHTS_OFFICIAL", "0")  # no network here; the hosts are gone
    monkeypatch.delenv("ANYCOST_WEIGHTS_MIRRORS", raising=False)
    assert cli.run(["--dir", str(tmp_path), "fetch", ANYCOST, "--quiet"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: could not fetch generator_anycost-ffhq-config-f.pt")
    assert "What works today:" in err and NVIDIA_FFHQ_URL in err and "import-nvidia" in err
    assert "Traceback" not in err


def test_a_worker_missing_its_files_says_what_is_missing_and_what_to_run(tmp_path):
    with pytest.raises(WeightsNotInstalledError) as missing:
        load_bundle(NVIDIA, tmp_path)
    exc = missing.value
    assert exc.reason == f"model {NVIDIA}: generator not installed in {tmp_path}"
    assert exc.fix == fix_for(NVIDIA, tmp_path) and "fetch" not in exc.fix
    settings = Settings(model=NVIDIA, weights_dir=str(tmp_path))
    assert describe(exc, settings) == (exc.reason, exc.fix)
    reason, fix = describe(RuntimeError("CUDA out of memory\nmore"), settings)
    assert reason == "RuntimeError: CUDA out of memory more" and "worker's log" in fix


def test_an_unknown_model_gets_a_fix_too():
    assert "not in the catalogue" in fix_for("no-such-model")
