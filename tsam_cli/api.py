"""tsam's Python API: load a model once, inpaint videos (files or frames in memory), make masks.

The command line is a thin layer over these functions; they take the same options (the
fields of :class:`~tsam_cli.options.InpaintOptions`, validated the same way) and follow the
same safety rules (outputs checked, written aside and swapped in, inputs never replaced)::

    import tsam_cli as tsam

    model = tsam.load_model("compact")                    # "auto", "classical", "full" or a file
    tsam.inpaint("in.mp4", mask="mask.mp4", output="out.mp4", model=model)
    frames = tsam.inpaint(frames, mask=masks, model=model)  # (T, H, W, 3) uint8 in and out
    tsam.outpaint("in.mp4", output="wide.mp4", aspect="16:9")  # widen, fill the new area
    masks = tsam.make_mask("static", "in.mp4")              # (T, H, W) bool, True = remove

Errors are :class:`tsam_cli.errors.TsamError` subclasses with a one-line message (the CLI
prints them and exits with their ``exit_code``). This module sits above both inpainting
(:mod:`tsam_cli.core`) and mask making (:mod:`tsam_cli.masking`) and composes them
(``remove=`` finds what to remove first, ``preview=True`` writes the mask overlay instead).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from tsam_cli.errors import UsageError
from tsam_cli.options import InpaintOptions, OutpaintOptions

__all__ = ["Model", "inpaint", "load_model", "make_mask", "outpaint"]

#: what a video may be given as: a path (file or frame folder) or frames in memory
Frames = np.ndarray | Iterable[np.ndarray]


@dataclass
class Model:
    """A filler of what propagation cannot reach, loaded once and used for many videos.

    ``name`` is what was asked for; ``runner`` the loaded generator
    (:class:`~tsam_cli.core.model_fill.ModelRunner`), or None for the classical filler."""

    name: str
    runner: object | None
    device: str


def load_model(name_or_path: str = "auto", device: str = "auto", reporter=None, **options) -> Model:
    """Load the filler ``name_or_path`` names: ``auto`` (the network on a CUDA GPU, else the
    classical filler), ``classical``, ``compact``, ``full`` or a weight file. ``options``:
    the generator's options of :class:`~tsam_cli.options.InpaintOptions` (``model_window``,
    ``model_stride``, ``precision``, ``use_flow``). Raises WeightsError / UsageError."""
    from tsam_cli.core.model_fill import load_model_runner
    from tsam_cli.ui import NullReporter

    opts = _options(dict(options, model=str(name_or_path), device=device))
    runner = load_model_runner(opts, reporter or NullReporter())
    return Model(str(name_or_path), runner, device)


def inpaint(video: str | os.PathLike | Frames, mask: str | os.PathLike | Frames | None = None,
            output: str | os.PathLike | None = None, *, model: Model | str | None = None, reporter=None,
            **options):
    """Fill the masked region of ``video``.

    Args:
        video: a video file or a folder of frames, or frames in memory: ``(T, H, W, 3)``
            uint8 RGB (an array, or a list/iterator of ``(H, W, 3)`` arrays).
        mask: a mask file/folder/image (white = remove), or masks in memory: ``(T, H, W)`` or
            ``(H, W)`` (one for every frame), non-zero/True = remove. May be None with
            ``box=`` or ``remove=``.
        output: where to write the result (``.mp4``/``.mov``/``.mkv`` or a folder of PNGs);
            None returns the frames instead.
        model: a :class:`Model` from :func:`load_model` (load once, inpaint many), or a name
            as ``load_model`` takes; None: ``options["model"]`` or ``auto``.
        options: any field of :class:`~tsam_cli.options.InpaintOptions` (``dilate``, ``box``,
            ``remove``, ``preview``, ``window``, ``overwrite``, ...).
    Returns:
        the :class:`~tsam_cli.core.pipeline.InpaintReport` when ``output`` is given, else the
        completed frames, ``(T, H, W, 3)`` uint8 RGB.
    """
    with ExitStack() as stack:
        video, mask = _as_paths(stack, video, mask)
        if output is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tsam-api-"))) / "out"
            _inpaint_paths(video, folder, dict(options, lossless=True, overwrite=False), mask, model, reporter)
            return _read_frames(folder)
        return _inpaint_paths(video, Path(output), options, mask, model, reporter)


def outpaint(video: str | os.PathLike | Frames, output: str | os.PathLike | None = None, *,
             mask: str | os.PathLike | Frames | None = None, model: Model | str | None = None, reporter=None,
             **options):
    """Widen the frames of ``video`` and fill the new area from what the other frames show.

    Args:
        video, model, reporter: as for :func:`inpaint`.
        output: as for :func:`inpaint`; None returns the frames, ``(T, H', W', 3)`` uint8 RGB.
        mask: optional: something to remove in the same run (as for :func:`inpaint`).
        options: ``aspect="16:9"``, ``size="1920x1080"`` or ``pad="96,0,96,0"`` (one of them),
            ``anchor=``, ``fill_borders="auto"`` or ``"L,T,R,B"``, and any field of
            :class:`~tsam_cli.options.InpaintOptions` (``lossless``, ``window``, ``preview``: the
            canvas with the new area tinted, ...).
    Returns:
        the :class:`~tsam_cli.core.pipeline.InpaintReport` when ``output`` is given, else the frames.
    """
    with ExitStack() as stack:
        video, mask = _as_paths(stack, video, mask)
        if output is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tsam-api-"))) / "out"
            _inpaint_paths(video, folder, dict(options, lossless=True, overwrite=False), mask, model, reporter,
                           OutpaintOptions)
            return _read_frames(folder)
        return _inpaint_paths(video, Path(output), options, mask, model, reporter, OutpaintOptions)


def _inpaint_paths(video: Path, output: Path, options: dict, mask, model, reporter, cls=InpaintOptions):
    """:func:`inpaint` (or :func:`outpaint`: ``cls`` OutpaintOptions) on paths: ``preview``,
    ``remove``, then the pipeline."""
    from tsam_cli.core.pipeline import inpaint as run_pipeline  # OutpaintOptions make it outpaint
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    if mask is not None:
        options = dict(options, mask=str(mask))
    opts = _options(options, cls)
    runner = _runner(model, opts, rep)
    if opts.preview:  # the mask overlay (outpainting: the canvas, new area tinted) only
        return _preview(video, output, opts, rep)
    if opts.remove:  # a detector's mask first, in a temporary file removed afterwards
        from tsam_cli.masking.remove import removal_mask

        with removal_mask(video, output, opts, rep) as with_mask:
            return run_pipeline(video, output, with_mask, rep, model=runner)
    return run_pipeline(video, output, opts, rep, model=runner)


def _runner(model: Model | str | None, opts: InpaintOptions, rep):
    """The loaded generator to use (None: classical, or load what ``opts.model`` names)."""
    if model is None or opts.preview:
        return None  # the pipeline loads what opts.model names
    if isinstance(model, Model):
        # a loaded model is used as it is ("auto" already resolved); its name stays in the
        # options so that a weight file is among the paths the output must never replace
        opts.model = model.name if model.runner is not None else "classical"
        return model.runner
    opts.model = str(model)
    return None


def _preview(video: Path, output: Path, opts: InpaintOptions, rep):
    """``preview=True``: the overlay of the mask inpaint would fill (after ``dilate``)."""
    from tsam_cli.core.pipeline import InpaintReport
    from tsam_cli.masking.preview import preview_of_inpaint

    with rep.timed("preview"):
        if isinstance(opts, OutpaintOptions):
            r = _outpaint_preview(video, output, opts, rep)
        else:
            r = preview_of_inpaint(video, output, opts, rep)
    return InpaintReport(r.output, r.n_frames, r.size, r.size, r.fps, r.seconds, dict(rep.timings),
                         list(rep.warnings), ["--preview: the mask overlay only, nothing was inpainted"])


def _outpaint_preview(video: Path, output: Path, opts: OutpaintOptions, rep):
    """``outpaint(preview=True)``: each frame placed on the canvas, the new area and the mask tinted."""
    from tsam_cli.core.canvas import plan_canvas
    from tsam_cli.masking.preview import preview_of_outpaint
    from tsam_cli.media import VIDEO_OUT_SUFFIXES

    even = output.suffix.lower() in VIDEO_OUT_SUFFIXES  # the preview is always lossy H.264

    def plan(info):
        canvas = plan_canvas(info, opts, even=even)
        rep.info(canvas.describe(info.sample_aspect_ratio, info.rotation))
        return canvas

    return preview_of_outpaint(video, output, opts, plan, rep)


def make_mask(kind: str, video: str | os.PathLike | Frames, output: str | os.PathLike | None = None, *,
              reporter=None, **options):
    """Find what to remove: ``kind`` is ``text``, ``static`` or ``track`` (``box=``/``seed=``
    and ``frame=`` as for ``tsam mask track``). ``options`` are the fields of that command's
    options. Writes the masks to ``output`` (mask video or PNG folder) and returns its summary
    line, or with ``output=None`` returns the masks, ``(T, H, W)`` bool, True = remove."""
    with ExitStack() as stack:
        video, _ = _as_paths(stack, video, None)
        target = output
        if output is None:
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tsam-api-"))) / "masks"
        summary = _make_mask(kind, video, Path(target), options, reporter)
        if output is None:
            return _read_frames(Path(target))[..., 0] > 0
        return summary


def _make_mask(kind: str, video: Path, output: Path, options: dict, reporter) -> str:
    from tsam_cli.masking import make_mask as run_detector
    from tsam_cli.masking.options import StaticMaskOptions, TextMaskOptions
    from tsam_cli.masking.track import TrackOptions, track_video
    from tsam_cli.ui import NullReporter

    classes = {"text": TextMaskOptions, "static": StaticMaskOptions, "track": TrackOptions}
    if kind not in classes:
        raise UsageError(f"mask kind {kind!r} is not known: use text, static or track")
    fps = options.pop("fps", None)
    opts = _options(options, classes[kind])
    rep = reporter or NullReporter()
    if kind == "track":
        return track_video(video, output, opts, reporter=rep, fps=fps).summary()
    return run_detector(kind, video, output, opts, reporter=rep, fps=fps)


def _options(values: dict, cls=InpaintOptions):
    """``cls(**values)``, validated; an unknown name is a UsageError listing the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}: use any of {', '.join(sorted(known))}")
    opts = cls(**values)
    opts.validate()
    return opts


def _as_paths(stack: ExitStack, video, mask) -> tuple[Path, Path | None]:
    """Frames or masks given in memory are written to a temporary folder of PNGs (lossless)
    that the pipeline reads as it reads any frame folder; paths are passed through."""
    if isinstance(video, (str, os.PathLike)):
        vpath = Path(video)
    else:
        vpath = _temp_pngs(stack, _stack_frames(video, "video", 4), "frames")
    if mask is None or isinstance(mask, (str, os.PathLike)):
        return vpath, (Path(mask) if mask is not None else None)
    m = np.asarray(mask)
    if m.ndim not in (2, 3):
        raise UsageError(f"mask of shape {m.shape}: give (T, H, W) or (H, W) masks, non-zero = remove")
    m = (m > 0).astype(np.uint8) * 255
    folder = _temp_pngs(stack, m if m.ndim == 3 else m[None], "masks")
    return vpath, folder if m.ndim == 3 else folder / "00000.png"  # one image: the mask of every frame


def _stack_frames(frames, what: str, ndim: int) -> np.ndarray:
    arr = np.asarray(frames if isinstance(frames, np.ndarray) else list(frames))
    if arr.ndim != ndim or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise UsageError(f"{what} of shape {arr.shape} and type {arr.dtype}: give (T, H, W, 3) uint8 RGB frames")
    return arr


def _temp_pngs(stack: ExitStack, frames: np.ndarray, name: str) -> Path:
    from tsam_cli.media.images import write_png_frames

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tsam-api-"))) / name
    write_png_frames(folder, frames)
    return folder


def _read_frames(folder: Path) -> np.ndarray:
    from tsam_cli.media import iter_frames, probe

    return np.stack([f.rgb for f in iter_frames(probe(folder, fps=25))])

