"""The options of ``tsam mask text`` and ``tsam mask static``: defaults, help, ranges, validation.

One dataclass per command, built like :class:`tsam_cli.options.InpaintOptions`: each field
carries its flag and help text, the Typer command is generated from it
(:func:`tsam_cli.options.cli_parameters`) and :meth:`validate` is the one place ranges are
checked. Standard library only: ``tsam --help`` imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsam_cli.errors import UsageError
from tsam_cli.options import _check_range, _opt

#: ``--region`` names; anything else must be ``x,y,w,h``
REGIONS = ("bottom", "top", "all")
#: ``--remove`` names of ``tsam inpaint`` (the detector to run first)
REMOVE_KINDS = ("text", "static")


@dataclass
class OutputFlags:
    """The flags of every command that writes one -o (mask makers, preview); the other
    fields of each command's options follow these."""

    overwrite: bool = _opt(False, "--overwrite", "Replace an existing output (swapped in only once complete).")
    quiet: bool = _opt(False, "--quiet", "No progress bars or summary (warnings still shown).", short="-q")


@dataclass
class TextMaskOptions(OutputFlags):
    """Options of one ``tsam mask text`` run (also used by ``tsam inpaint --remove text``)."""

    # subtitles sit in the lower part of the picture; "bottom" is the lower 40 % (three lines
    # of 240p subtitles with their margin fit), which is also 2.5x faster than the whole frame
    region: str = _opt("bottom", "--region", "Where to look: bottom (lower 40 %), top (upper 40 %), all, "
                       "or x,y,w,h in pixels of the video as shown.")
    # 1 = every frame; with N > 1 frames between two detections get the boxes carried over,
    # and every frame of an interval whose two ends disagree is detected (no missed change)
    every: int = _opt(1, "--every", "Run the detector on every N-th frame and carry boxes between (faster); "
                      "frames around a change are always detected.")
    # DB's own box growth (unclip 1.6) hugs the glyphs; 4 px more covers the black outline,
    # anti-aliasing and the blur of compression around burned-in letters at 240p-1080p
    pad: int = _opt(4, "--pad", "Grow each text box by this many pixels on every side.")
    # PP-OCR's DB thresholds (PaddleOCR's defaults: 0.3 pixel, 0.5 box; see docs/masking.md)
    threshold: float = _opt(0.5, "--threshold", "Text box score needed, 0-1 (lower finds fainter text, "
                            "and more false boxes).")
    # a box must be seen this many frames to count: one-frame detections are noise
    min_frames: int = _opt(3, "--min-frames", "Drop text shown for fewer frames than this (false detections).")
    # the detector misses a frame now and then (fades, motion blur): bridge such holes
    max_gap: int = _opt(2, "--max-gap", "Bridge a box missing for up to this many frames between two sightings.")

    def validate(self) -> None:
        """Check every range; raises :class:`UsageError` naming the option and the fix."""
        for name, value, lo, hi in [("--every", self.every, 1, 1000), ("--pad", self.pad, 0, 256),
                                    ("--min-frames", self.min_frames, 1, 100000), ("--max-gap", self.max_gap, 0, 1000),
                                    ("--threshold", self.threshold, 0.0, 1.0)]:
            _check_range(name, value, lo, hi)
        parse_region(self.region)


@dataclass
class StaticMaskOptions(OutputFlags):
    """Options of one ``tsam mask static`` run (also used by ``tsam inpaint --remove static``)."""

    # 60 frames spread over the video give a stable median and per-pixel spread while keeping
    # memory at 60 frames at the analysis size (about 19 MB at 432x240)
    samples: int = _opt(60, "--samples", "Frames sampled, spread over the whole video (more: steadier, slower).")
    # statistics need no detail: 480 px on the long side keeps a 1080p video's analysis fast
    analysis_size: int = _opt(480, "--analysis-size", "Analyse frames at most this many pixels on the long side.")
    # the overlay as found hugs the logo (IoU 0.89-1.0 at --pad 0, docs/benchmarks.md); 2 px
    # cover the compression blur around it (tsam inpaint's --dilate grows the mask again)
    pad: int = _opt(2, "--pad", "Grow the found overlay by this many pixels (at the video's size).")
    # channel bugs are rarely smaller than 0.05 % of the picture (8x8 px at 432x240)
    min_area: float = _opt(0.0005, "--min-area", "Ignore static spots smaller than this fraction of the picture.")
    # "static" = within this many grey levels of the median in most sampled frames
    tolerance: int = _opt(10, "--tolerance", "Grey-level difference still counted as 'unchanged' (0-255).")

    def validate(self) -> None:
        """Check every range; raises :class:`UsageError` naming the option and the fix."""
        for name, value, lo, hi in [("--samples", self.samples, 8, 2000), ("--analysis-size", self.analysis_size, 64, 4096),
                                    ("--pad", self.pad, 0, 256), ("--min-area", self.min_area, 0.0, 0.5),
                                    ("--tolerance", self.tolerance, 1, 255)]:
            _check_range(name, value, lo, hi)


def parse_region(text: str) -> str | tuple[int, int, int, int]:
    """``--region``: ``"bottom" | "top" | "all"`` or ``(x, y, w, h)`` (display pixels, w, h > 0)."""
    text = (text or "").strip().lower()
    if text in REGIONS:
        return text
    parts = text.split(",")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or min(vals[:2]) < 0 or min(vals[2:]) <= 0:
        raise UsageError(f"--region {text!r}: use bottom, top, all, or x,y,w,h in pixels (w, h > 0)")
    return vals  # type: ignore[return-value]


def check_remove(value: str | None) -> None:
    """``tsam inpaint --remove``: None, ``text`` or ``static``."""
    if value is not None and value not in REMOVE_KINDS:
        raise UsageError(f"--remove {value!r} is not known: use --remove text or --remove static")
