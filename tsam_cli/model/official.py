"""Load official TSAM checkpoints safely and convert them to tsam's own files (:mod:`.tsam_format`).

Official checkpoint layout (facts 39-42 of docs/official-checkpoint.md; official src/base/base_trainer.py:145-177):
a ``torch.save`` pickle of a dict with ``arch``, ``epoch``, ``logger`` (a pickled
``utils.logger.Logger``), ``state_dict`` (the whole ``VideoInpaintingModel``: 408
``generator.`` keys, 34 ``temporal_discriminator.`` keys, 20 ``vgg.`` keys, 2 ``advloss.`` keys),
``optimizer_g`` / ``optimizer_d_s`` / ``optimizer_d_t``, ``monitor_best`` and ``config``.

The pickle is read with a restricted unpickler (:class:`RestrictedUnpickler`): only tensors,
storages, plain containers and a few inert types are built; the logger class is replaced by an
inert stub; any other global (``os.system``, ``builtins.eval``, an unknown class...) makes loading
fail with :class:`~tsam_cli.errors.WeightsError` before anything is called.

Key mapping official -> ours (generator; fact 22-25): our keys are the official keys minus the
spectral-norm duplicates. For each wrapped conv ``X`` (``...featureConv`` / ``...gatingConv``):
``X.layer.weight`` and ``X.layer.bias`` are kept; ``X.weight_orig`` / ``X.weight`` (aliases of
``X.layer.weight``), ``X.bias`` (alias of ``X.layer.bias``) and the power-iteration buffers
``X.weight_u`` / ``X.weight_v`` are consumed and dropped (the effective weight is
``X.layer.weight``, fact 23). Everything else maps one to one.
"""

from __future__ import annotations

import collections
import datetime
import os
import pathlib
import pickle
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tsam_cli.errors import WeightsError
from tsam_cli.model.checkpoint import strip_module_prefix
from tsam_cli.model.config import FULL
from tsam_cli.model.discriminator import TemporalPatchDiscriminator
from tsam_cli.model.generator import TSAMGenerator
from tsam_cli.model.tsam_format import generator_bytes, write_bytes

PathLike = str | os.PathLike

#: Prefix of the generator keys inside the official ``state_dict`` (fact 40).
GENERATOR_PREFIX = "generator."
#: Prefix of the temporal discriminator keys inside the official ``state_dict`` (fact 40).
DISCRIMINATOR_PREFIX = "temporal_discriminator."

# ---------------------------------------------------------------------------------------------
# restricted unpickling
# ---------------------------------------------------------------------------------------------
class InertObject:
    """Stand-in for harmless classes pickled in official checkpoints (e.g. the training logger).

    It only stores the pickled state (``__dict__`` or ``.state``) and has no behaviour.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state

    def __repr__(self) -> str:
        return f"<inert {type(self).__name__} {sorted(self.__dict__)}>"


class InertLogger(InertObject):
    """Stub for the official ``utils.logger.Logger`` (an ``.entries`` dict of training history)."""


#: (module, name) of pickled classes replaced by inert stubs.
_STUBS: dict[tuple[str, str], type] = {
    ("utils.logger", "Logger"): InertLogger,
    ("src.utils.logger", "Logger"): InertLogger,
    ("logger", "Logger"): InertLogger,
}


#: ``torch._utils`` helpers that rebuild tensors / parameters from their pickled parts.
_TORCH_REBUILD_FUNCTIONS = (
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state",
)
#: Modules holding numpy's array / scalar reconstructors (the name moved in numpy 2).
_NUMPY_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


def _plain_globals() -> dict[tuple[str, str], Any]:
    """Containers and inert value types whose constructors touch nothing outside the object."""
    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("_codecs", "encode"): __import__("_codecs").encode,  # bytes under pickle protocol 2
        # plain values a training config / log may hold; their constructors touch nothing
        ("pathlib", "PosixPath"): pathlib.PurePosixPath,
        ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
        ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
        ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
        ("datetime", "datetime"): datetime.datetime,
        ("datetime", "date"): datetime.date,
        ("datetime", "timedelta"): datetime.timedelta,
    }


def _torch_globals() -> dict[tuple[str, str], Any]:
    """The tensor rebuild helpers of ``torch._utils`` (those this torch has) and every dtype."""
    import torch._utils as tu

    allowed: dict[tuple[str, str], Any] = {}
    for fn in _TORCH_REBUILD_FUNCTIONS:
        if hasattr(tu, fn):
            allowed[("torch._utils", fn)] = getattr(tu, fn)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


def _numpy_multiarray_globals() -> dict[tuple[str, str], Any]:
    """``scalar`` and ``_reconstruct`` of whichever numpy multiarray modules import."""
    allowed: dict[tuple[str, str], Any] = {}
    for modname in _NUMPY_MULTIARRAY_MODULES:
        try:
            mod = __import__(modname, fromlist=["scalar"])
        except Exception:  # pragma: no cover - depends on the numpy version
            continue
        for fn in ("scalar", "_reconstruct"):
            if hasattr(mod, fn):
                allowed[(modname, fn)] = getattr(mod, fn)
    return allowed


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy scalars / arrays / dtypes, which may appear in the logger's history (plain data
    only). Empty when numpy is not installed."""
    allowed: dict[tuple[str, str], Any] = {}
    try:
        import numpy as np

        allowed.update(_numpy_multiarray_globals())
        allowed[("numpy", "dtype")] = np.dtype
        allowed[("numpy", "ndarray")] = np.ndarray
        dtypes = getattr(np, "dtypes", None)
        if dtypes is not None:
            for name in dir(dtypes):
                if name.endswith("DType"):
                    allowed[("numpy.dtypes", name)] = getattr(dtypes, name)
    except ImportError:  # pragma: no cover
        pass
    return allowed


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The full allow-list of :class:`RestrictedUnpickler`: ``(module, name) -> object``."""
    allowed = _plain_globals()
    allowed.update(_torch_globals())
    allowed.update(_numpy_globals())
    return allowed


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (``.qualname`` says which)."""

    def __init__(self, qualname: str) -> None:
        super().__init__(f"refused to load '{qualname}'")
        self.qualname = qualname


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allow-listed globals (tensors, containers, inert
    stubs). Anything else raises ``pickle.UnpicklingError`` without importing or calling it."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _STUBS:
            return _STUBS[(module, name)]
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        obj = RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise RefusedGlobal(f"{module}.{name}")
        return obj


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


#: A stand-in for the ``pickle`` module, for ``torch.load(pickle_module=...)``.
restricted_pickle = types.SimpleNamespace(
    Unpickler=RestrictedUnpickler, load=_restricted_load, UnpicklingError=pickle.UnpicklingError,
    __name__="tsam_cli.model.official.restricted_pickle",
)


def read_official_checkpoint(path: PathLike) -> Any:
    """Read an official ``.pth`` with restricted unpickling (never runs code from the file).

    Returns the unpickled top-level object (normally the checkpoint dict). Raises
    :class:`WeightsError` (one line) if the file is missing, corrupt or holds unknown globals.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weight file not found: {p}")
    try:
        return torch.load(p, map_location="cpu", pickle_module=restricted_pickle, weights_only=False)
    except RefusedGlobal as exc:
        raise WeightsError(
            f"{p} is not a safe TSAM checkpoint: refused to load '{exc.qualname}' (only tensors "
            "and plain data are allowed, nothing from the file is run); use the official weights file"
        ) from None
    except pickle.UnpicklingError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"cannot read {p}: corrupt or not a PyTorch checkpoint ({msg})") from None
    except WeightsError:
        raise
    except Exception as exc:  # zip errors, truncated files, bad magic number...
        msg = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        raise WeightsError(f"cannot read {p}: corrupt or not a PyTorch checkpoint ({msg})") from None


# ---------------------------------------------------------------------------------------------
# key mapping
# ---------------------------------------------------------------------------------------------
def _extract_state(obj: Any, prefix: str, what: str, path: PathLike) -> dict[str, torch.Tensor]:
    """The sub-state-dict under ``prefix`` of a checkpoint / state dict (prefix stripped)."""
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} has no state_dict: not a TSAM checkpoint")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    tensors = strip_module_prefix(tensors)  # DataParallel-wrapped save
    sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not sub and prefix == GENERATOR_PREFIX and any(k.startswith("coarse_net.") for k in tensors):
        sub = {k: v for k, v in tensors.items() if k.startswith("coarse_net.")}  # bare generator
    if not sub:
        raise WeightsError(f"{path} has no {what} weights (no '{prefix}' keys): not a TSAM checkpoint")
    return sub


def _official_candidates(key: str) -> list[str]:
    """Official keys that may hold our ``key``, preferred first (aliases of one tensor)."""
    if key.endswith(".layer.weight"):
        base = key[: -len(".layer.weight")]
        return [key, base + ".weight_orig", base + ".weight"]
    if key.endswith(".layer.bias"):
        return [key, key[: -len(".layer.bias")] + ".bias"]
    if key.endswith(".layer.weight_orig"):  # our discriminator with real SN
        base = key[: -len(".layer.weight_orig")]
        return [base + ".layer.weight", base + ".weight_orig", base + ".weight"]
    if key.endswith((".layer.weight_u", ".layer.weight_v")):
        base, suffix = key.rsplit(".layer.", 1)
        return [base + "." + suffix]
    return [key]


def _checked_value(
    official: Mapping[str, torch.Tensor], present: list[str], ref: torch.Tensor, what: str,
) -> torch.Tensor:
    """The tensor under ``present[0]``, after checking that its aliases ``present[1:]`` hold
    the same values and that its shape is the shape of ``ref``."""
    value = official[present[0]]
    for other in present[1:]:
        if official[other].shape != value.shape or not torch.equal(official[other], value):
            raise WeightsError(
                f"corrupt official {what} weights: '{other}' should be the same tensor as "
                f"'{present[0]}' but differs"
            )
    if tuple(value.shape) != tuple(ref.shape):
        raise WeightsError(
            f"official {what} key '{present[0]}' has shape {tuple(value.shape)}, expected "
            f"{tuple(ref.shape)}: not the official TSAM architecture"
        )
    return value


def _power_iteration_keys(
    official: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
) -> set[str]:
    """Spectral-norm power-iteration state (``X.weight_u`` / ``X.weight_v``) of the wrapped
    convs ``X`` in ``official``: not used by the forward (fact 23), consumed and dropped."""
    found: set[str] = set()
    for key in expected:
        if key.endswith(".layer.weight"):
            base = key[: -len(".layer.weight")]
            found.update(k for k in (base + ".weight_u", base + ".weight_v") if k in official)
    return found


def _check_all_mapped(
    official: Mapping[str, torch.Tensor], missing: list[str], consumed: set[str], what: str,
) -> None:
    """Raise :class:`WeightsError` if an expected key was not found or an official key is left over."""
    if missing:
        raise WeightsError(
            f"official {what} weights are missing {len(missing)} keys (first: '{missing[0]}'): "
            "not a complete TSAM checkpoint"
        )
    unused = [k for k in official if k not in consumed]
    if unused:
        raise WeightsError(
            f"official {what} weights have {len(unused)} unexpected keys (first: '{unused[0]}'): "
            "not the official TSAM architecture"
        )


def map_official_state(
    official: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str = "generator",
) -> dict[str, torch.Tensor]:
    """Map an official (prefix-stripped) state dict onto our ``expected`` state dict keys.

    Every official key must be consumed and every expected key found, with the right shape;
    aliases of the same tensor must agree. Raises :class:`WeightsError` otherwise.
    """
    consumed: set[str] = set()
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key, ref in expected.items():
        present = [c for c in _official_candidates(key) if c in official]
        if not present:
            missing.append(key)
            continue
        value = _checked_value(official, present, ref, what)
        consumed.update(present)
        out[key] = value.to(ref.dtype)
    consumed.update(_power_iteration_keys(official, expected))
    _check_all_mapped(official, missing, consumed, what)
    return out


def _official_use_flow(ckpt: Any) -> bool:
    """Whether the checkpoint was trained with flow (config arch.args.opts.flow_tsm; fact 1)."""
    try:
        cfg = ckpt["config"]
        opts = cfg["arch"]["args"].get("opts", cfg["arch"]["args"])
        if "flow_tsm" in opts:
            return bool(opts["flow_tsm"])
        if "use_flow" in cfg:
            return bool(cfg["use_flow"])
    except Exception:
        pass
    return True


def load_official_generator(
    path: PathLike, *, official_quirks: bool = True, checkpoint: Any = None,
) -> TSAMGenerator:
    """Build a ``FULL`` generator (in eval mode) from an official ``.pth`` checkpoint.

    ``official_quirks=True`` (default) reproduces the official forward exactly, which is how the
    official weights were trained; ``False`` uses the clean TSAM alignment.
    """
    ckpt = read_official_checkpoint(path) if checkpoint is None else checkpoint
    official = _extract_state(ckpt, GENERATOR_PREFIX, "generator", path)
    cfg = FULL.replace(official_quirks=bool(official_quirks), use_flow=_official_use_flow(ckpt))
    model = TSAMGenerator(cfg)
    state = map_official_state(official, model.state_dict(), "generator")
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_official_discriminator(
    path: PathLike, *, spectral_norm: bool = False, checkpoint: Any = None,
) -> TemporalPatchDiscriminator:
    """Build the temporal discriminator from an official checkpoint (34 keys, facts 36-37)."""
    ckpt = read_official_checkpoint(path) if checkpoint is None else checkpoint
    official = _extract_state(ckpt, DISCRIMINATOR_PREFIX, "discriminator", path)
    model = TemporalPatchDiscriminator(spectral_norm=spectral_norm)
    state = map_official_state(official, model.state_dict(), "discriminator")
    model.load_state_dict(state, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# our safetensors files
# ---------------------------------------------------------------------------------------------


def _checked_source(src_path: PathLike) -> Path:
    """The checkpoint to convert, as a regular file, or a one-line :class:`WeightsError`."""
    p = Path(src_path)
    if not os.path.lexists(p):
        raise WeightsError(f"weight file not found: {p}: give the path of the official .pth checkpoint")
    if os.path.isdir(p):
        raise WeightsError(f"{p} is a folder, not a checkpoint: give the official .pth file")
    if not os.path.isfile(p):
        raise WeightsError(f"{p} is not a regular file (a broken link, device or FIFO): give the official .pth file")
    return p


def convert_official(
    src_path: PathLike, dst_path: PathLike, *, official_quirks: bool = True, overwrite: bool = False,
) -> Path:
    """Convert an official ``.pth`` into our safetensors format (generator only).

    The stored config is ``FULL`` with ``official_quirks`` (default True: the behaviour the
    official weights were trained with) and ``use_flow`` from the checkpoint config.
    ``dst_path`` is written through :class:`~tsam_cli.media.output.OutputTarget`: it must end in
    ``.safetensors``, is never the source (by name, link or inode), replaces an existing file only
    with ``overwrite``, is written to a hidden temporary and swapped in with the umask's mode.
    Raises :class:`WeightsError` (exit 6) for the source, :class:`OutputError` (exit 5) for ``dst``.
    """
    from tsam_cli import hooks
    from tsam_cli.media.output import OutputTarget

    src = _checked_source(src_path)
    # checked before the slow load, and again under the lock when writing
    target = OutputTarget(dst_path, [("the source checkpoint", src)], overwrite,
                          suffixes={".safetensors"}, folders=False, flag="-o")
    model = load_official_generator(src, official_quirks=official_quirks)
    data = generator_bytes(model, {"tsam_source": "official:" + src.name})
    del model

    def write(tmp: Path) -> None:
        write_bytes(tmp, data)
        hooks.pause_point("writing")

    with target:
        target.write_with(write)
    return target.path


__all__ = [
    "GENERATOR_PREFIX", "DISCRIMINATOR_PREFIX", "InertObject", "InertLogger",
    "RestrictedUnpickler", "read_official_checkpoint", "map_official_state",
    "load_official_generator", "load_official_discriminator", "convert_official",
]
