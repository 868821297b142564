"""The options of ``tsam inpaint``: defaults, help, ranges and validation in one place.

:class:`InpaintOptions` is what the pipeline takes; the ``tsam inpaint`` command line is
built from its fields (:func:`cli_parameters`), so a default or a help text exists once.
Standard library only: ``tsam --help`` imports this module and must stay instant.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from tsam_cli.errors import UsageError

#: ``--flow`` names (tsam_cli.flow.estimate.make_estimator)
FLOW_METHODS = ("dis", "dis-fast", "dis-ultrafast")
#: ``--filler`` names (tsam_cli.core.propagate.make_filler)
FILLERS = ("texture", "telea")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_MAX_SIZE = 960
#: Cycle-consistency threshold of paper Eq. 2, ``||A - F_b(F_f(A))|| < delta``, in pixels at
#: the processing resolution. The paper does not give its value; 1 px is the usual choice of
#: flow-guided inpainting (a correspondence off by more than a pixel smears detail).
DEFAULT_DELTA = 1.0
#: dilation beyond this is almost surely a typo: 256 px covers a 512 px wide object's fringe,
#: and an elliptic kernel that size already costs ~0.1 s per 1080p frame
MAX_DILATE = 256
#: the largest threshold a mask's own value range allows (16-bit masks: 0..65535)
MAX_MASK_THRESHOLD = 65534


def _opt(default, flag: str | None, help: str, *, short: str | None = None, cli_type=None, invert: bool = False):
    """A field with its command-line flag. ``invert``: the flag is ``--no-...`` and sets False."""
    meta = {"flag": flag, "help": help, "short": short, "cli_type": cli_type, "invert": invert}
    return field(default=default, metadata=meta)


@dataclass
class InpaintOptions:
    """Options of one ``tsam inpaint`` run. :meth:`validate` checks every range.

    ``protected`` lists extra ``(label, path)`` pairs the output must never replace (a
    batch's ``--mask-dir`` and other inputs); input, mask and weight file always are.
    """

    mask: str | None = _opt(None, "--mask", "Mask video, folder of mask images, or one image for all frames. "
                            "White/non-zero = remove.", short="-m", cli_type=Path | None)
    box: tuple[int, int, int, int] | str | None = _opt(
        None, "--box", "Static rectangle to remove, x,y,w,h in video pixels (alone or with --mask).",
        cli_type=str | None)
    invert_mask: bool = _opt(False, "--invert-mask", "Black/zero = remove instead.")
    # --remove (tsam_cli/masking/remove.py): a detector's mask, made first, united with --mask/--box
    remove: str | None = _opt(None, "--remove", "Find what to remove first: text (subtitles, captions; needs "
                              'pip install -e ".\\[text]") or static (logos, watermarks); united with --mask/--box.',
                              cli_type=str | None)
    # 4 px at video size covers the blurred edge and fringe of typical object masks
    dilate: int = _opt(4, "--dilate", f"Grow the mask by this many pixels, 0-{MAX_DILATE} (covers object edges).")
    mask_threshold: int | None = _opt(
        None, "--mask-threshold", "A mask pixel is 'remove' when its value is above this, in the mask's own range "
        "(8-bit 0-254, 16-bit 0-65534; default: 0 for PNG, the midpoint for JPEG/video masks).", cli_type=int | None)
    # flow/propagation cost grows with pixels; 960 keeps 1080p near 0.6 s/frame on 2 cores
    max_size: int = _opt(DEFAULT_MAX_SIZE, "--max-size", "Process at most this many pixels on the long side; "
                         "filled pixels are pasted back at full size.")
    # 18 is x264's "visually lossless" point
    crf: int = _opt(18, "--crf", "H.264 quality (0-51, lower is better).")
    lossless: bool = _opt(False, "--lossless", "Bit-exact output (H.264 RGB qp 0 in .mp4/.mov, FFV1 in .mkv). "
                          "Folders are always lossless PNG.")
    fps: float | None = _opt(None, "--fps", "Frame rate of a folder of frames (0.01-1000, default 25).",
                             cli_type=float | None)
    # texture: sharp never-seen regions at ~1 s per window (docs/texture-fill.md); telea: smooth, cheapest
    filler: str = _opt("texture", "--filler", "Classical filler of what no frame shows: texture (exemplar patches "
                       "for large regions, once per window, then carried on) or telea (smooth, per region).")
    flow: str = _opt("dis", "--flow", "Optical flow: dis (default), dis-fast, dis-ultrafast.")
    full_res: bool = _opt(False, "--full-res", "Propagate full-resolution pixels (flows upscaled) when the video is "
                          "larger than --max-size: sharper fills, slower (see docs/benchmarks.md).")
    # auto: the network where it is fast (CUDA), the classical filler where it costs seconds per frame (CPU)
    model: str = _opt("auto", "--model", "Filler for what propagation cannot reach: auto (default: full on a CUDA "
                      "GPU, downloaded on first use; classical on the CPU), classical (OpenCV Telea), compact, "
                      "full (official TSAM weights), or a weight file.")
    propagation: bool = _opt(True, "--no-propagation", "Skip flow-guided pixel propagation (with --model: the pure "
                             "paper model).", invert=True)
    use_flow: bool = _opt(True, "--no-flow", "Model without flow guidance: the paper's TSM ablation.", invert=True)
    # about the paper's test-time clip length; 8 overlaps windows by a third for blending
    model_window: int = _opt(12, "--model-window", "Frames per generator window.")
    model_stride: int = _opt(8, "--model-stride", "Generator window step, 1..--model-window (overlaps are blended).")
    precision: str = _opt("auto", "--precision", "Model precision: auto (bf16/fp16 autocast on CUDA, fp32 on CPU), "
                          "fp32, fp16 (CUDA), bf16 (CUDA or CPU; on the CPU 0-25 % faster, ~2 levels of 8-bit less exact: "
                          "docs/benchmarks.md).")
    # memory ~ (window + lookahead) x resolution; 40 + 10 stays under 0.4 GiB at 432x240
    window: int = _opt(40, "--window", "Frames completed per temporal window (memory grows with it).")
    lookahead: int = _opt(10, "--lookahead", "Extra future frames each window may copy content from.")
    device: str = _opt("auto", "--device", "auto, cpu, cuda or cuda:N.")
    # pair flows are independent and OpenCV releases the GIL: one per CPU at a time
    threads: int | None = _opt(None, "--threads", "CPU threads for the flow stage and the generator on the CPU "
                               "(default: every CPU this process may use); the classical path's results are "
                               "identical for any number.", cli_type=int | None)
    overwrite: bool = _opt(False, "--overwrite", "Replace an existing output (a file, or a folder of frames tsam "
                           "wrote); swapped in only once the new one is complete.")
    allow_partial: bool = _opt(False, "--allow-partial", "Keep going when the input decodes to fewer frames than it "
                               "announces (truncated/damaged file); the output has the frames that decoded.")
    quiet: bool = _opt(False, "--quiet", "No progress bars or summary (warnings still shown).", short="-q")
    # check the mask before a long run: writes the overlay of tsam preview instead (tsam_cli/masking/preview.py)
    preview: bool = _opt(False, "--preview", "Do not inpaint: write the video with the region to fill (mask after "
                         "--dilate) tinted to -o, to check the mask first.")
    # validity threshold of paper Eq. 2 (not a CLI flag)
    delta: float = _opt(DEFAULT_DELTA, None, "")
    protected: tuple = _opt((), None, "")

    def validate(self) -> None:
        """Check every option's range; raises :class:`UsageError` naming the option and the fix."""
        for name, value, lo, hi in [
            ("--max-size", self.max_size, 16, 16384), ("--crf", self.crf, 0, 51),
            ("--dilate", self.dilate, 0, MAX_DILATE), ("--window", self.window, 2, 10000),
            ("--lookahead", self.lookahead, 0, 10000), ("--model-window", self.model_window, 1, 1000),
            ("--model-stride", self.model_stride, 1, self.model_window),
        ]:
            _check_range(name, value, lo, hi)
        if self.threads is not None:
            _check_range("--threads", self.threads, 1, 1024)
        if self.mask_threshold is not None:
            _check_range("--mask-threshold", self.mask_threshold, 0, MAX_MASK_THRESHOLD)
        check_fps(self.fps)
        if not (isinstance(self.delta, (int, float)) and math.isfinite(self.delta) and self.delta > 0):
            raise UsageError(f"validity threshold {self.delta!r} must be a positive number of pixels")
        _check_choice("--flow", self.flow, FLOW_METHODS)
        _check_choice("--filler", self.filler, FILLERS)
        _check_choice("--precision", self.precision, PRECISIONS)
        if self.remove is not None:  # --remove: the detectors of tsam_cli/masking
            _check_choice("--remove", self.remove, ("text", "static"))
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UsageError(f"--device {self.device!r} is not known: use auto, cpu, cuda or cuda:N")
        if not self.model:
            raise UsageError("--model is empty: use auto, classical, compact, full or a weight file")


def _check_range(name: str, value, lo, hi) -> None:
    """``lo <= value <= hi`` and finite, else UsageError with the allowed range."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi
    if not ok:
        raise UsageError(f"{name} {value!r} is out of range: give a value from {lo:g} to {hi:g}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{name} {value!r} is not known: use one of {', '.join(choices)}")


#: the largest side any size option accepts: 16384 is H.264's level 6.2 limit and already
#: ~800 MB per RGB frame
MAX_SIDE = 16384


def parse_size(text: str, flag: str = "--size", minimum: int = 16, maximum: int = MAX_SIDE) -> tuple[int, int]:
    """``"432x240"`` -> ``(432, 240)`` (width, height); each side from ``minimum`` to ``maximum``."""
    try:
        w, h = (int(v) for v in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: write WIDTHxHEIGHT, e.g. 432x240") from None
    if w < minimum or h < minimum:
        raise UsageError(f"{flag} {w}x{h} is too small: use at least {minimum}x{minimum}")
    if w > maximum or h > maximum:
        raise UsageError(f"{flag} {w}x{h} is too large: use at most {maximum} pixels a side")
    return w, h


def check_fps(value: float | None, flag: str = "--fps") -> None:
    """A frame rate a player can show: finite, 0.01-1000 (``None``: not given)."""
    if value is not None:
        _check_range(flag, value, 0.01, 1000.0)


def cli_parameters(cls=InpaintOptions) -> list[inspect.Parameter]:
    """Typer parameters for every field of ``cls`` that has a flag (name, type, default, help)."""
    import typer

    params = []
    for f in fields(cls):
        meta = f.metadata
        if not meta.get("flag"):
            continue
        default = False if meta["invert"] else f.default
        decls = [meta["flag"]] + ([meta["short"]] if meta["short"] else [])
        annotation = meta["cli_type"] or type(f.default if f.default is not MISSING else "")
        name = meta["flag"].lstrip("-").replace("-", "_")
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                        default=typer.Option(default, *decls, help=meta["help"])))
    return params


def from_cli(values: dict, cls=InpaintOptions):
    """``cls`` from the parsed command-line values (``--no-x`` flags inverted, paths as text)."""
    kwargs = {}
    for f in fields(cls):
        meta = f.metadata
        if not meta.get("flag"):
            continue
        value = values[meta["flag"].lstrip("-").replace("-", "_")]
        if meta["invert"]:
            value = not value
        elif isinstance(value, Path):
            value = str(value)
        kwargs[f.name] = value
    return cls(**kwargs)
