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


def _opt(default, flag: str | None, help: str, *, short: str | None = None, cli_type=None, invert: bool = False,
         metavar: str | None = None):
    """A field with its command-line flag. ``invert``: the flag is ``--no-...`` and sets False."""
    meta = {"flag": flag, "help": help, "short": short, "cli_type": cli_type, "invert": invert, "metavar": metavar}
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
    # pair flows are independent and the texture filler's patch rows too, and OpenCV/numpy release
    # the GIL: one per CPU at a time
    threads: int | None = _opt(None, "--threads", "CPU threads for the flow stage, the texture filler and the generator on the CPU "
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
        raise UsageError(f"{name} {value!r} is out of range: give a value from {_number(lo)} to {_number(hi)}")


def _number(x) -> str:
    """A range bound as a user types it: integers whole (2147483647, not 2.14748e+09)."""
    return str(x) if isinstance(x, int) else f"{x:g}"


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
                                        default=typer.Option(default, *decls, help=meta["help"],
                                                                     metavar=meta.get("metavar"))))
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


#: ``--anchor`` names -> where the original sits on the canvas, as fractions (x, y) of the new
#: pixels that go to its left / above it
ANCHORS = {
    "center": (0.5, 0.5), "centre": (0.5, 0.5), "left": (0.0, 0.5), "right": (1.0, 0.5), "top": (0.5, 0.0),
    "bottom": (0.5, 1.0), "top-left": (0.0, 0.0), "top-right": (1.0, 0.0), "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
}
#: ``--aspect`` range (display width / height): 1:10 to 10:1 covers every screen and banner
ASPECT_RANGE = (0.1, 10.0)


@dataclass
class OutpaintOptions(InpaintOptions):
    """Options of one ``tsam outpaint`` run: every :class:`InpaintOptions` field (``mask``/``box``
    are optional here: something to remove in the same run) plus the canvas. ``aspect``,
    ``size``, ``pad``, ``anchor`` and ``fill_borders`` are in display orientation (as a player
    shows the video); exactly one of ``aspect``/``size``/``pad``, or ``fill_borders`` alone."""

    aspect: str | None = _opt(None, "--aspect", "Widen to this display aspect, W:H or a number (16:9, 2.39, "
                              "9:16); the smallest canvas that holds the video.", cli_type=str | None)
    size: str | None = _opt(None, "--size", "Output size WIDTHxHEIGHT in pixels, at least the input's.",
                            cli_type=str | None)
    pad: str | None = _opt(None, "--pad", "New pixels on each side: LEFT,TOP,RIGHT,BOTTOM (e.g. 96,0,96,0).",
                           cli_type=str | None)
    anchor: str = _opt("center", "--anchor", "Where the original sits with --aspect/--size: center, left, right, "
                       "top, bottom, top-left, ... or X,Y fractions from 0 to 1 (0,0 = top-left).")
    fill_borders: str | None = _opt(None, "--fill-borders", "Also fill black borders of the input in place: auto "
                                    "(near-black regions touching the edge, per frame: letterbox, or the corners "
                                    "left by a stabiliser or a rotation) or LEFT,TOP,RIGHT,BOTTOM bar widths.",
                                    cli_type=str | None)

    def validate(self) -> None:
        """Every :class:`InpaintOptions` range, then the canvas options' form (sizes against
        the input are checked once it is probed: tsam_cli.core.canvas.plan_canvas)."""
        super().validate()
        given = [f"--{n}" for n in ("aspect", "size", "pad") if getattr(self, n) is not None]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} both set the output size: give only one")
        if not given and self.fill_borders is None:
            raise UsageError("nothing to outpaint: give --aspect W:H, --size WxH, --pad L,T,R,B or --fill-borders")
        if self.aspect is not None:
            parse_aspect(self.aspect)
        if self.size is not None:
            parse_size(self.size, "--size")
        if self.pad is not None:
            parse_pad(self.pad)
            if self.anchor not in ("center", "centre"):
                raise UsageError("--anchor places the original with --aspect/--size; --pad places it already")
        parse_anchor(self.anchor)
        if self.fill_borders not in (None, "auto"):
            parse_pad(self.fill_borders, "--fill-borders")


def parse_aspect(text: str) -> float:
    """``"16:9"``, ``"16/9"``, ``"1.78"`` or ``"2.39:1"`` -> width / height (finite, in ``ASPECT_RANGE``)."""
    parts = re.split(r"[:/x]", str(text).strip().lower())
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or not all(math.isfinite(n) and n > 0 for n in nums):
        raise UsageError(f"--aspect {text!r}: write W:H with positive numbers, e.g. 16:9, 2.39:1 or 1.78")
    ratio = nums[0] / nums[1] if len(nums) == 2 else nums[0]
    lo, hi = ASPECT_RANGE
    if not lo <= ratio <= hi:
        raise UsageError(f"--aspect {text!r} is {ratio:.4g}:1: give an aspect from 1:10 to 10:1")
    return ratio


def parse_pad(text: str, flag: str = "--pad") -> tuple[int, int, int, int]:
    """``"L,T,R,B"`` -> four pixel counts from 0 to ``MAX_SIDE``, at least one above 0."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise UsageError(f"{flag} {text!r} is not LEFT,TOP,RIGHT,BOTTOM: give four whole numbers of pixels, "
                         "e.g. 96,0,96,0")
    if min(vals) < 0 or max(vals) > MAX_SIDE:
        raise UsageError(f"{flag} {text!r}: each side must be from 0 to {MAX_SIDE} pixels")
    if not any(vals):
        raise UsageError(f"{flag} {text!r} is zero on every side: give the pixels to add, e.g. 96,0,96,0")
    return vals  # type: ignore[return-value]


def parse_anchor(text: str) -> tuple[float, float]:
    """``--anchor``: a name of :data:`ANCHORS` or ``"X,Y"`` fractions in [0, 1] -> ``(fx, fy)``."""
    name = str(text).strip().lower()
    if name in ANCHORS:
        return ANCHORS[name]
    try:
        fx, fy = (float(v) for v in name.split(","))
    except ValueError:
        fx = fy = math.nan
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):  # nan fails too
        raise UsageError(f"--anchor {text!r}: use center, left, right, top, bottom, top-left, top-right, "
                         "bottom-left, bottom-right, or X,Y fractions from 0 to 1")
    return fx, fy
