"""Reading checkpoint files in the released Anycost layouts, with errors a person can act on.

Layouts (those of the released ``{kind}_{config}.pt`` files):
- generator: ``{'g_ema': state_dict}`` (rosinality/Anycost key names), optionally with
  ``'latent_avg'`` (w_avg [S]) and ``'arch'`` (``{'conv_clamp': float | None, 'lr_mlp': float}``,
  the arguments a state_dict cannot show; written by the NVIDIA import when they differ from
  Anycost's defaults);
- discriminator: ``{'d': state_dict}`` of our single-resolution ``Discriminator``, optionally with
  ``'arch'`` (``{'conv_clamp', 'mbstd_group_size'}``);
- encoder: ``{'state_dict': state_dict}`` (torchvision ResNet-50 names, ``fc``, ``mean_latent``),
  or ``{'encoder_type': 'e4e'|'psp', 'state_dict': ...}`` for an imported e4e / pSp encoder
  (``worker.anycost.style_encoder`` names plus ``latent_avg`` [L, S]; ``weights import-e4e``);
- boundary: ``{attribute_name: tensor[1, 512]}``, one unit-norm direction per CelebA attribute.

``load_generator`` / ``load_encoder`` / ``load_boundaries`` are the only ways the project reads
these files. Every file is read with ``torch.load(weights_only=True)``; architecture arguments are
inferred from tensor shapes and loading is strict. Whatever is wrong with a file (missing, empty,
truncated, not a torch file at all, unsafe pickle, wrong layout, wrong keys or shapes) surfaces as
a :class:`CheckpointError` whose message names the file and the problem, never a raw traceback.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # the model classes import torch.nn; only needed for annotations here
    from worker.anycost.discriminator import Discriminator
    from worker.anycost.encoder import Encoder
    from worker.anycost.generator import Generator
    from worker.anycost.style_encoder import StyleEncoder

_MAX_LISTED = 8  # how many key names an error message lists before "... and N more"
#: ``encoder_type`` values of an imported e4e / pSp encoder file.
STYLE_ENCODERS = ("e4e", "psp")


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --------------------------------------------------------------------------- reading files


def _sniff(head: bytes) -> str | None:
    """Name what a non-torch file looks like from its first bytes (None: could be torch)."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return None  # zip archive (torch >= 1.6) or a legacy pickle
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image, not a PyTorch checkpoint"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image, not a PyTorch checkpoint"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file, not a PyTorch checkpoint (decompress it first)"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in lowered:
        return "an HTML page, not a PyTorch checkpoint (a mirror's error or login page?)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file, not a PyTorch checkpoint (it starts with {first!r})"
    return f"not a PyTorch checkpoint (unknown format, first bytes {head[:8].hex()})"


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """``torch.load`` one file safely (weights only), turning every failure into CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(path, "the file is empty (0 bytes): an interrupted download?")
    with path.open("rb") as f:
        head = f.read(512)
    what = _sniff(head)
    if what is not None:
        raise CheckpointError(path, what)
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        raise CheckpointError(
            path, f"truncated or corrupt torch archive ({size} bytes, no zip directory at the end)"
        )
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says more
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Weights only load failed" in msg:
            found = re.search(r"GLOBAL (\S+)", msg)
            if found:
                what = f"needs the unsafe global {found.group(1)}"
            else:  # e.g. "Unsupported operand 149": a pickle torch.save never writes
                detail = re.search(r"WeightsUnpickler error:\s*(.+)", msg)
                what = "holds more than tensors and plain data" + (
                    f" ({_first_line(detail.group(1))})" if detail else "")
            raise CheckpointError(
                path,
                f"the file's pickle {what}; refusing to run it "
                "(re-save the file as plain tensors with torch.save)",
            ) from None
        raise CheckpointError(path, f"corrupt pickle data ({_first_line(msg)})") from None
    except Exception as exc:  # torch reports corruption as RuntimeError/EOFError/ValueError...
        raise CheckpointError(path, f"cannot read the torch file ({_first_line(str(exc))})") from None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no details"
    return line[:200]


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _is_direction(t: torch.Tensor) -> bool:
    """[1, D] or [D] with D a plausible latent width."""
    return (t.dim() == 1 or (t.dim() == 2 and t.shape[0] == 1)) and t.shape[-1] >= 16


def detect_kind(obj: Any) -> str | None:
    """Which layout a loaded object has: 'generator', 'encoder', 'boundary', 'discriminator'
    or None."""
    if isinstance(obj, Mapping):
        if _is_tensor_dict(obj.get("g_ema")):
            return "generator"
        if _is_tensor_dict(obj.get("d")):
            return "discriminator"
        inner = obj.get("state_dict")
        if _is_tensor_dict(inner) and ("fc.weight" in inner or obj.get("encoder_type") in STYLE_ENCODERS):
            return "encoder"
        if _is_tensor_dict(obj) and all(_is_direction(v) for v in obj.values()):
            if len({v.numel() for v in obj.values()}) == 1:
                return "boundary"
    return None


def describe_layout(obj: Any) -> str:
    """A short description of a loaded object's layout, for 'wrong layout' messages."""
    kind = detect_kind(obj)
    if kind == "generator":
        return "a generator checkpoint ({'g_ema': ...})"
    if kind == "encoder":
        return "an encoder checkpoint ({'state_dict': ...})"
    if kind == "boundary":
        return f"a boundary file ({len(obj)} direction tensors)"
    if kind == "discriminator":
        return "a discriminator checkpoint ({'d': ...})"
    if _is_tensor_dict(obj):
        if "input.input" in obj:
            return "a bare generator state_dict (expected it wrapped as {'g_ema': state_dict})"
        if "fc.weight" in obj:
            return "a bare encoder state_dict (expected it wrapped as {'state_dict': state_dict})"
        return f"a bare state_dict of {len(obj)} tensors"
    if isinstance(obj, Mapping):
        keys = ", ".join(repr(k) for k in list(obj)[:_MAX_LISTED])
        return f"a dict with keys {keys}"
    return f"a {type(obj).__name__}"


def _expect_layout(path: Path, obj: Any, kind: str, wrapper: str) -> None:
    if detect_kind(obj) != kind:
        raise CheckpointError(
            path, f"wrong layout: expected a {kind} checkpoint ({wrapper}), got {describe_layout(obj)}"
        )


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return f"{shown} ... and {more} more" if more > 0 else shown


def check_state_dict(path: str | Path, sd: Mapping[str, torch.Tensor], expected: Mapping) -> None:
    """Strict comparison of a file's state_dict with a model's: keys both ways, then shapes."""
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_names(unexpected)}")
    if not problems:
        wrong = [
            f"{k} is {list(sd[k].shape)}, expected {list(expected[k].shape)}"
            for k in expected
            if tuple(sd[k].shape) != tuple(expected[k].shape)
        ]
        if wrong:
            problems.append(f"wrong shapes ({len(wrong)}): {_names(wrong)}")
    if problems:
        raise CheckpointError(path, "; ".join(problems))


# --------------------------------------------------------------------------- generator


def _infer(what: str, infer, sd: Mapping[str, torch.Tensor], path: str | Path) -> dict:
    """``infer(sd)`` (one place knows each architecture), its complaints about a malformed
    state_dict turned into a CheckpointError naming the file."""
    try:
        return infer(sd)
    except KeyError as exc:
        raise CheckpointError(path, f"cannot infer the {what}'s size: missing key {exc}") from None
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        raise CheckpointError(path, f"cannot infer the {what}'s size: {exc}") from None


def infer_generator_config(sd: Mapping[str, torch.Tensor], path: str | Path = "<state_dict>") -> dict:
    """Generator constructor kwargs inferred from a ``g_ema`` state_dict's key names and shapes."""
    from worker.anycost.generator import Generator

    return _infer("generator", Generator.config_from_state_dict, sd, path)


def generator_state_dict(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The ``g_ema`` state_dict of a generator file (layout checked, not yet shape-checked)."""
    path = Path(path)
    obj = read_checkpoint(path, device)
    _expect_layout(path, obj, "generator", "{'g_ema': state_dict}")
    return dict(obj["g_ema"])


_GENERATOR_ARCH = {"conv_clamp": (float, type(None)), "lr_mlp": (float,)}
#: Anycost's values of those arguments (a file without 'arch' has them).
GENERATOR_ARCH_DEFAULTS = {"conv_clamp": None, "lr_mlp": 0.01}
_DISCRIMINATOR_ARCH = {"conv_clamp": (float, type(None)), "mbstd_group_size": (int,)}


def _arch(path: Path, obj: Mapping, allowed: Mapping[str, tuple[type, ...]]) -> dict:
    """The optional ``'arch'`` entry: known keys of the right types only."""
    arch = obj.get("arch", {})
    if not isinstance(arch, Mapping):
        raise CheckpointError(path, f"'arch' is a {type(arch).__name__}, expected a dict")
    out = {}
    for key, value in arch.items():
        if key not in allowed:
            raise CheckpointError(path, f"unknown architecture argument {key!r} in 'arch'")
        if isinstance(value, int) and not isinstance(value, bool) and float in allowed[key]:
            value = float(value)
        if not isinstance(value, allowed[key]) or isinstance(value, bool):
            raise CheckpointError(path, f"'arch'[{key!r}] is {value!r}")
        out[key] = value
    return out


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """THE way to load a generator file: infer its architecture, build it, load it strictly."""
    from worker.anycost.generator import Generator

    path = Path(path)
    obj = read_checkpoint(path)  # CPU first: the model is built there, then moved once
    _expect_layout(path, obj, "generator", "{'g_ema': state_dict}")
    sd = dict(obj["g_ema"])
    config = infer_generator_config(sd, path)
    model = Generator(**config, **_arch(path, obj, _GENERATOR_ARCH))
    check_state_dict(path, sd, model.state_dict())
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval().requires_grad_(False)


def generator_file(model: Generator, latent_avg: torch.Tensor | None = None) -> dict:
    """The generator file's object for ``model``: ``{'g_ema'[, 'latent_avg'][, 'arch']}``, with
    'arch' holding the arguments a state_dict cannot show where they differ from Anycost's
    defaults (what ``load_generator`` reads back)."""
    out: dict[str, Any] = {"g_ema": model.state_dict()}
    if latent_avg is not None:
        out["latent_avg"] = latent_avg.detach().reshape(-1).to("cpu", torch.float32)
    arch = {"conv_clamp": model.conv_clamp, "lr_mlp": float(model.lr_mlp)}
    arch = {k: v for k, v in arch.items() if v != GENERATOR_ARCH_DEFAULTS[k]}
    if arch:
        out["arch"] = arch
    return out


def load_latent_avg(path: str | Path) -> torch.Tensor | None:
    """A generator file's ``latent_avg`` (w_avg, [S]), or None when the file has none."""
    path = Path(path)
    obj = read_checkpoint(path)
    _expect_layout(path, obj, "generator", "{'g_ema': state_dict}")
    avg = obj.get("latent_avg")
    if avg is None:
        return None
    if not isinstance(avg, torch.Tensor) or avg.numel() != obj["g_ema"]["style.1.weight"].shape[1]:
        raise CheckpointError(path, "latent_avg is not a [style_dim] tensor")
    return avg.detach().reshape(-1).to(torch.float32)


# --------------------------------------------------------------------------- discriminator


def infer_discriminator_config(sd: Mapping[str, torch.Tensor], path: str | Path = "<state_dict>") -> dict:
    """``Discriminator`` kwargs (resolution, channel_multiplier, channel_max) from its shapes."""
    from worker.anycost.discriminator import Discriminator

    return _infer("discriminator", Discriminator.config_from_state_dict, sd, path)


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> Discriminator:
    """Load a discriminator file (``{'d': state_dict}``) strictly, its size inferred."""
    from worker.anycost.discriminator import Discriminator

    path = Path(path)
    obj = read_checkpoint(path)
    _expect_layout(path, obj, "discriminator", "{'d': state_dict}")
    sd = dict(obj["d"])
    model = Discriminator(**infer_discriminator_config(sd, path), **_arch(path, obj, _DISCRIMINATOR_ARCH))
    check_state_dict(path, sd, model.state_dict())
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval().requires_grad_(False)


# --------------------------------------------------------------------------- encoder


def infer_encoder_config(sd: Mapping[str, torch.Tensor], path: str | Path = "<state_dict>") -> dict:
    """Encoder constructor kwargs (n_style, style_dim) from ``fc`` and ``mean_latent`` shapes."""
    path = Path(path)
    if "mean_latent" not in sd:
        raise CheckpointError(path, "missing keys (1): mean_latent")
    style_dim = int(sd["mean_latent"].numel())
    out_features = int(sd["fc.weight"].shape[0])
    if style_dim == 0 or out_features % style_dim:
        raise CheckpointError(
            path, f"fc.weight has {out_features} outputs, not a multiple of style_dim {style_dim}"
        )
    return {"n_style": out_features // style_dim, "style_dim": style_dim}


def _encoder_input_size(path: Path, obj: Mapping) -> int:
    from worker.anycost.encoder import INPUT_SIZE

    size = obj.get("input_size", INPUT_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
        raise CheckpointError(path, f"input_size must be an integer from 16 to 1024, got {size!r}")
    return size


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> Encoder | StyleEncoder:
    """Load an encoder file: the Anycost ResNet-50 (``{'state_dict': sd}``, n_style inferred
    from ``fc``; an ``'input_size'`` entry when trained at another side than 256) or an
    imported e4e / pSp encoder (``{'encoder_type', 'state_dict'}``). Either takes images
    [N, 3, H, W] in [-1, 1] (resized to its input size) and returns W+ codes [N, L, S]."""
    from worker.anycost.encoder import Encoder

    path = Path(path)
    obj = read_checkpoint(path)  # CPU first: the model is built there, then moved once
    _expect_layout(path, obj, "encoder", "{'state_dict': state_dict}")
    if obj.get("encoder_type") in STYLE_ENCODERS:
        return _load_style_encoder(path, obj).to(device).eval().requires_grad_(False)
    sd = dict(obj["state_dict"])
    model = Encoder(**infer_encoder_config(sd, path), input_size=_encoder_input_size(path, obj))
    check_state_dict(path, sd, model.state_dict())
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval().requires_grad_(False)


def _load_style_encoder(path: Path, obj: Mapping) -> StyleEncoder:
    """An e4e / pSp encoder file, checked strictly. Built on 'meta' and loaded by assignment:
    at 1024 px it holds ~267 M values, no random initialisation to throw away."""
    from worker.anycost.style_encoder import StyleEncoder

    extra = sorted(str(k) for k in obj if k not in ("encoder_type", "state_dict"))
    if extra:
        raise CheckpointError(path, f"unexpected entries in an e4e/psp encoder file: {', '.join(extra)}")
    sd = dict(obj["state_dict"])
    avg = sd.get("latent_avg")
    if not isinstance(avg, torch.Tensor) or avg.dim() != 2:
        raise CheckpointError(path, "latent_avg [n_style, style_dim] missing from the state_dict")
    try:
        with torch.device("meta"):
            model = StyleEncoder(obj["encoder_type"], int(avg.shape[0]), int(avg.shape[1]))
    except ValueError as exc:
        raise CheckpointError(path, f"cannot build the encoder: {exc}") from None
    check_state_dict(path, sd, model.state_dict())
    sd = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    return model


# --------------------------------------------------------------------------- boundaries


def load_boundaries(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Attribute directions ``{name: float32 [1, D]}``; [D]-shaped entries are accepted too."""
    path = Path(path)
    obj = read_checkpoint(path, device)
    _expect_layout(path, obj, "boundary", "{attribute: tensor[1, 512]}")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in obj.items():
        if tensor.dim() == 2 and tensor.shape[0] != 1:
            raise CheckpointError(path, f"direction {name} has shape {list(tensor.shape)}")
        vec = tensor.detach().reshape(1, -1).to(torch.float32)
        norm = float(vec.norm())
        if not math.isfinite(norm) or norm == 0.0:
            raise CheckpointError(path, f"direction {name} is zero or not finite")
        out[name] = vec
    return out
