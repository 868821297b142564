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

__all__ = [
    "COMPACT", "FULL", "PRESETS", "ModelConfig", "get_preset",
    "TSAMGenerator", "TemporalPatchDiscriminator", "ShiftAlign", "TemporalShift",
    "EncoderGatedShiftConv", "DecoderGatedConv",
]
