"""Model hyper-parameters as a frozen, JSON-serialisable dataclass.

The ``FULL`` preset is the official TSAM generator (reference facts 1-3, 12-21 of
``shared/reference/tsam_official_state_dict.md``): a dilated ResNet-50 encoder with
Bottleneck depths [3, 4, 6, 3] and planes [64, 128, 256, 512] (expansion 4), a 64-channel
stem fed with 5 input channels (RGB + mask + guidance, fact 6), and the
``UpSampleResNetSkipGated`` decoder with 256 channels (fact 3, modules.py:634-661).

``COMPACT`` keeps the same design (same modules, same wiring, same shifts) but is much
narrower and shallower, for CPU inference.

A config is stored as JSON in the metadata of our safetensors weight files, so
``ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

#: Bottleneck expansion of ResNet-50 (output channels = planes * 4).
EXPANSION = 4


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a TSAM generator.

    Attributes:
        name: preset name ("full", "compact" or anything for custom configs).
        in_channels: encoder input channels: 5 = masked RGB + valid-mask + zero guidance
            (reference fact 6); 4 = the same without the guidance channel.
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
        # Normalise list -> tuple so that configs read back from JSON compare equal.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        if len(self.widths) != 4 or len(self.depths) != 4:
            raise ValueError("widths and depths must have 4 entries (layer1..layer4)")
        if min(self.widths) < 1 or min(self.depths) < 1 or self.stem_width < 1:
            raise ValueError("widths, depths and stem_width must be positive")
        if self.in_channels not in (4, 5):
            raise ValueError(f"in_channels must be 4 or 5, got {self.in_channels}")
        if self.out_channels < 1:
            raise ValueError("out_channels must be positive")
        if self.decoder_width != EXPANSION * self.widths[0]:
            raise ValueError(
                f"decoder_width ({self.decoder_width}) must equal 4 * widths[0] "
                f"({EXPANSION * self.widths[0]}): the H/4 skip is added without a conv"
            )
        if self.shift_div_encoder < 2 or self.shift_div_decoder < 2:
            raise ValueError("shift divisors must be >= 2")

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
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`. Unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "ModelConfig":
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
