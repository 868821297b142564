"""TSAM networks: config presets, TSAM convs, generator and temporal discriminator."""

from tsam_cli.model.config import COMPACT, FULL, PRESETS, ModelConfig, get_preset
from tsam_cli.model.discriminator import TemporalPatchDiscriminator
from tsam_cli.model.generator import TSAMGenerator
from tsam_cli.model.tsam_conv import (
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
