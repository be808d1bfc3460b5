"""A restricted unpickler for NVIDIA's network pickles: nothing in the file is ever executed.

NVIDIA's StyleGAN2-ADA / StyleGAN3 training code writes ``network-snapshot-*.pkl`` as a plain
pickle of "persistent" modules: each is reduced through
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` carries the module's
Python source (``module_src``, which NVIDIA's loader ``exec``s), its class name and its
``__dict__`` (parameters, buffers, child modules, constructor kwargs as ``dnnlib.util.EasyDict``).
Tensors are pickled through ``torch.storage._load_from_bytes``. The original TensorFlow
StyleGAN2 pickle is a ``(G, D, Gs)`` tuple of ``dnnlib.tflib.network.Network`` whose state holds
numpy arrays.

``load_nvidia_pickle`` reads both with an allow-list: every global the file names is either
replaced by a stand-in that only records data (:class:`PersistentObject`, :class:`TFNetwork`,
``EasyDict``) or is a known data constructor (tensor/storage rebuilds, OrderedDict, numpy arrays,
dtypes and scalars). Anything else is refused with :class:`UnsafePickleError` naming the global.
Storages are loaded with ``torch.load(weights_only=True)``; ``module_src`` is kept as text only.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch._utils


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; ``str(err)`` names it."""


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state: Any) -> None:  # a dict subclass may carry an (empty) __dict__
        if isinstance(state, dict):
            self.update(state)


class PersistentObject:
    """What NVIDIA's ``_reconstruct_persistent_obj`` would have built, as inert data.

    ``class_name``: e.g. 'Generator', 'SynthesisLayer'; ``state``: the object's ``__dict__``
    (for modules: ``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs`` ...);
    ``module_src``: the embedded source, kept as text and never executed.
    """

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise UnsafePickleError(f"persistent object metadata of an unknown form: {type(meta).__name__}")
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.module_src = meta.get("module_src")
        state = meta.get("state")
        if not isinstance(state, dict):
            raise UnsafePickleError(f"persistent object {self.class_name} has no state dict")
        self.state: dict = state

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps its pickled state as data.

    ``state``: {'version', 'name', 'static_kwargs', 'components', 'variables': [(name, array)], ...}.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("dnnlib.tflib.network.Network state is not a dict")
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get("name"))

    @property
    def components(self) -> dict:
        return dict(self.state.get("components") or {})

    def variables(self) -> dict[str, np.ndarray]:
        return {str(k): v for k, v in self.state.get("variables", [])}

    def __repr__(self) -> str:
        return f"TFNetwork({self.name})"


# --------------------------------------------------------------------------- data constructors


def _load_storage(data: bytes) -> Any:
    """``torch.storage._load_from_bytes``, but weights-only."""
    if not isinstance(data, bytes | bytearray):
        raise UnsafePickleError("torch.storage._load_from_bytes expects bytes")
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise UnsafePickleError(f"tensor data is a {type(storage).__name__}, not a torch storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: Any, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("a parameter whose data is not a tensor")
    return data.detach()  # a plain tensor: we only read the values


def _np_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec)
    if dtype.hasobject:
        raise UnsafePickleError(f"numpy dtype {dtype} holds Python objects")
    return dtype


def _np_reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafePickleError("numpy _reconstruct of something other than ndarray")
    return _SafeArray(shape, dtype=_np_dtype(dtype) if not isinstance(dtype, np.dtype) else dtype)


class _SafeArray(np.ndarray):
    """An ndarray whose pickled ``__setstate__`` refuses object data (never unpickles objects)."""

    def __new__(cls, shape: Any, dtype: Any = np.uint8):
        return np.ndarray.__new__(cls, shape=(0,), dtype=np.uint8)

    def __setstate__(self, state: Any) -> None:
        _, shape, dtype, fortran, raw = state
        dtype = _np_dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
        if dtype.hasobject or not isinstance(raw, bytes | bytearray):
            raise UnsafePickleError("numpy array with object data")
        super().__setstate__(state)


def _np_scalar(dtype: Any, data: bytes = b"") -> Any:
    dtype = _np_dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
    if not isinstance(data, bytes | bytearray):
        raise UnsafePickleError("numpy scalar without raw bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 pickles), for our stand-ins only."""
    if cls not in (TFNetwork, EasyDict) or base is not object and base is not dict:
        raise UnsafePickleError(f"copyreg._reconstructor of {getattr(cls, '__name__', cls)!r}")
    return cls.__new__(cls) if base is object else cls()


_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED: dict[tuple[str, str], Callable | type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _np_dtype,
    **{(m, "_reconstruct"): _np_reconstruct for m in _NUMPY_CORE},
    **{(m, "scalar"): _np_scalar for m in _NUMPY_CORE},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing global {module}.{name}: not a tensor, array or network-state type"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent id: this is not a plain network pickle")


def load_nvidia_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` through the allow-list; raises UnsafePickleError or pickle errors."""
    with Path(path).open("rb") as f:
        return _RestrictedUnpickler(f).load()


def loads_nvidia_pickle(data: bytes) -> Any:
    """``load_nvidia_pickle`` for bytes in memory."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()
