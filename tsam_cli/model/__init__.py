"""TSAM networks: config presets, TSAM convs, generator and temporal discriminator."""

from .config import COMPACT, FULL, PRESETS, ModelConfig, get_preset
from .discriminator import TemporalPatchDiscriminator
from .generator import TSAMGenerator
from .tsam_conv import (
    DecoderGatedConv,
    EncoderGatedShiftConv,
    ShiftAlign,
    TemporalShift,
)


def build_generator(config: ModelConfig | str = FULL) -> TSAMGenerator:
    """A randomly initialised generator for a config or preset name ("full", "compact")."""
    if isinstance(config, str):
        config = get_preset(config)
    return TSAMGenerator(config)


__all__ = [
    "COMPACT", "FULL", "PRESETS", "ModelConfig", "get_preset", "build_generator",
    "TSAMGenerator", "TemporalPatchDiscriminator", "ShiftAlign", "TemporalShift",
    "EncoderGatedShiftConv", "DecoderGatedConv",
]
