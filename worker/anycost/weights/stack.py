"""What ``make run`` (``.ci/run-stack.sh``) asks of the weights directory: which installed model to
serve, and the route to real faces for its banner.

    python -m worker.anycost.weights.stack pick [--dir DIR]   # the model make run serves
    python -m worker.anycost.weights.stack banner             # the route (worker.anycost.weights.routes)
    python -m worker.anycost.weights.stack fix CONFIG         # one line: how to install CONFIG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.catalog.configs import DEFAULT_CONFIG, TINY_CONFIG, ModelConfig, all_configs
from worker.anycost import weights
from worker.anycost.weights.routes import NVIDIA_FFHQ_CONFIG, fix_for, route_lines

#: Catalogue configs served before imported ones, in this order (Anycost first).
PREFERRED = ("anycost-ffhq-config-f", "anycost-ffhq-config-f-flexible", NVIDIA_FFHQ_CONFIG)


def _serves(config: ModelConfig, directory: Path) -> bool:
    return all(kind in weights.installed(config.name, directory) for kind in config.required)


def pick_model(weights_dir: str | Path | None = None) -> str:
    """The model ``make run`` serves: an installed Anycost config, else an imported one (NVIDIA's
    FFHQ network first, then user configs by name), else ``tiny-random``."""
    directory = weights.weights_dir(weights_dir)
    configs = all_configs(directory)
    order = [n for n in PREFERRED if n in configs]
    order += sorted(n for n, c in configs.items() if c.user_defined and n not in order)
    for name in order:
        if _serves(configs[name], directory):
            return name
    return TINY_CONFIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.anycost.weights.stack",
                                     description="What make run serves, and the route to real faces.")
    parser.add_argument("--dir", help="weights directory (default: $ANYCOST_WEIGHTS_DIR or var/weights)")
    parser.add_argument("what", choices=["pick", "banner", "fix"])
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="for fix")
    args = parser.parse_args(argv)
    if args.what == "pick":
        print(pick_model(args.dir))
    elif args.what == "banner":
        print("\n".join(route_lines()))
    else:
        print(fix_for(args.config, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
