"""The weights registry: which checkpoint files are installed, where they came from, their hashes.

Files live in one directory (``ANYCOST_WEIGHTS_DIR``, default ``<repo>/var/weights``) under their
released names (``{kind}_{config}.pt``), next to a manifest ``weights.json`` that records, per
file: config, kind, sha256, size, source and whether the weights are pretrained (read and
written by ``manifest.py``; this package re-exports its names).

Files get there by ``fetch`` (mirrors from ``ANYCOST_WEIGHTS_MIRRORS``, comma-separated base URLs
or directories, tried before the official hosts; ``ANYCOST_WEIGHTS_OFFICIAL=0`` skips those),
``import_files`` (local files, kind detected from content) or ``ensure_tiny_random`` (the
development config, built locally). Every file is loaded and checked against its config before
it is installed. Nothing here runs at request time: the worker only reads installed files
(``worker.anycost.bundle.load_bundle``). Installing a generator also computes its own edit
directions (``directions_<config>.pt`` and ``.json``, see ``worker.anycost.factorize``): files
derived from the generator, rebuilt with it, so they are not manifest entries.

Command line: ``python -m worker.anycost.weights list | fetch CONFIG | import CONFIG PATH... |
import-nvidia FILE.pkl | import-e4e FILE.pt | verify | installed CONFIG | directions CONFIG |
consistency CONFIG`` (``__main__.py``, ``cli.py``; the two converting imports live in
``worker.anycost.nvidia`` and ``worker.anycost.e4e_import``). Installing a generator also measures
each preview cost against the full render (``consistency_<config>.json``, see
``worker.anycost.preview_consistency``), likewise derived.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from shared.catalog.configs import (
    KINDS,
    ModelConfig,
    UnknownConfigError,
    all_configs,
    get_model_config,
)
from shared.catalog.directions import pt_path
from shared.catalog.preview_costs import sidecar_path as consistency_path
from shared.codes.attributes import ATTRIBUTES
from worker.anycost import checkpoints as ckpt
from worker.anycost.download import (
    DownloadError,
    ProgressFn,
    copy_file,
    download,
    join_source,
    sha256_file,
    stderr_progress,
)
from worker.anycost.weights import routes
from worker.anycost.weights.manifest import (  # noqa: F401 - re-exported: the registry's names
    DEFAULT_WEIGHTS_DIR,
    FetchError,
    InstalledFile,
    VerifyResult,
    WeightsError,
    _locked,
    _read_manifest,
    _read_manifest_data,
    _write_manifest,
    installed,
    record,
    weights_dir,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- sources


def mirrors() -> list[str]:
    """Extra sources from ``$ANYCOST_WEIGHTS_MIRRORS`` (comma-separated URLs or directories)."""
    raw = os.environ.get("ANYCOST_WEIGHTS_MIRRORS", "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def use_official_hosts() -> bool:
    """False when ``$ANYCOST_WEIGHTS_OFFICIAL`` is 0/false/no/off (air-gapped sites, tests)."""
    raw = os.environ.get("ANYCOST_WEIGHTS_OFFICIAL", "1").strip().lower()
    return raw not in ("0", "false", "no", "off")


def sources(config: ModelConfig, kind: str) -> list[str]:
    """Where ``fetch`` looks for one file, in order: mirrors first, then the official hosts."""
    filename = config.filename(kind)
    official = config.urls(kind) if use_official_hosts() else []
    return [join_source(base, filename) for base in mirrors()] + official


def list_configs(weights_dir_: str | Path | None = None) -> list[dict]:
    """Every known config with its installed kinds (for the CLI, the API and the portal)."""
    directory = weights_dir(weights_dir_)
    out = []
    for cfg in all_configs(directory).values():
        entry = cfg.to_dict()
        files = installed(cfg.name, directory)
        entry["installed"] = sorted(files)
        entry["encoder_method"] = _encoder_method(files)
        out.append(entry)
    return out


def encoder_file_method(path: str | Path) -> str:
    """What an encoder file holds, without reading its weights: "e4e" / "psp" (an imported
    e4e or pSp encoder) or "encoder" (Anycost's ResNet-50). Raises CheckpointError."""
    path = Path(path)
    try:  # mmap: only the pickle is read, the ~1 GB of storages stay on disk
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip archive (legacy format) or broken: the careful reader says why
        obj = ckpt.read_checkpoint(path)
    if ckpt.detect_kind(obj) != "encoder":
        raise ckpt.CheckpointError(path, f"not an encoder file: {ckpt.describe_layout(obj)}")
    method = obj.get("encoder_type")
    return method if method in ckpt.STYLE_ENCODERS else "encoder"


def _encoder_method(files: dict[str, InstalledFile]) -> str | None:
    """"e4e" / "psp" / "encoder" (Anycost's) for an installed encoder, None without one."""
    if "encoder" not in files:
        return None
    try:
        return encoder_file_method(files["encoder"].path)
    except ckpt.CheckpointError:
        return None  # unusable: `verify` and the worker's load say why


def encoder_method(config: str, weights_dir_: str | Path | None = None) -> str | None:
    """How photos of ``config`` get their codes: "e4e" / "psp" (an imported e4e or pSp
    encoder), "encoder" (Anycost's ResNet-50), None (no encoder: projection by optimisation)."""
    return _encoder_method(installed(config, weights_dir_))


# --------------------------------------------------------------------------- validation


def validate_file(config: ModelConfig, kind: str, path: Path) -> None:
    """Load ``path`` as ``kind`` and check it fits ``config``; raises CheckpointError."""
    if kind == "generator":
        found = ckpt.infer_generator_config(ckpt.generator_state_dict(path), path)
        want = {
            "resolution": config.resolution,
            "channel_max": config.channel_max,
            "channel_multiplier": config.channel_multiplier,
            "style_dim": config.style_dim,
            "n_mlp": config.n_mlp,
        }
        diff = [f"{k} {found[k]} (config says {v})" for k, v in want.items() if found[k] != v]
        if diff:
            raise ckpt.CheckpointError(
                path, f"this generator does not fit config {config.name}: " + ", ".join(diff)
            )
        ckpt.load_generator(path)
    elif kind == "encoder":
        n_style = ckpt.load_encoder(path).n_style
        if n_style != config.n_style:
            raise ckpt.CheckpointError(
                path, f"encoder has n_style {n_style}, config {config.name} needs {config.n_style}"
            )
    elif kind == "discriminator":
        found = ckpt.infer_discriminator_config(dict(ckpt.read_checkpoint(path)["d"]), path)
        if found["resolution"] != config.resolution:
            raise ckpt.CheckpointError(
                path, f"discriminator is for {found['resolution']} px, config {config.name} is "
                      f"{config.resolution} px")
        ckpt.load_discriminator(path)
    elif kind == "boundary":
        directions = ckpt.load_boundaries(path)
        dims = {v.shape[-1] for v in directions.values()}
        if dims != {config.style_dim}:
            raise ckpt.CheckpointError(path, f"directions have {dims} dims, need {config.style_dim}")
        if not set(directions) & set(ATTRIBUTES):
            raise ckpt.CheckpointError(path, "no CelebA attribute names (e.g. '31_Smiling') in it")
    else:
        raise ValueError(f"unknown kind {kind!r}")


def detect_file_kind(path: str | Path) -> str:
    """generator / encoder / boundary / discriminator, from the file's content."""
    obj = ckpt.read_checkpoint(path)
    kind = ckpt.detect_kind(obj)
    if kind is None:
        raise ckpt.CheckpointError(
            path, "not a generator, encoder, boundary or discriminator checkpoint: "
                  f"{ckpt.describe_layout(obj)}"
        )
    return kind


# --------------------------------------------------------------------------- installing


def _install(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)  # atomic: readers never see a half-written file


def _tmp_for(directory: Path, filename: str) -> Path:
    return directory / f".{filename}.{os.getpid()}.part"


def import_files(
    config: str, paths: Iterable[str | Path], weights_dir_: str | Path | None = None
) -> list[InstalledFile]:
    """Install local files for ``config``; each file's kind is detected from its content."""
    directory = weights_dir(weights_dir_)
    cfg = get_model_config(config, directory)
    by_kind: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        kind = detect_file_kind(path)
        if kind not in cfg.all_kinds:
            raise WeightsError(f"{path}: config {config} has no {kind} file")
        if kind in by_kind:
            raise WeightsError(f"{path}: two {kind} files given ({by_kind[kind]} and {path})")
        validate_file(cfg, kind, path)
        by_kind[kind] = path
    if not by_kind:
        raise WeightsError("no files given")
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for kind, path in by_kind.items():
        final = directory / cfg.filename(kind)
        if final.exists() and final.samefile(path):  # dropped in by hand: just record it
            sha, size = sha256_file(final), final.stat().st_size
        else:
            tmp = _tmp_for(directory, final.name)
            sha, size = copy_file(path, tmp)
            _install(tmp, final)
        entries.append(
            InstalledFile(config, kind, final, sha, size, str(path.resolve()), cfg.pretrained)
        )
    record(directory, entries)
    if "generator" in by_kind:
        compute_directions_after_install(config, directory)
    return entries


def fetch(
    config: str,
    kinds: Iterable[str] | None = None,
    progress: ProgressFn | None = stderr_progress,
    weights_dir_: str | Path | None = None,
    force: bool = False,
) -> list[InstalledFile]:
    """Download the config's files (mirrors first, then official hosts); skip installed ones."""
    cfg = get_model_config(config, weights_dir(weights_dir_))
    wanted = list(kinds) if kinds is not None else list(cfg.kinds)
    for kind in wanted:
        if kind not in cfg.kinds:
            raise WeightsError(f"config {config} has no {kind} file (it has: {', '.join(cfg.kinds)})")
    if not cfg.pretrained:
        built = ensure_tiny_random(weights_dir_)
        return [built[k] for k in wanted]
    directory = weights_dir(weights_dir_)
    directory.mkdir(parents=True, exist_ok=True)
    have = installed(config, directory)
    out = []
    for kind in wanted:
        if kind in have and have[kind].sha256 and not force:
            out.append(have[kind])
            continue
        out.append(_fetch_one(cfg, kind, directory, progress))
    return out


def _fetch_one(cfg: ModelConfig, kind: str, directory: Path, progress: ProgressFn | None) -> InstalledFile:
    final = directory / cfg.filename(kind)
    failures = []
    for source in sources(cfg, kind):
        tmp = _tmp_for(directory, final.name)
        try:
            sha, size = download(source, tmp, progress)
            validate_file(cfg, kind, tmp)
        except DownloadError as exc:
            failures.append(str(exc))
            continue
        except ckpt.CheckpointError as exc:
            tmp.unlink(missing_ok=True)
            failures.append(f"{source}: {exc.problem}")
            continue
        _install(tmp, final)
        entry = InstalledFile(cfg.name, kind, final, sha, size, source, cfg.pretrained)
        record(directory, [entry])
        if kind == "generator":
            compute_directions_after_install(cfg.name, directory)
        return entry
    tried = "\n  ".join(failures) or "no sources"
    raise FetchError(
        f"could not fetch {final.name}; tried:\n  {tried}\n"
        f"With the file at hand: python -m worker.anycost.weights import {cfg.name} PATH\n"
        f"What works today: {routes.fix_for(cfg.name, directory)}"
    )


def ensure_tiny_random(weights_dir_: str | Path | None = None) -> dict[str, InstalledFile]:
    """Build the tiny-random files that are missing (under a lock: concurrent workers are safe)."""
    from worker.anycost import tiny

    cfg = get_model_config(tiny.CONFIG_NAME)
    directory = weights_dir(weights_dir_)
    with _locked(directory, ".tiny-random.lock"):
        have = installed(cfg.name, directory)
        missing = [k for k in cfg.kinds if k not in have]
        if missing:
            built = tiny.build_tiny_random(directory, kinds=missing)
            entries = [
                InstalledFile(cfg.name, kind, path, sha256_file(path), path.stat().st_size,
                              tiny.SOURCE, False)
                for kind, path in built.items()
            ]
            record(directory, entries)
            have = installed(cfg.name, directory)
        if ("generator" in missing or not pt_path(directory, cfg.name).is_file()
                or not consistency_path(directory, cfg.name).is_file()):
            compute_directions_after_install(cfg.name, directory)
    return have


def install_directions(config: str, weights_dir_: str | Path | None = None) -> Path:
    """(Re)compute the installed generator's own directions (SeFa, PCA) beside it; their path."""
    from worker.anycost.factorize import install_generator_directions

    directory = weights_dir(weights_dir_)
    files = installed(config, directory)
    if "generator" not in files:
        raise WeightsError(f"model {config}: no generator installed in {directory}")
    generator = ckpt.load_generator(files["generator"].path)
    return install_generator_directions(generator, config, directory)


def measure_consistency(config: str, weights_dir_: str | Path | None = None) -> Path:
    """(Re)measure every preview cost of the installed generator against its full render
    (``consistency_<config>.json``, see ``worker.anycost.preview_consistency``); its path."""
    from worker.anycost.preview_consistency import write_consistency

    directory = weights_dir(weights_dir_)
    files = installed(config, directory)
    if "generator" not in files:
        raise WeightsError(f"model {config}: no generator installed in {directory}")
    # a GPU when there is one: 8 codes x 16 costs of a 1024 px network take minutes on a CPU
    device = "cuda" if torch_cuda_available() else "cpu"
    generator = ckpt.load_generator(files["generator"].path, device)
    return write_consistency(generator, config, directory)


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def compute_directions_after_install(config: str, directory: Path) -> None:
    """Derive the files that follow a generator: its directions and its preview consistency.
    The weights are installed and usable without them: a failure here is logged, not raised."""
    for what, derive in (("generator directions", install_directions),
                         ("preview consistency", measure_consistency)):
        try:
            derive(config, directory)
        except Exception as exc:
            log.warning("could not compute the %s of %s: %s", what, config, exc)


def verify(weights_dir_: str | Path | None = None) -> list[VerifyResult]:
    """Re-hash every recorded file and compare with the manifest; also list untracked files."""
    directory = weights_dir(weights_dir_)
    files = _read_manifest(directory)
    results = []
    for name, rec in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            results.append(VerifyResult(name, "missing", "recorded in the manifest, not on disk"))
        elif path.stat().st_size != rec["size"]:
            results.append(
                VerifyResult(name, "size", f"{path.stat().st_size} bytes, manifest says {rec['size']}")
            )
        elif (sha := sha256_file(path)) != rec["sha256"]:
            results.append(VerifyResult(name, "sha256", f"sha256 {sha[:12]}..., manifest says "
                                                        f"{rec['sha256'][:12]}..."))
        else:
            results.append(VerifyResult(name, "ok", sha[:12]))
    if directory.is_dir():
        for path in sorted(directory.glob("*.pt")):
            if path.name not in files and not path.name.startswith("directions_"):
                results.append(VerifyResult(path.name, "untracked", "not in the manifest"))
    return results


__all__ = [
    "KINDS", "FetchError", "InstalledFile", "UnknownConfigError", "VerifyResult", "WeightsError",
    "encoder_method", "ensure_tiny_random", "fetch", "import_files", "install_directions",
    "installed", "list_configs", "measure_consistency",
    "verify", "weights_dir",
]
