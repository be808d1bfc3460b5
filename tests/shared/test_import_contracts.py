"""The dependency rules hold: ``lint-imports`` checks the contracts in pyproject.toml (shared below
web and worker, shared without Flask or torch, web without torch, worker.anycost on its own, no
cycles between siblings), and no module imports itself through others."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_are_kept():
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_contract_is_reported(tmp_path):
    # The same tool on a rule the code does not keep (web imports shared): it must say so.
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["shared", "web"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "web without shared"\n'
                      'type = "forbidden"\nsource_modules = ["web"]\n'
                      'forbidden_modules = ["shared"]\n')
    result = _lint("--config", str(config))
    assert result.returncode != 0 and "BROKEN" in result.stdout


def _packages(root: Path) -> set[str]:
    return {f"{root.name}.{p.name}" for p in root.iterdir()
            if not p.name.startswith(("_", ".")) and (p / "__init__.py").exists()}


def test_the_layers_contracts_name_every_package():
    # A new package of shared/ or worker/ must take its place in the layers: none is left out.
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for root in ("shared", "worker"):
        contract = next(c for c in config["contracts"]
                        if c["type"] == "layers" and c["layers"][0].startswith(root + "."))
        named = {m.strip() for layer in contract["layers"] for m in layer.split("|")}
        assert named == _packages(REPO / root)


def test_shared_and_worker_have_no_flat_modules():
    # Every module lives in a package named for its concept.
    for root in ("shared", "worker"):
        assert sorted(p.name for p in (REPO / root).glob("*.py")) == ["__init__.py"]


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("shared", "web", "worker", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []
