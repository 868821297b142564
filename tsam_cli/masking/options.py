"""The options of ``tsam mask text|static|track`` and ``tsam preview``: defaults, help, ranges, validation.

One dataclass per command, built like :class:`tsam_cli.options.InpaintOptions`: each field
carries its flag and help text, the Typer command is generated from it
(:func:`tsam_cli.options.cli_parameters`) and :meth:`validate` is the one place ranges are
checked. Standard library only: ``tsam --help`` imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tsam_cli.errors import UsageError
from tsam_cli.options import _check_choice, _check_range, _opt

#: ``--region`` names; anything else must be ``x,y,w,h``
REGIONS = ("bottom", "top", "all")
#: ``--remove`` names of ``tsam inpaint`` (the detector to run first)
REMOVE_KINDS = ("text", "static")
#: ``tsam mask track --flow`` names accepted (tsam_cli.flow.make_estimator)
TRACK_FLOWS = ("dis", "dis-fast", "dis-ultrafast")


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
    # DB's own box growth (unclip ratio 0.8, UNCLIP_RATIO in masking/text.py) hugs the glyphs; 4 px
    # more covers the black outline, anti-aliasing and the blur of compression around burned-in
    # letters at 240p-1080p
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


@dataclass
class TrackOptions(OutputFlags):
    """Options of ``tsam mask track``; :meth:`validate` checks every range."""

    box: str | None = _opt(None, "--box", "The object on the seed frame, x,y,w,h in pixels of the video as shown.",
                            cli_type=str | None)
    # several --seed MASK@N: each a mask drawn on frame N; tracked from each seed to halfway
    # to its neighbours (the nearer seed wins), so a second seed corrects a slipped track
    seed: str | list | None = _opt(None, "--seed", "Or a mask image of the object on the seed frame (white = "
                                   "object; a mask video/folder: its frame --frame). Repeat as MASK@N to give "
                                   "masks on several frames (N = frame): each frame follows the nearest seed.",
                                   cli_type=list[Path] | None, metavar="MASK[@N]")
    # the first frame is where most users draw
    frame: int = _opt(0, "--frame", "The frame the box/seed mask is drawn on (0 = first); tracked forward and back.")
    # 480 px keeps flow + re-fit near 0.1-0.3 s/frame on 2 cores; masks are upscaled smoothly
    max_size: int = _opt(480, "--max-size", "Track at most this many pixels on the long side.")
    # medium DIS: the fast presets lose thin parts (bike frames, limbs)
    flow: str = _opt("dis", "--flow", "Optical flow: dis, dis-fast, dis-ultrafast.")
    # own: per-pixel flow, but pixels that move like the background, disagree forward/backward
    # or stray from the object's own motion (occluders, background seen through) take that
    # motion; object: the whole mask moves by one shift; flow: every pixel follows the flow
    motion: str = _opt("own", "--motion", "How the mask moves: own (per pixel, occlusion-aware), object (one "
                       "shift per frame) or flow (per pixel, raw).")
    # re-fit each frame; measured in docs/benchmarks.md ("Mask tracking")
    refine: bool = _opt(True, "--no-refine", "Do not re-fit the mask to the object each frame.",
                        invert=True)
    # learned: colour + a small net trained on the seed frame (tsam_cli.masking.appearance);
    # grabcut: GrabCut on this frame's colours, the former default: faster (0.10 / 0.18 s/frame vs
    # 0.55 / 0.35) but mean IoU 0.197 / 0.477 vs learned's 0.397 / 0.745 (bmx-trees / schoolgirls,
    # docs/benchmarks.md "Mask tracking and preview")
    refit: str = _opt("learned", "--refit", "How the mask is re-fitted: learned (seed-frame appearance) or grabcut.")
    # 100 steps: the outline mode measured 0.397 / 0.765 against 150's 0.403 / 0.767 (bmx-trees /
    # schoolgirls IoU); the removal composites, mean of three training seeds, 24.61 dB against
    # 24.49 (articulated) and 22.87 against 23.09 (rigid), while one seed alone swings a case by
    # up to 4.5 dB; a third less of the seed frame's training (docs/benchmarks.md)
    net_steps: int = _opt(100, "--net-steps", "Training steps of the appearance net on the seed frame "
                          "(0 = colour only; --refit learned).")
    # 0: a fixed seed makes a run repeatable. The training is short, so the seed matters: on the
    # removal composites one case's result moved by up to 4.5 dB between seeds 0, 1 and 2
    # (docs/benchmarks.md, "The tracker's CPU"); another seed is a cheap second try where it slips
    net_seed: int = _opt(0, "--net-seed", "Random seed of the appearance net's training: the same seed gives the "
                         "same masks; another may track better where the mask slipped (--refit learned).")
    # every 5 frames, 5 steps on the frame's far background (OnAVOS-style negatives)
    update_every: int = _opt(5, "--update-every", "Teach the appearance net the new background every N frames "
                             "(0 = never; --refit learned).")
    # 3 graph-cut rounds: GrabCut's energy barely changes after the third
    iterations: int = _opt(3, "--iterations", "GrabCut rounds per frame.")
    # 'probably background' ring: a few px more than the flow's error at object borders (DIS
    # matches 8x8 patches, so vectors within ~4 px of a border mix both sides)
    ring: int = _opt(12, "--ring", "Width of the band around the carried mask GrabCut may grow into (tracking px).")
    # deeper than this inside the carried mask is taken as certainly the object
    core: int = _opt(6, "--core", "Pixels deeper than this inside the carried mask are kept for sure (tracking px).")
    # GrabCut's area may change by at most this factor vs the carried mask, else it collapsed
    area_change: float = _opt(1.6, "--area-change", "Largest area change GrabCut may make in one frame (factor).")
    # ... and must overlap the carried mask at least this much (IoU)
    min_agreement: float = _opt(0.5, "--min-agreement", "Least IoU between GrabCut's mask and the carried one.")
    # below this many tracking pixels the object is gone (left the frame or hidden)
    min_area: int = _opt(12, "--min-area", "The object is lost (empty masks from there on) below this many pixels.")
    # removal (default): the mask feeds tsam inpaint, where a pixel of the object the mask misses
    # stays in the video as a ghost and an extra pixel is only filled with background, so the
    # default is recall first (the box's unlike-the-background pixels on the seed frame, moving
    # and object-like pixels regrown each frame, a margin that widens where parts move fast;
    # benchmarks/removal_notes.md). --tight: the object's outline, the tracker as it was before
    tight: bool = _opt(False, "--tight", "Follow the object's outline instead of a recall-first mask for removal "
                       "(which also takes limbs, thin parts and a margin that widens where they move fast).")
    # removal mode: a Siamese box tracker (NanoTrack, shipped) keeps the mask inside the object's
    # box, so a car or a person passing by is not carried on with it (an 80-frame composite: the
    # mask's area 6.9x the person's without it, 1.6x with it; docs/benchmarks.md)
    box_guard: bool = _opt(True, "--no-box-guard", "Removal mode: do not keep the mask inside the box a learned "
                           "box tracker follows (NanoTrack, shipped).", invert=True)
    # the saved mask is the object; tsam inpaint grows it by its own --dilate (4) again
    dilate: int = _opt(0, "--dilate", "Grow the saved masks by this many pixels.")
    invert_seed: bool = _opt(False, "--invert-seed", "Black/zero = object in the seed mask.")

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the option and its range."""
        if self.box is None and not self.seed:
            raise UsageError("no object given: pass --box x,y,w,h or --seed MASK_IMAGE (drawn on --frame N)")
        for name, value, lo, hi in [
            ("--frame", self.frame, 0, 10**9), ("--max-size", self.max_size, 32, 4096),
            ("--iterations", self.iterations, 1, 20), ("--ring", self.ring, 1, 200), ("--core", self.core, 0, 200),
            ("--area-change", self.area_change, 1.0, 100.0), ("--min-agreement", self.min_agreement, 0.0, 1.0),
            ("--min-area", self.min_area, 1, 10**7), ("--dilate", self.dilate, 0, 256),
            ("--net-steps", self.net_steps, 0, 100000), ("--update-every", self.update_every, 0, 10**6),
            ("--net-seed", self.net_seed, 0, 2**31 - 1),
        ]:
            _check_range(name, value, lo, hi)
        _check_choice("--flow", self.flow, TRACK_FLOWS)
        _check_choice("--motion", self.motion, ("own", "object", "flow"))
        seed_frames(self)
        _check_choice("--refit", self.refit, ("learned", "grabcut"))


@dataclass
class PreviewOptions(OutputFlags):
    """Options of ``tsam preview``; :meth:`validate` checks every range."""

    mask: str | None = _opt(None, "--mask", "Mask to overlay: video, folder of images or one image (white = remove).",
                            short="-m", cli_type=Path | None)
    box: str | None = _opt(None, "--box", "Rectangle to overlay, x,y,w,h in video pixels (alone or with --mask).",
                           cli_type=str | None)
    result: str | None = _opt(None, "--result", "A finished result to compare with VIDEO (side by side, or --wipe).",
                              cli_type=Path | None)
    wipe: bool = _opt(False, "--wipe", "With --result: one frame, result left of a moving border, input right.")
    # the same default as tsam inpaint, so the tint shows what inpaint will really fill
    dilate: int = _opt(4, "--dilate", "Grow the mask by this many pixels before drawing (as inpaint does).")
    invert_mask: bool = _opt(False, "--invert-mask", "Black/zero = remove instead.")
    # tsam mask track writes MASK.confidence.json beside its masks; found there without this option
    confidence: str | None = _opt(None, "--confidence", "Per-frame confidence of a tracked mask (default: "
                                  "MASK.confidence.json when it exists): frames below its threshold get a red "
                                  "border and 'low confidence'.", cli_type=Path | None)
    mask_threshold: int | None = _opt(None, "--mask-threshold", "As tsam inpaint --mask-threshold.",
                                      cli_type=int | None)
    # 0.45: the content under the tint stays readable and the tint is visible on any colour
    opacity: float = _opt(0.45, "--opacity", "Opacity of the tint, 0-1.")
    # 2 px outline is visible at 240p and still thin at 1080p
    outline: int = _opt(2, "--outline", "Width of the mask's outline in pixels (0 = none).")
    # 3 s at 25 fps: slow enough to look at both sides
    wipe_period: int = _opt(75, "--wipe-period", "Frames for the wipe border to cross and come back.")
    # 23: x264's default quality, a preview need not be visually lossless
    crf: int = _opt(23, "--crf", "H.264 quality of the preview (0-51, lower is better).")

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the option and the fix."""
        if self.result is None and self.mask is None and self.box is None:
            raise UsageError("nothing to preview: pass --mask/--box to overlay a mask, or --result OUT to compare")
        if self.result is not None and (self.mask is not None or self.box is not None):
            raise UsageError("--result compares a finished result; --mask/--box overlay a mask: give one or the other")
        if self.confidence is not None and self.result is not None:
            raise UsageError("--confidence marks frames of a mask overlay: give it with --mask, not with --result")
        if self.wipe and self.result is None:
            raise UsageError("--wipe compares input and result: give --result OUT too")
        for name, value, lo, hi in [("--dilate", self.dilate, 0, 256), ("--opacity", self.opacity, 0.0, 1.0),
                                    ("--outline", self.outline, 0, 64), ("--wipe-period", self.wipe_period, 2, 10**6),
                                    ("--crf", self.crf, 0, 51)]:
            _check_range(name, value, lo, hi)


def parse_seed(text: str, frame: int) -> tuple[str, int]:
    """One ``--seed`` value -> ``(mask path, frame)``: ``MASK@N`` is ``MASK`` on frame ``N``; a
    plain ``MASK`` (or a path that exists as written, ``@`` and all) is on ``frame`` (``--frame``)."""
    text = str(text)
    path, at, tail = text.rpartition("@")
    if not at or Path(text).exists() or not path:
        return text, frame
    if not tail.isdigit():
        raise UsageError(f"--seed {text!r}: write MASK@N with N a frame number (0 = first), e.g. fix.png@40")
    return path, int(tail)


def seed_frames(opts: TrackOptions) -> list[tuple[str, int]]:
    """The ``--seed`` masks of ``opts`` as ``(path, frame)`` pairs in frame order (empty without
    ``--seed``). Raises :class:`UsageError` when two of them are on the same frame."""
    values = [] if opts.seed is None else [opts.seed] if isinstance(opts.seed, (str, Path)) else list(opts.seed)
    pairs = sorted((parse_seed(v, opts.frame) for v in values), key=lambda p: p[1])
    for (a, fa), (b, fb) in zip(pairs, pairs[1:], strict=False):
        if fa == fb:
            raise UsageError(f"--seed {a} and --seed {b} are both on frame {fa}: give one mask per frame "
                             "(MASK@N; a plain MASK is on --frame)")
    return pairs


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
