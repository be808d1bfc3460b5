"""``python -m worker.anycost.weights``: list, fetch, import and verify checkpoint files (also
NVIDIA's pickles, ``import-nvidia``, and e4e / pSp checkpoints, ``import-e4e``); compute the
generator's own edit directions (``directions CONFIG``); measure its preview costs
(``consistency CONFIG``).

Exit codes: 0 success; 1 the operation ran but failed (no source delivered a file, ``verify``
found a changed or missing file, ``installed`` found a file missing); 2 bad input (unknown config or kind, a file that is not a
usable checkpoint). Errors are one line on stderr (a fetch failure lists each source tried),
never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from shared.catalog.configs import CONFIGS, UnknownConfigError
from worker.anycost import weights
from worker.anycost.checkpoints import CheckpointError
from worker.anycost.download import stderr_progress
from worker.anycost.weights import routes

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m worker.anycost.weights",
                     description="List, fetch, import and verify Anycost checkpoint files.")
    parser.add_argument("--dir", help="weights directory (default: $ANYCOST_WEIGHTS_DIR or var/weights)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="known configs and which of their files are installed")
    fetch = sub.add_parser("fetch", help="download a config's files (mirrors, then official hosts)")
    fetch.add_argument("config", help=f"one of: {', '.join(CONFIGS)}")
    fetch.add_argument("--kind", action="append", choices=["generator", "encoder", "boundary"],
                       help="only this kind (repeatable; default: all the config has)")
    fetch.add_argument("--force", action="store_true", help="download even if installed")
    fetch.add_argument("--quiet", action="store_true", help="no progress output")
    imp = sub.add_parser("import", help="install local files (kind detected from content)")
    imp.add_argument("config")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    nv = sub.add_parser("import-nvidia", help="convert and install NVIDIA's StyleGAN2 pickle "
                        "(ADA-pytorch, StyleGAN3 repo or TensorFlow); nothing in it is executed")
    nv.add_argument("path", metavar="FILE.pkl")
    nv.add_argument("--config", help="config name (default: stylegan2-ffhq-config-f for a 1024 px "
                                     "config-f network; required otherwise)")
    e4e = sub.add_parser("import-e4e", help="install an e4e or pSp checkpoint's encoder (and its "
                         "decoder when the config has no generator); read with weights_only")
    e4e.add_argument("path", metavar="FILE.pt")
    e4e.add_argument("--config", help="config name (default: stylegan2-ffhq-config-f for a 1024 px "
                                      "config-f decoder; required otherwise)")
    sub.add_parser("verify", help="re-hash installed files and compare with the manifest")
    inst = sub.add_parser("installed", help="exit 0 if every file of CONFIG is installed, else 1")
    inst.add_argument("config")
    dirs = sub.add_parser("directions", help="(re)compute the generator's own edit directions")
    dirs.add_argument("config")
    cons = sub.add_parser("consistency", help="(re)measure every preview cost against the full "
                          "render; prints the table and the default preview")
    cons.add_argument("config")
    return parser


def _bar() -> float:
    """``ANYCOST_PREVIEW_MIN_PSNR`` (its default when unset or unreadable)."""
    from shared.platform.settings import Settings, SettingsError

    try:
        return Settings.from_env().preview_min_psnr
    except SettingsError:
        return Settings().preview_min_psnr


def _cmd_consistency(args: argparse.Namespace) -> int:
    from shared.catalog.preview_costs import default_preview, read_consistency

    path = weights.measure_consistency(args.config, args.dir)
    directory = weights.weights_dir(args.dir)
    cfg = weights.get_model_config(args.config, directory)
    bar = _bar()
    table = read_consistency(directory, cfg.name) or {"by_cost": {}}
    print(f"wrote {path}  (PSNR against the full render; bar {bar:g} dB)")
    for (channels, resolution), fig in sorted(table["by_cost"].items()):
        lpips = "" if fig["lpips"] is None else f"  LPIPS {fig['lpips']:.4f}"
        mark = "" if fig["psnr"] >= bar else "  untrained"
        print(f"  {channels:g}@{resolution:<5} PSNR {fig['psnr']:7.2f} dB{lpips}{mark}")
    channels, resolution = default_preview(cfg, directory, bar)
    print(f"default preview: {channels:g}@{resolution}")
    return EXIT_OK


def _cmd_directions(args: argparse.Namespace) -> int:
    print(f"wrote {weights.install_directions(args.config, args.dir)}")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    print(f"weights directory: {weights.weights_dir(args.dir)}")
    for cfg in weights.list_configs(args.dir):
        have = set(cfg["installed"])
        kinds = " ".join(k if k in have else f"({k} missing)" for k in cfg["kinds"])
        tag = "" if cfg["pretrained"] else "  [random weights]"
        if cfg["encoder_method"] in ("e4e", "psp"):
            tag += f"  [encoder: {cfg['encoder_method']}]"
        print(f"{cfg['name']:32} {cfg['resolution']:>5}px  {kinds}{tag}")
        if "generator" in have:
            _print_derived(weights.weights_dir(args.dir), cfg["name"])
        config = CONFIGS.get(cfg["name"])
        if config is not None and routes.files_gone(config) and not have >= set(config.required):
            # The released files' hosts are gone: say what works instead of `fetch`.
            print(f"{'':32} {routes.fix_for(config.name, args.dir)}")
    return EXIT_OK


def _print_derived(directory, config: str) -> None:
    """The files derived from an installed generator: named FFHQ edits (or why not) and the
    measured default preview."""
    from shared.catalog.configs import get_model_config
    from shared.catalog.directions import named_status
    from shared.catalog.preview_costs import default_preview, read_consistency

    bar = _bar()
    named = named_status(directory, config)
    if named is None:
        print(f"{'':34}named FFHQ edits: not computed (run `directions {config}`)")
    elif named.get("installed"):
        print(f"{'':34}named FFHQ edits: {named.get('count', 0)} installed ({named['reason']})")
    else:
        print(f"{'':34}named FFHQ edits: none: {named.get('reason', '?')}")
    cfg = get_model_config(config, directory)
    if read_consistency(directory, config) is None:
        print(f"{'':34}preview costs: not measured (run `consistency {config}`)")
    else:
        channels, resolution = default_preview(cfg, directory, bar)
        print(f"{'':34}default preview: {channels:g}@{resolution} (measured, "
              f"{bar:g} dB bar; `consistency {config}` shows every cost)")


def _cmd_fetch(args: argparse.Namespace) -> int:
    progress = None if args.quiet else stderr_progress
    for entry in weights.fetch(args.config, args.kind, progress, args.dir, force=args.force):
        print(f"{entry.path}  sha256={entry.sha256}  source={entry.source}")
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    for entry in weights.import_files(args.config, args.paths, args.dir):
        print(f"imported {entry.kind}: {entry.path}  sha256={entry.sha256}")
    return EXIT_OK


def _cmd_import_nvidia(args: argparse.Namespace) -> int:
    from worker.anycost.nvidia.importer import LICENCE, import_nvidia

    entries = import_nvidia(args.path, args.config, args.dir)
    for entry in entries:
        print(f"imported {entry.kind}: {entry.path}  sha256={entry.sha256}")
    print(f"config {entries[0].config}: serve it with ANYCOST_MODEL={entries[0].config}")
    print(f"licence: {LICENCE}")
    return EXIT_OK


def _cmd_import_e4e(args: argparse.Namespace) -> int:
    from worker.anycost.e4e_import import LICENCE, import_e4e

    done = import_e4e(args.path, args.config, args.dir)
    for entry in done.entries:
        print(f"imported {entry.kind}: {entry.path}  sha256={entry.sha256}")
    lay = done.layout
    added = "latent_avg added" if lay.start_from_latent_avg else "no latent_avg added"
    print(f"encoder: {done.method} ({lay.encoder_type}), {lay.n_style} styles for a "
          f"{lay.resolution} px decoder, {added}")
    if done.comparison is not None:
        print(f"kept the installed generator of {done.config}; the checkpoint's decoder is "
              f"{done.comparison.describe()}")
        if not done.comparison.same:
            print("warning: the encoder's codes are meant for its own decoder; edits of photos "
                  "may not look like the photos")
    print(f"config {done.config}: photos are encoded by {done.method}; serve it with "
          f"ANYCOST_MODEL={done.config}")
    print(f"licence: {LICENCE}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    results = weights.verify(args.dir)
    bad = [r for r in results if r.status not in ("ok", "untracked")]
    for r in results:
        print(f"{r.status:9} {r.filename}  {r.detail}")
    if not results:
        print(f"no weights installed in {weights.weights_dir(args.dir)}")
    print(f"{len(results) - len(bad)} ok or untracked, {len(bad)} problem(s)")
    return EXIT_FAILED if bad else EXIT_OK


def _cmd_installed(args: argparse.Namespace) -> int:
    kinds = weights.get_model_config(args.config, weights.weights_dir(args.dir)).required
    have = weights.installed(args.config, args.dir)
    for kind in kinds:
        print(f"{kind:9} {have[kind].path if kind in have else 'not installed'}")
    return EXIT_OK if all(k in have for k in kinds) else EXIT_FAILED


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the exit code."""
    args = _parser().parse_args(argv)
    command = {"list": _cmd_list, "fetch": _cmd_fetch, "import": _cmd_import,
               "import-nvidia": _cmd_import_nvidia, "import-e4e": _cmd_import_e4e,
               "verify": _cmd_verify, "installed": _cmd_installed,
               "directions": _cmd_directions, "consistency": _cmd_consistency}[args.command]
    try:
        return command(args)
    except (UnknownConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except weights.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except weights.WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied in the weights directory...
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
