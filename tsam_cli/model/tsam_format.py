"""tsam's own weight files: safetensors holding the generator ``state_dict()`` and its
:class:`~tsam_cli.model.config.ModelConfig` JSON in the metadata (key ``tsam_config``): written
atomically, validated from the header before anything is built, loaded.

:func:`load_generator` also takes an official ``.pth`` (read by :mod:`tsam_cli.model.official`,
which holds everything about the official format).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tsam_cli.errors import WeightsError
from tsam_cli.model.config import ModelConfig
from tsam_cli.model.generator import TSAMGenerator

PathLike = str | os.PathLike

#: Metadata key holding the ModelConfig JSON in our safetensors files.
CONFIG_METADATA_KEY = "tsam_config"
FORMAT_METADATA_KEY = "tsam_format"
FORMAT_VERSION = "1"


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
        from tsam_cli.model.official import load_official_generator  # the official format's own module

        model = load_official_generator(
            p, official_quirks=True if official_quirks is None else official_quirks
        )
        return model.to(map_location)
    return _load_safetensors_generator(p, official_quirks).to(map_location)


__all__ = [
    "CONFIG_METADATA_KEY", "FORMAT_METADATA_KEY", "FORMAT_VERSION", "MAX_HEADER_BYTES", "MAX_PARAMETERS",
    "expected_generator_state", "generator_bytes", "load_generator", "read_safetensors_header", "save_generator",
    "write_bytes",
]
