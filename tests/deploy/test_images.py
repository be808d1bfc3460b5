"""The Dockerfiles, checked without a Docker engine: the web image installs the `web` extra and
no torch, the worker image gets CUDA torch, every COPY source exists and is not excluded, and the
files the web image copies are enough to run the web app, the migrations and the reaper."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TORCH_PACKAGES = ("torch", "torchvision", "facenet-pytorch")


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for word, args in _instructions(dockerfile):
        if word == "COPY":
            sources += args.split()[:-1]
    return sources


def _requirements(dockerfile: Path, tmp_path: Path) -> list[str]:
    """Run the image's own requirements step (the `python -c` that reads pyproject.toml)."""
    run = next(args for word, args in _instructions(dockerfile)
               if word == "RUN" and "tomllib" in args)
    command = run.split("> /tmp/requirements.txt")[0]
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(["sh", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_web_image_installs_web_extra_without_torch(tmp_path):
    names = {_name(r) for r in _requirements(REPO / "web/Dockerfile", tmp_path)}
    assert {"flask", "gunicorn", "sqlalchemy", "celery", "psycopg", "redis",
            "prometheus-client"} <= names
    assert not names & set(TORCH_PACKAGES), names


def test_worker_image_installs_cuda_torch(tmp_path):
    dockerfile = REPO / "worker/Dockerfile"
    names = {_name(r) for r in _requirements(dockerfile, tmp_path)}
    assert {"torch", "torchvision", "celery"} <= names and "flask" not in names
    text = dockerfile.read_text()
    assert re.search(r"ARG CUDA_IMAGE=(nvidia/cuda|pytorch/pytorch):\S*runtime", text)
    assert "download.pytorch.org/whl/cu" in text


@pytest.mark.parametrize("dockerfile", ["web/Dockerfile", "worker/Dockerfile"])
def test_copy_sources_exist_and_are_not_ignored(dockerfile):
    ignored = [line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith(("#", "!"))]
    for source in _copy_sources(REPO / dockerfile):
        assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such path"
        top = source.split("/")[0]
        assert top not in ignored, f"{dockerfile}: COPY {source} but .dockerignore drops {top}"


@pytest.mark.slow
def test_web_image_files_run_web_migrations_and_reaper_without_torch(tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    for source in _copy_sources(REPO / "web/Dockerfile"):
        src = REPO / source
        dest = app_dir / ("worker/" + src.name if source.startswith("worker/") else source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # the web image has no torch: any import of it fails
        from shared.store.migrate import upgrade, MIGRATIONS_DIR
        url = "sqlite:///{tmp_path / 'db.sqlite'}"
        upgrade(url)
        from web import create_app
        app = create_app({{"database_url": url, "redis_url": "redis://127.0.0.1:6379/15"}})
        assert app.test_client().get("/healthz").status_code == 200
        import worker.process.reaper  # the reaper service runs from this image
        print("ok", MIGRATIONS_DIR)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=app_dir, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(app_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"ok {app_dir / 'migrations'}"
