"""Names of edit directions beyond the 40 built-in boundaries (pure Python: web reads this).

Three kinds of edit name resolve to a stored key:

* built-in boundaries: aliases, CelebA names, boundary keys (``shared.codes.attributes``);
* generator directions, computed when the weights were installed (``sefa_00`` ..., ``pca_00``
  ...), and for NVIDIA's FFHQ network its named edits (``interfacegan_smile``,
  ``ganspace_eye_openness`` ...: ``worker.anycost.ffhq_directions``), described by the
  ``directions_<config>.json`` sidecar in the weights directory;
* a user's own directions (learned from examples, or a generator direction saved under a
  name): the user types ``name`` or ``user:name``; the stored key is ``user:name``.

The sidecar (written by ``worker.anycost.factorize.install_generator_directions``)::

    {"version": 1, "config": "tiny-random", "style_dim": 512, "n_style": 10,
     "pca_samples": 4096, "pca_seed": 20200601,
     "directions": [{"key": "sefa_00", "method": "sefa", "index": 0, "slots": [0, ..., 9],
                     "gain": 1.7, "sigma": 0.85, "eigenvalue": 3.1}, ...]}

``gain`` is the W displacement of a full slider (value 1): ``w[:, slots] += value * gain * d``.
Every entry has a ``label`` for sliders. The sidecar's ``named`` block says whether the named
FFHQ edits were installed and why (``named_status``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.codes.attributes import EDIT_GAIN, resolve_attribute

SIDECAR_VERSION = 1
GENERATOR_METHODS: tuple[str, ...] = ("sefa", "pca")
#: Named edits shipped for one network (NVIDIA's FFHQ StyleGAN2), installed where they fit.
NAMED_METHODS: tuple[str, ...] = ("interfacegan", "ganspace")
#: Every method of a direction in the sidecar.
SIDECAR_METHODS: tuple[str, ...] = GENERATOR_METHODS + NAMED_METHODS
#: Generator directions move W by this many standard deviations of W along them at value 1.
GAIN_SIGMAS = 2.0
#: Stored keys of a user's own directions start with this.
USER_PREFIX = "user:"
#: A user's direction name: lower case, digits and underscores, starting with a letter.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: How many examples of each side learning needs at least.
MIN_EXAMPLES = 5
#: Gain of a built-in boundary (the original editor's slider formula).
BUILTIN_GAIN = EDIT_GAIN

_GENERATOR_KEY = re.compile(r"^((sefa|pca)_\d{2}|(interfacegan|ganspace)_[a-z][a-z_]{0,39})$")


def generator_key(method: str, index: int) -> str:
    """'sefa', 3 -> 'sefa_03'."""
    if method not in GENERATOR_METHODS:
        raise ValueError(f"unknown method {method!r}")
    return f"{method}_{index:02d}"


def is_generator_key(key: str) -> bool:
    return bool(_GENERATOR_KEY.match(key))


def user_key(name: str) -> str:
    return USER_PREFIX + name


def pt_path(weights_dir: str | Path, config: str) -> Path:
    return Path(weights_dir) / f"directions_{config}.pt"


def sidecar_path(weights_dir: str | Path, config: str) -> Path:
    return Path(weights_dir) / f"directions_{config}.json"


_cache: dict[Path, tuple[float, list[dict]]] = {}


def generator_directions(weights_dir: str | Path, config: str) -> list[dict]:
    """The config's generator directions from its sidecar (empty when there is none, or when it
    is unreadable: a missing description must not break edit validation of built-ins)."""
    path = sidecar_path(weights_dir, config)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = json.loads(path.read_text())
        entries = [
            {"key": str(d["key"]), "method": str(d["method"]), "index": int(d["index"]),
             "label": str(d.get("label") or f"{d['method'].upper()} {d['index']}"),
             "slots": [int(s) for s in d["slots"]], "gain": float(d["gain"]),
             **{k: d[k] for k in ("sigma", "eigenvalue", "variance", "strength") if k in d}}
            for d in data["directions"] if is_generator_key(str(d.get("key", "")))
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    _cache[path] = (mtime, entries)
    return entries


def named_status(weights_dir: str | Path, config: str) -> dict | None:
    """The sidecar's ``named`` block (``installed``, ``reason``, ``count`` ...), or None."""
    try:
        named = json.loads(sidecar_path(weights_dir, config).read_text()).get("named")
    except (OSError, ValueError, AttributeError):
        return None
    return named if isinstance(named, dict) else None


class DirectionNameError(ValueError):
    """A name a user cannot give a direction; the message says why."""


def check_direction_name(name) -> str:
    """A valid new direction name (as given, stripped), or DirectionNameError."""
    if not isinstance(name, str):
        raise DirectionNameError("a direction name is a string")
    name = name.strip()
    if name.startswith(USER_PREFIX):
        name = name[len(USER_PREFIX):]
    if not NAME_PATTERN.match(name):
        raise DirectionNameError(
            "a direction name is 1 to 40 lower-case letters, digits or underscores, starting "
            "with a letter")
    if is_generator_key(name) or name.split("_", 1)[0] in SIDECAR_METHODS:
        raise DirectionNameError(f"{name!r} looks like a generator direction (sefa_NN, pca_NN, "
                                 "interfacegan_*, ganspace_*)")
    try:
        resolve_attribute(name)
    except KeyError:
        return name
    raise DirectionNameError(f"{name!r} is already a built-in attribute")


def edit_names(generator_keys: list[str], user_names: list[str]) -> dict[str, str]:
    """The extra edit names a recipe may use (lower case) -> stored key: generator keys as they
    are, a user's directions by ``name`` and by ``user:name``."""
    table = {key: key for key in generator_keys}
    for name in user_names:
        table[name] = table[user_key(name)] = user_key(name)
    return table
