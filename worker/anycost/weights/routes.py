"""Where real weights come from today, in words a newcomer can act on.

The released Anycost files (``{kind}_anycost-ffhq-config-f.pt`` ...) are no longer served by their
hosts (``shared.catalog.configs.OFFICIAL_HOSTS``). What works today: NVIDIA's own StyleGAN2 FFHQ
network, converted by ``weights import-nvidia``, and the e4e / pSp encoders (which bundle the same
FFHQ decoder), installed by ``weights import-e4e``. ``make run``'s banner, ``weights list``,
``fetch``'s error and a worker that cannot load its model all say it with the strings made here.
Pure text over the catalogue (no torch, no files read): ``worker.anycost.weights.stack`` picks
the model ``make run`` serves and prints these lines for it.
"""

from __future__ import annotations

from pathlib import Path

from shared.catalog.configs import (
    CONFIGS,
    TINY_CONFIG,
    ModelConfig,
    UnknownConfigError,
    get_model_config,
)

CMD = "python -m worker.anycost.weights"
#: The catalogue config NVIDIA's FFHQ network fills (``import-nvidia``'s default for config-f).
NVIDIA_FFHQ_CONFIG = "stylegan2-ffhq-config-f"
NVIDIA_FFHQ_FILE = "stylegan2-ffhq-1024x1024.pkl"
#: Where NVIDIA publishes it (the NGC catalogue, as listed by NVlabs/stylegan3's README).
NVIDIA_FFHQ_URL = ("https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/"
                   f"files/{NVIDIA_FFHQ_FILE}")
NVIDIA_LICENCE = "NVIDIA Source Code License-NC: research and evaluation, not commercial use"
#: e4e and pSp link their FFHQ encoders (~1.1 GB each) from their READMEs ("Pretrained Models").
E4E_FILE, E4E_PAGE = "e4e_ffhq_encode.pt", "https://github.com/omertov/encoder4editing"
PSP_FILE, PSP_PAGE = "psp_ffhq_encode.pt", "https://github.com/eladrich/pixel2style2pixel"


def files_gone(config: ModelConfig) -> bool:
    """Whether the config's files were only ever published on the Anycost hosts, now gone."""
    return config.pretrained and not config.user_defined and config.name in CONFIGS


def route_lines() -> list[str]:
    """The route to real faces that works today, one step a line (the banner and the README)."""
    return [
        f"1. NVIDIA's StyleGAN2 FFHQ generator ({NVIDIA_LICENCE}):",
        f"     curl -LO {NVIDIA_FFHQ_URL}",
        f"     .venv/bin/{CMD} import-nvidia {NVIDIA_FFHQ_FILE}",
        f"2. optional, an encoder for photos ({E4E_FILE} from {E4E_PAGE},",
        f"   or {PSP_FILE} from {PSP_PAGE}; README 'Pretrained Models'):",
        f"     .venv/bin/{CMD} import-e4e {E4E_FILE} --config {NVIDIA_FFHQ_CONFIG}",
        f"3. make run   (serves it; or ANYCOST_MODEL={NVIDIA_FFHQ_CONFIG} make run)",
    ]


def fix_for(config_name: str, weights_dir: str | Path | None = None) -> str:
    """One line: what to run so a worker can serve ``config_name``."""
    try:
        config = get_model_config(config_name, weights_dir)
    except UnknownConfigError:
        return (f"model {config_name!r} is not in the catalogue: `{CMD} list` names the known "
                f"ones; `{CMD} import-nvidia FILE.pkl --config {config_name}` registers a network")
    if config.name == TINY_CONFIG:
        return f"`{CMD} fetch {TINY_CONFIG}` rebuilds it (random weights, made locally)"
    if config.user_defined:
        source = config.provenance.get("source", "the file it was imported from")
        return f"import it again into the weights directory (it came from {source})"
    nvidia = (f"download NVIDIA's {NVIDIA_FFHQ_FILE} ({NVIDIA_FFHQ_URL}) and run "
              f"`{CMD} import-nvidia {NVIDIA_FFHQ_FILE}`; for photos add an encoder: "
              f"`{CMD} import-e4e {E4E_FILE} --config {NVIDIA_FFHQ_CONFIG}` ({E4E_PAGE})")
    if config.name == NVIDIA_FFHQ_CONFIG:
        return nvidia
    if config.resolution == 1024 and "encoder" in config.kinds:  # the Anycost face configs
        return (f"the released Anycost files of {config.name} are no longer served (unless a "
                f"mirror has them); serve {NVIDIA_FFHQ_CONFIG} instead: {nvidia}")
    return (f"the released files of {config.name} are no longer served (unless a mirror has "
            f"them): import a StyleGAN2 network of your own with `{CMD} import-nvidia FILE.pkl "
            "--config NAME` and serve NAME")
