"""Model hyper-parameters as a frozen, JSON-serialisable dataclass.

The ``FULL`` preset is the official TSAM generator (facts 1-3, 12-21 of
``docs/official-checkpoint.md``; "fact N" below always cites that file): a dilated ResNet-50 encoder with
Bottleneck depths [3, 4, 6, 3] and planes [64, 128, 256, 512] (expansion 4), a 64-channel
stem fed with 5 input channels (RGB + mask + guidance, fact 6), and the
``UpSampleResNetSkipGated`` decoder with 256 channels (fact 3, modules.py:634-661).

``COMPACT`` keeps the same design (same modules, same wiring, same shifts) but is much
narrower and shallower, for CPU inference.

A config is stored as JSON in the metadata of our safetensors weight files, so
``ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg``. Such a file may come from anyone,
so every field is type- and bounds-checked on construction (:data:`LIMITS`): a bad value is a
one-line ``ValueError``, never a huge allocation, an ``OverflowError`` or a NaN in the network.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Bottleneck expansion of ResNet-50 (output channels = planes * 4).
EXPANSION = 4


#: Inclusive bounds of the integer fields (``widths`` / ``depths``: of each of the 4 stages).
#: Channel widths may be at most 2x the largest official value (stem 4x: 256 vs 64; stage
#: planes 1024 vs 512), depths at most 2x the deepest official stage (12 vs 6 blocks). Larger
#: values describe no TSAM model and would only make loading a file allocate gigabytes.
LIMITS: dict[str, tuple[int, int]] = {
    "in_channels": (4, 5),
    "out_channels": (3, 3),  # the generator's output is composited with RGB frames
    "stem_width": (1, 256),
    "widths": (1, 1024),
    "depths": (1, 12),
    "decoder_width": (1, EXPANSION * 1024),
    "shift_div_encoder": (2, 64),
    "shift_div_decoder": (2, 64),
}
#: Longest accepted preset/custom name (it is printed in messages).
MAX_NAME_LEN = 64


def _show(value: Any) -> str:
    """Short one-line ``repr`` of a (possibly hostile) value for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.isprintable() or len(name) > MAX_NAME_LEN:
        raise ValueError(f"model config field 'name' is {_show(name)}: "
                         f"must be a printable string of at most {MAX_NAME_LEN} characters")


def _check_int(field: str, value: Any, low: int, high: int) -> int:
    """``value`` as an ``int`` in ``[low, high]``; bools, floats (also 64.0, inf, nan) and
    strings are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        allowed = str(low) if low == high else f"an integer in {low}..{high}"
        raise ValueError(f"model config field '{field}' is {_show(value)}: must be {allowed}")
    return int(value)


def _check_stages(field: str, values: Any) -> tuple[int, int, int, int]:
    """``widths`` / ``depths``: a list or tuple of 4 integers, each within ``LIMITS[field]``."""
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        raise ValueError(f"model config field '{field}' is {_show(values)}: "
                         "must be a list of 4 integers (layer1..layer4)")
    low, high = LIMITS[field]
    checked = tuple(_check_int(f"{field}[{i}]", v, low, high) for i, v in enumerate(values))
    return checked  # type: ignore[return-value]


def _check_real(field: str, value: Any, low: float, high: float, open_low: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` if ``open_low``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value if open_low else low <= value) or value > high:
        bracket = "(" if open_low else "["
        raise ValueError(f"model config field '{field}' is {_show(value)}: "
                         f"must be a finite number in {bracket}{low}, {high}]")
    return float(value)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a TSAM generator.

    Attributes:
        name: preset name ("full", "compact" or anything for custom configs).
        in_channels: encoder input channels: 5 = masked RGB + valid-mask + zero guidance
            (docs/official-checkpoint.md fact 6); 4 = the same without the guidance channel.
        out_channels: RGB output channels of conv11 (fact 3).
        stem_width: output channels of the 7x7 stem conv (64 in ResNet-50).
        widths: bottleneck "planes" of layer1..layer4; each stage outputs ``4 * planes``.
        depths: number of Bottleneck blocks in layer1..layer4 ([3, 4, 6, 3] = ResNet-50).
        decoder_width: channel width of the decoder; must equal ``4 * widths[0]`` because the
            H/4 skip ``c1`` is added without a conv (fact 17).
        shift_div_encoder: fold divisor of the encoder shifts (fold = C // 8, fact 15).
        shift_div_decoder: fold divisor of the decoder shifts (fold = C // 4, fact 20).
        use_flow: align shifted features with optical flow (TSAM). False = plain gated TSM.
        official_quirks: reproduce the official forward exactly (facts 32-34) instead of the
            clean behaviour; see :class:`tsam_cli.model.tsam_conv.ShiftAlign`.
        leaky_slope: negative slope of the decoder LeakyReLU (0.2, blocks.py VanillaConv).
        bn_eps: BatchNorm epsilon (1e-5, fact 13).
    """

    name: str = "full"
    in_channels: int = 5
    out_channels: int = 3
    stem_width: int = 64
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    depths: tuple[int, int, int, int] = (3, 4, 6, 3)
    decoder_width: int = 256
    shift_div_encoder: int = 8
    shift_div_decoder: int = 4
    use_flow: bool = True
    official_quirks: bool = False
    leaky_slope: float = 0.2
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        # Every field is checked for type and bounds (see LIMITS) so that a config read from an
        # untrusted weight file can neither build a huge network nor crash with a traceback.
        _check_name(self.name)
        for field in ("widths", "depths"):
            object.__setattr__(self, field, _check_stages(field, getattr(self, field)))
        for field, (low, high) in LIMITS.items():
            if field not in ("widths", "depths"):
                object.__setattr__(self, field, _check_int(field, getattr(self, field), low, high))
        for field in ("use_flow", "official_quirks"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"model config field '{field}' is {_show(getattr(self, field))}: "
                                 "must be true or false")
        object.__setattr__(self, "leaky_slope", _check_real("leaky_slope", self.leaky_slope, 0.0, 1.0))
        object.__setattr__(self, "bn_eps", _check_real("bn_eps", self.bn_eps, 0.0, 1.0, open_low=True))
        if self.decoder_width != EXPANSION * self.widths[0]:
            raise ValueError(
                f"decoder_width ({self.decoder_width}) must equal 4 * widths[0] "
                f"({EXPANSION * self.widths[0]}): the H/4 skip is added without a conv"
            )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["depths"] = list(self.depths)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, complete: bool = False) -> ModelConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` (one line) for a bad config.

        Unknown keys are refused, not ignored: a key this version does not know means the
        config describes a different network, and dropping it would build the wrong one.
        Missing keys take the ``FULL`` defaults unless ``complete`` is True (used for weight
        files: :meth:`to_dict` always writes every key, so a missing one means a damaged file).
        Types and bounds of every value are checked by ``__post_init__`` (see :data:`LIMITS`).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"model config must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise ValueError(f"unknown model config keys: {_show(', '.join(unknown))}")
        missing = [n for n in names if n not in data]
        if complete and missing:
            raise ValueError(f"model config is missing keys: {', '.join(missing)}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str, *, complete: bool = False) -> ModelConfig:
        """Parse ``text`` (JSON) with :meth:`from_dict`; any parse failure is a ``ValueError``."""
        if not isinstance(text, str):
            raise ValueError(f"model config must be a JSON string, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise ValueError(f"model config is not valid JSON ({_show(str(exc))})") from None
        return cls.from_dict(data, complete=complete)

    def replace(self, **changes: Any) -> ModelConfig:
        """Copy with some fields changed (e.g. ``cfg.replace(official_quirks=True)``)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived sizes
    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        """Output channels of layer1..layer4 (x1 at H/4, x2..x4 at H/8; fact 12)."""
        return tuple(EXPANSION * w for w in self.widths)  # type: ignore[return-value]


#: The official TSAM generator (31,661,510 parameters; reference "Counts").
FULL = ModelConfig(name="full")

#: Same design, narrower and shallower, for CPU inference (see module docstring).
COMPACT = ModelConfig(
    name="compact",
    stem_width=24,
    widths=(8, 32, 64, 96),
    depths=(1, 2, 2, 1),
    decoder_width=32,
)

PRESETS: dict[str, ModelConfig] = {"full": FULL, "compact": COMPACT}


def get_preset(name: str) -> ModelConfig:
    """Return the preset called ``name`` ("full" or "compact")."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}: choose one of {sorted(PRESETS)}") from None
