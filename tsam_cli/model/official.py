"""Load official TSAM checkpoints safely, convert them, and load our own weight files.

Official checkpoint layout (facts 39-42 of docs/official-checkpoint.md; official src/base/base_trainer.py:145-177):
a ``torch.save`` pickle of a dict with ``arch``, ``epoch``, ``logger`` (a pickled
``utils.logger.Logger``), ``state_dict`` (the whole ``VideoInpaintingModel``: 408
``generator.`` keys, 34 ``temporal_discriminator.`` keys, 20 ``vgg.`` keys, 2 ``advloss.`` keys),
``optimizer_g`` / ``optimizer_d_s`` / ``optimizer_d_t``, ``monitor_best`` and ``config``.

The pickle is read with a restricted unpickler (:class:`RestrictedUnpickler`): only tensors,
storages, plain containers and a few inert types are built; the logger class is replaced by an
inert stub; any other global (``os.system``, ``builtins.eval``, an unknown class...) makes loading
fail with :class:`~tsam_cli.errors.WeightsError` before anything is called.

Our weight files are safetensors with the generator ``state_dict()`` and the
:class:`~tsam_cli.model.config.ModelConfig` JSON in the metadata (key ``tsam_config``).

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
import json
import math
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
from tsam_cli.model.config import FULL, ModelConfig
from tsam_cli.model.discriminator import TemporalPatchDiscriminator
from tsam_cli.model.generator import TSAMGenerator

PathLike = str | os.PathLike

#: Prefix of the generator keys inside the official ``state_dict`` (fact 40).
GENERATOR_PREFIX = "generator."
#: Prefix of the temporal discriminator keys inside the official ``state_dict`` (fact 40).
DISCRIMINATOR_PREFIX = "temporal_discriminator."
#: Metadata key holding the ModelConfig JSON in our safetensors files.
CONFIG_METADATA_KEY = "tsam_config"
FORMAT_METADATA_KEY = "tsam_format"
FORMAT_VERSION = "1"


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
def generator_bytes(model: TSAMGenerator, extra_metadata: dict[str, str] | None = None) -> bytes:
    """``model``'s weights + config as the bytes of a safetensors file (held in memory: about
    4 bytes per parameter, 127 MB for ``FULL``), so that writing them is a plain file write whose
    errors (full disk, quota) are ordinary ``OSError`` exceptions with an errno."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {CONFIG_METADATA_KEY: model.config.to_json(), FORMAT_METADATA_KEY: FORMAT_VERSION,
            "format": "pt"}
    meta.update(extra_metadata or {})
    return save(tensors, metadata=meta)


def write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to an existing (temporary) file ``path``, all of it or an ``OSError``."""
    with open(path, "wb") as f:
        f.write(data)


def save_generator(model: TSAMGenerator, path: PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights + config to a safetensors file, atomically.

    The bytes go to a hidden temporary of a unique name beside ``path`` (``mkstemp``: never a
    file someone else owns), which gets the umask's usual mode (0644 under umask 022) and is
    renamed over ``path``; on any error or signal it is removed. For the trainer's export and
    the weights cache; ``tsam weights convert`` writes through :class:`OutputTarget` instead.
    Raises :class:`WeightsError` (one line) when the file cannot be written.
    """
    import tempfile

    from tsam_cli.media.output import current_umask, describe_os_error

    p = Path(path)
    data = generator_bytes(model, extra_metadata)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.tsam-{os.getpid()}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
        tmp = Path(name)
        write_bytes(tmp, data)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private
        os.replace(tmp, p)
    except OSError as exc:
        raise WeightsError(f"cannot write {p}: {describe_os_error(exc, 'output')}") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            tmp.unlink(missing_ok=True)  # an error or a signal: nothing half-written stays
    return p


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


#: Largest safetensors header we read. A ``FULL`` file's header is about 40 KB (360 tensors);
#: anything near this limit is not a tsam weight file, and reading it would only cost memory.
MAX_HEADER_BYTES = 8 * 1024 * 1024
#: Largest generator accepted from a file, in float values (parameters + BatchNorm statistics):
#: about 8x the official ``FULL`` model (31.7 M), i.e. 1 GB of float32. The config bounds alone
#: (``LIMITS`` in ``model/config.py``) still allow ~2 G values (all widths 1024, depths 12).
MAX_PARAMETERS = 256_000_000
#: safetensors dtype tag -> bytes per element, for the dtypes a generator file may hold.
_ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}
_ST_FLOAT = {"F64", "F32", "F16", "BF16"}  # float params/buffers may be stored in any of these
_ST_INT = {"I64", "I32"}  # integer buffers (BatchNorm num_batches_tracked)
#: Length field (8 bytes, little endian) + the first byte of the JSON header.
_ST_PREFIX = 9

#: A tensor entry of a safetensors header: (dtype tag, shape).
HeaderEntry = tuple[str, tuple[int, ...]]


def _bad_file(p: Path, problem: str) -> WeightsError:
    """One-line :class:`WeightsError` for an unusable safetensors weight file."""
    return WeightsError(
        f"{p} is not a usable tsam weight file: {problem}; download it again "
        "(tsam weights download) or re-export it with tsam"
    )


def _quote(name: str) -> str:
    """``repr`` of a (possibly hostile) name from a file, cut to one short line."""
    return repr(name if len(name) <= 100 else name[:100] + "...")


def _is_safetensors(p: Path) -> bool:
    """Whether ``p`` is meant to be a safetensors file: by name, or by its first 9 bytes (a
    length field followed by ``{``). Everything else is treated as an official ``.pth``."""
    if p.suffix.lower() == ".safetensors":
        return True
    with open(p, "rb") as fh:
        head = fh.read(_ST_PREFIX)
    return len(head) == _ST_PREFIX and head[8:9] == b"{"


def _read_header_json(p: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of safetensors file ``p`` (read alone, nothing else) and the size of
    the data section after it, in bytes. Raises :class:`WeightsError` for a short file, a
    length field larger than the file or :data:`MAX_HEADER_BYTES`, or a header that is not a
    JSON object."""
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise _bad_file(p, f"only {size} bytes, too short for a safetensors file")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise _bad_file(p, f"its header length field says {n} bytes but the file has "
                                   f"{size} bytes (header limit {MAX_HEADER_BYTES}): truncated or corrupt")
            raw = fh.read(n)
    except OSError as exc:
        raise WeightsError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _bad_file(p, f"its header is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise _bad_file(p, "its header is not a JSON object")
    return header, size - 8 - n


def _header_entry(p: Path, name: str, entry: Any) -> tuple[HeaderEntry, tuple[int, int]]:
    """Validate one tensor entry of a header -> ((dtype, shape), (begin, end) byte offsets)."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _bad_file(p, f"header entry {_quote(name)} is malformed")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _ST_ITEMSIZE:
        raise _bad_file(p, f"tensor {_quote(name)} has dtype {_quote(str(dtype))}, not one of "
                           f"{', '.join(_ST_ITEMSIZE)}")
    ints = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in shape + offsets)
    if not ints or len(shape) > 8:
        raise _bad_file(p, f"tensor {_quote(name)} has a malformed shape or data_offsets")
    numel = math.prod(shape)
    if offsets[1] - offsets[0] != numel * _ST_ITEMSIZE[dtype]:
        raise _bad_file(p, f"tensor {_quote(name)}: data_offsets {offsets} do not fit its shape {shape}")
    return (dtype, tuple(shape)), (offsets[0], offsets[1])


def read_safetensors_header(path: PathLike) -> tuple[dict[str, str], dict[str, HeaderEntry]]:
    """Read and check the header of a safetensors file without reading any tensor data.

    Checks what ``safetensors`` itself requires (entry fields, dtypes, byte sizes matching
    shapes, tensors tiling the data section with no gap or overlap, string metadata) so that
    a file that passes can be materialised. Returns ``(metadata, {name: (dtype, shape)})``.
    Raises :class:`WeightsError` with a one-line message otherwise.
    """
    p = Path(path)
    header, data_len = _read_header_json(p)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _bad_file(p, "its __metadata__ is not a map of strings")
    entries: dict[str, HeaderEntry] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        entries[name], (begin, end) = _header_entry(p, name, entry)
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise _bad_file(p, f"tensor {_quote(name)} starts at byte {begin}, expected {pos} "
                               "(gap or overlap)")
        pos = end
    if pos != data_len:
        raise _bad_file(p, f"its tensors need {pos} data bytes but the file has {data_len}: "
                           "truncated or padded")
    return meta, entries


def _config_from_metadata(p: Path, meta: Mapping[str, str]) -> ModelConfig:
    """The validated :class:`ModelConfig` stored in a file's metadata (all keys required)."""
    if CONFIG_METADATA_KEY not in meta:
        raise WeightsError(f"{p} has no TSAM model config in its metadata: not a tsam weight file")
    try:
        return ModelConfig.from_json(meta[CONFIG_METADATA_KEY], complete=True)
    except (ValueError, TypeError) as exc:
        raise _bad_file(p, f"invalid model config: {(str(exc).splitlines() or [''])[0][:200]}") from None


def expected_generator_state(cfg: ModelConfig) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """``{key: (dtype, shape)}`` of ``TSAMGenerator(cfg).state_dict()``, built on the meta
    device (no memory is allocated for parameters). Raises :class:`WeightsError` when the
    model would exceed :data:`MAX_PARAMETERS`."""
    with torch.device("meta"):
        model = TSAMGenerator(cfg)
    state = {k: (v.dtype, tuple(v.shape)) for k, v in model.state_dict().items()}
    count = sum(math.prod(shape) for dtype, shape in state.values() if dtype.is_floating_point)
    if count > MAX_PARAMETERS:
        raise WeightsError(
            f"model config '{cfg.name}' describes a generator with {count:,} values, more than "
            f"the limit of {MAX_PARAMETERS:,} (8x the official model): refusing to build it; "
            "use a tsam weight file (tsam weights download)"
        )
    return state


def _check_entries(p: Path, cfg: ModelConfig, entries: Mapping[str, HeaderEntry]) -> None:
    """Compare a file's tensor names, shapes and dtypes to what ``cfg`` implies."""
    try:
        expected = expected_generator_state(cfg)
    except WeightsError as exc:
        raise WeightsError(f"{p}: {exc}") from None
    missing = [k for k in expected if k not in entries]
    unused = [k for k in entries if k not in expected]
    if missing or unused:
        first = (missing or unused)[0]
        raise WeightsError(
            f"{p} does not match its '{cfg.name}' config ({len(missing)} missing, "
            f"{len(unused)} unexpected keys, first: {_quote(first)}): the file is damaged or was "
            "edited; download it again or re-export it with tsam"
        )
    for key, (dtype, shape) in expected.items():
        tag, got = entries[key]
        if got != shape:
            raise _bad_file(p, f"'{key}' has shape {got}, expected {shape} for its '{cfg.name}' config")
        if tag not in (_ST_FLOAT if dtype.is_floating_point else _ST_INT):
            raise _bad_file(p, f"'{key}' has dtype {tag}, expected a "
                               f"{'float' if dtype.is_floating_point else 'integer'} dtype")


def _load_safetensors_generator(p: Path, official_quirks: bool | None) -> TSAMGenerator:
    """Validate header + config of safetensors file ``p`` (nothing built or read yet), then
    build the generator and load the tensors. Raises :class:`WeightsError` on any problem."""
    from safetensors import safe_open

    meta, entries = read_safetensors_header(p)
    cfg = _config_from_metadata(p, meta)
    if official_quirks is not None:
        cfg = cfg.replace(official_quirks=bool(official_quirks))
    _check_entries(p, cfg, entries)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # the header was checked; this is a race or an unusual read error
        msg = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        raise WeightsError(f"cannot read {p}: corrupt safetensors file ({msg})") from None
    model = TSAMGenerator(cfg)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def load_generator(
    path: PathLike, *, official_quirks: bool | None = None, map_location: str | torch.device = "cpu",
) -> TSAMGenerator:
    """Load a generator (eval mode) from our safetensors file or an official ``.pth``.

    The architecture comes from the file (safetensors metadata, or ``FULL`` for official files).
    ``official_quirks`` overrides the stored setting when not None. For safetensors files the
    header and config are validated before anything is built (:func:`read_safetensors_header`,
    :class:`ModelConfig` bounds, :data:`MAX_PARAMETERS`, names/shapes/dtypes against the
    config). Raises :class:`WeightsError` with a one-line message for missing, corrupt,
    hostile or incompatible files.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weight file not found: {p}")
    try:
        is_st = _is_safetensors(p)
    except OSError as exc:
        raise WeightsError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not is_st:
        model = load_official_generator(
            p, official_quirks=True if official_quirks is None else official_quirks
        )
        return model.to(map_location)
    return _load_safetensors_generator(p, official_quirks).to(map_location)


__all__ = [
    "GENERATOR_PREFIX", "DISCRIMINATOR_PREFIX", "InertObject", "InertLogger",
    "RestrictedUnpickler", "read_official_checkpoint", "map_official_state",
    "load_official_generator", "load_official_discriminator", "save_generator",
    "convert_official", "load_generator", "read_safetensors_header", "expected_generator_state",
    "MAX_HEADER_BYTES", "MAX_PARAMETERS",
]
