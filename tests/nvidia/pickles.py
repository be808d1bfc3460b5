"""Writing NVIDIA-format network pickles for tests: the reference pickle (made by NVIDIA's own
code) read into inert data, changed, and written back the way NVIDIA's training code writes it
(persistent modules reduced through ``torch_utils.persistence._reconstruct_persistent_obj``,
constructor kwargs as ``dnnlib.util.EasyDict``, tensors through ``torch.storage``)."""

from __future__ import annotations

import copy
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from worker.anycost.nvidia.unpickle import EasyDict, PersistentObject, load_nvidia_pickle


def read(path: str | Path) -> dict:
    """A pickle's content as inert data (``PersistentObject`` modules); a deep copy to change."""
    return copy.deepcopy(load_nvidia_pickle(path))


def module(obj: PersistentObject, dotted: str) -> PersistentObject:
    """A child module, e.g. ``module(G, 'synthesis.b64.torgb')``."""
    for name in dotted.split(".") if dotted else []:
        obj = obj.state["_modules"][name]
    return obj


@contextmanager
def _nvidia_modules() -> Iterator[dict]:
    """Importable stand-ins of NVIDIA's modules while pickling (pickle saves globals by name)."""
    mods = {n: types.ModuleType(n) for n in ("torch_utils", "torch_utils.persistence", "dnnlib",
                                             "dnnlib.util")}

    def _reconstruct_persistent_obj(meta):  # never called here: only its name is pickled
        raise AssertionError("not for loading")

    class EasyDictStandIn(dict):
        pass

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDictStandIn.__module__, EasyDictStandIn.__qualname__ = "dnnlib.util", "EasyDict"
    EasyDictStandIn.__name__ = "EasyDict"
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDictStandIn
    saved = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        yield {"reconstruct": _reconstruct_persistent_obj, "EasyDict": EasyDictStandIn}
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


def dumps(obj: object) -> bytes:
    """Pickle ``obj`` (as ``read`` returned it, changed or not) in NVIDIA's format."""
    with _nvidia_modules() as names:

        class _Pickler(pickle.Pickler):
            def reducer_override(self, value):
                if isinstance(value, PersistentObject):
                    meta = {"type": "class", "version": value.version, "module_src": value.module_src,
                            "class_name": value.class_name, "state": value.state}
                    return names["reconstruct"], (meta,)
                if isinstance(value, EasyDict):
                    return names["EasyDict"], (), None, None, iter(value.items())
                if isinstance(value, torch.nn.Parameter):
                    return torch._utils._rebuild_parameter, (value.detach(), False, {})
                return NotImplemented

        import io

        buf = io.BytesIO()
        _Pickler(buf, protocol=4).dump(obj)
        return buf.getvalue()


def write(obj: object, path: str | Path) -> Path:
    Path(path).write_bytes(dumps(obj))
    return Path(path)
