"""The inpainting pipeline: decode -> masks -> flow -> propagation -> fill -> paste back -> encode.

One function, :func:`inpaint`, owns the whole run; the CLI only parses options into an
:class:`InpaintOptions`. Everything streams through temporal windows, so memory is set by
the resolution and the window length, never by the video length:

* frames are decoded one at a time and queued until a window of ``window + lookahead``
  frames is ready;
* each frame is also reduced to the processing size (at most ``max_size`` pixels on the
  long side); flow, propagation and filling run there;
* pair flows are computed once per pair of neighbouring frames (only where one of the two
  has a hole) and cached while the pair is inside the current window;
* the first ``window`` frames are completed, pasted back into the full-resolution frames
  (only pixels inside the dilated mask change) and encoded; the ``lookahead`` frames are
  processed again as the start of the next window, which also receives the last
  completed frame, so propagation continues across window borders.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tsam_cli import hooks
from tsam_cli.core.canvas import Canvas, plan_canvas
from tsam_cli.core.complete import Before, ClassicalFill, GeneratorFill, Window, complete_window
from tsam_cli.core.model_fill import load_model_runner
from tsam_cli.core.propagate import TeleaFiller, make_filler
from tsam_cli.core.shots import is_cut
from tsam_cli.device import resolve_device, usable_cpus
from tsam_cli.errors import STOP_SIGNALS, signal_number
from tsam_cli.flow.beyond import hold_still_beyond
from tsam_cli.flow.estimate import make_estimator
from tsam_cli.flow.pair import PairFlow, pair_flow, still_pair_flow
from tsam_cli.flow.warp import bounding_box, resized_part
from tsam_cli.media import VIDEO_OUT_SUFFIXES, OutputTarget, check_complete, iter_frames, open_writer, probe
from tsam_cli.media.masks import MaskSpec, MaskStream, parse_box
from tsam_cli.models import MODEL_CHOICES
from tsam_cli.options import InpaintOptions, OutpaintOptions
from tsam_cli.ui import NullReporter


@dataclass
class InpaintReport:
    """What a run did: sizes, counts, per-stage seconds, warnings and notes."""

    output: Path
    n_frames: int
    size: tuple[int, int]
    proc_size: tuple[int, int]
    fps: float
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def processing_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """Largest size with the same aspect whose long side is at most ``max_size`` (never upscales)."""
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass
class _Item:
    """One frame in the window queue."""

    index: int
    full: np.ndarray  # (H, W, 3) uint8 RGB, full resolution
    pts: int | None
    mask: np.ndarray  # (H, W) bool, full resolution, dilated; True = hole
    small: np.ndarray  # (h, w, 3) uint8, processing resolution
    hole: np.ndarray  # (h, w) bool, processing resolution; any covered pixel is a hole
    outside: np.ndarray | None = None  # (h, w) bool, outpainting: True = no picture there (part of hole)


def _reduce(item_full: np.ndarray, mask: np.ndarray, proc: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-res frame + mask -> processing-res frame + hole (a pixel touching the mask is a hole)."""
    import cv2

    if (item_full.shape[1], item_full.shape[0]) == proc:
        return item_full, mask
    return cv2.resize(item_full, proc, interpolation=cv2.INTER_AREA), _reduce_mask(mask, proc)


def _reduce_mask(mask: np.ndarray, proc: tuple[int, int]) -> np.ndarray:
    """``(H, W) bool`` -> ``(h, w) bool`` at ``proc = (w, h)``: True where any covered pixel is True."""
    import cv2

    if (mask.shape[1], mask.shape[0]) == proc:
        return mask
    (H, W), (w, h) = mask.shape, proc
    if H % h == 0 and W % w == 0:  # whole blocks (1080p -> 540p, 4K): any pixel of each block, exactly
        fy, fx = H // h, W // w  # what INTER_AREA's block mean > 0 says, without a float copy of the frame;
        # OR-ing the fy x fx strided views is 10-20x faster than reshape(h, fy, w, fx).any(axis=(1, 3))
        out = np.zeros((h, w), bool)
        for dy in range(fy):
            for dx in range(fx):
                out |= mask[dy::fy, dx::fx]
        return out
    return cv2.resize(mask.astype(np.float32), proc, interpolation=cv2.INTER_AREA) > 0


def paste_back(full: np.ndarray, mask: np.ndarray, completed_small: np.ndarray) -> np.ndarray:
    """Put the completed pixels back into the full-resolution frame, inside ``mask`` only.

    Args:
        full: ``(H, W, 3) uint8`` original frame.
        mask: ``(H, W) bool``, True = hole (dilated).
        completed_small: ``(h, w, 3) uint8`` completed frame at processing resolution.
    Returns:
        ``(H, W, 3) uint8``, equal to ``full`` outside ``mask``.
    """
    import cv2

    out = full.copy()
    box = bounding_box(mask)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    h, w = full.shape[:2]
    if completed_small.shape[:2] == (h, w):
        up = completed_small[y0:y1, x0:x1]
    else:  # only the mask's box is upscaled, each pixel as upscaling the whole frame gives it
        part, (ay, ax) = resized_part(completed_small, (w, h), box, cv2.INTER_CUBIC)
        up = part[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
    inside = mask[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = up[inside]
    return out


def inpaint(input_path: str | os.PathLike, output_path: str | os.PathLike, opts: InpaintOptions,
            reporter=None, model=None) -> InpaintReport:
    """Remove the masked region from a video; write the result atomically to ``output_path``.

    ``input_path`` is a video file or a folder of frames; ``output_path`` a ``.mp4/.mov/.mkv``
    file or a folder (PNG frames). ``model``: a generator already loaded
    (:func:`~tsam_cli.core.model_fill.load_model_runner`, e.g. once for a whole batch); None
    loads what ``opts.model`` names. Mask making (``--remove``) and ``--preview`` are composed
    above this stage (:mod:`tsam_cli.api`). Raises :class:`tsam_cli.errors.TsamError`
    subclasses for every user mistake; nothing is left at ``output_path`` when it raises.
    """
    rep = reporter or NullReporter()
    state: dict = {}
    try:
        return _inpaint(Path(input_path), Path(output_path), opts, rep, state, model)
    except STOP_SIGNALS as exc:  # after the target closed: the message must say the output is complete
        target = state.get("target")
        if target is not None and target.committed:
            raise target.interrupted(signal_number(exc)) from None
        raise
    finally:
        rep.stop()  # also when a check fails half-way through a progress bar


def outpaint(input_path: str | os.PathLike, output_path: str | os.PathLike, opts: OutpaintOptions,
             reporter=None, model=None) -> InpaintReport:
    """Widen the frames of a video (``opts``: ``aspect``/``size``/``pad``, ``anchor``,
    ``fill_borders``, and any inpainting option) and fill the new area: :func:`inpaint` with
    :class:`OutpaintOptions`, the same window loop, each decoded frame and mask placed on the
    canvas (:class:`~tsam_cli.core.canvas.Canvas`) before it is reduced; the new area is a hole,
    and the input's pixels are written bit-exact where they are placed."""
    return inpaint(input_path, output_path, opts, reporter, model)


def protected_paths(inp: Path, opts: InpaintOptions) -> list[tuple[str, Path]]:
    """Every path this run reads, labelled: the output may never replace or contain one of them."""
    paths = [("the input", inp), *opts.protected]
    if opts.mask:
        paths.append(("the mask", Path(opts.mask)))
    if opts.model not in MODEL_CHOICES:
        paths.append(("the weight file", Path(opts.model)))
    return paths


def _inpaint(inp: Path, out: Path, opts: InpaintOptions, rep, state: dict, model) -> InpaintReport:
    t_start = time.perf_counter()
    opts.validate()
    if opts.preview or opts.remove:  # a caller's mistake, not a user's: these are composed above
        raise ValueError("preview and remove are composed by tsam_cli.api.inpaint, not by the pipeline")
    box = parse_box(opts.box) if isinstance(opts.box, str) else opts.box
    with rep.timed("probe"):
        info = probe(inp, fps=opts.fps)
    canvas = _canvas(info, out, opts, rep) if isinstance(opts, OutpaintOptions) else None
    geo = _geometry(info, canvas)
    with OutputTarget(out, protected_paths(inp, opts), opts.overwrite) as target:
        state["target"] = target
        if opts.device != "auto":  # validated now; the classical path itself runs on the CPU
            resolve_device(opts.device)
        fill = make_fill(opts, rep, model)  # before the mask pass: missing weights fail fast
        with rep.timed("mask check"):
            masks = _mask_stream(info, opts, box, rep, optional=canvas is not None)
        writer = open_writer(target.tmp, geo.width, geo.height, info.fps, kind=target.kind, time_base=info.time_base,
                             audio_from=None if info.is_folder else info.path,
                             lossless=opts.lossless, crf=opts.crf, suffix=out.suffix, meta=geo)
        with writer:
            n_done = _run_windows(info, masks, writer, fill, opts, rep, canvas)
        rep.stop()
        check_complete(info, n_done, opts.allow_partial, rep)
        for note in writer.notes:
            rep.warn(note)
        proc = processing_size(geo.width, geo.height, opts.max_size)
        report = InpaintReport(out, n_done, (geo.width, geo.height), proc, float(info.fps),
                               time.perf_counter() - t_start, dict(rep.timings), list(rep.warnings),
                               [*(canvas.notes if canvas else ()), *writer.notes])
        target.commit()
    return report


def _mask_stream(info, opts: InpaintOptions, box, rep, optional: bool = False) -> MaskStream | None:
    """The user's masks (``--mask``/``--box``), checked; None when ``optional`` and none given."""
    if optional and not opts.mask and box is None:
        return None
    return MaskStream(
        MaskSpec(Path(opts.mask) if opts.mask else None, box, opts.invert_mask, opts.dilate, opts.mask_threshold),
        info.width, info.height, info.n_frames, rep, rotation=info.rotation, fps=float(info.fps),
    )


def _canvas(info, out: Path, opts: OutpaintOptions, rep) -> Canvas:
    """The outpainting canvas for this input and output (even sides for a lossy H.264 file)."""
    even = not opts.lossless and out.suffix.lower() in VIDEO_OUT_SUFFIXES
    canvas = plan_canvas(info, opts, even=even)
    rep.info(canvas.describe(info.sample_aspect_ratio, info.rotation))
    for note in canvas.notes:
        rep.info(note)
    return canvas


def _geometry(info, canvas: Canvas | None):
    """``info`` with the output's frame size (the canvas's when outpainting): what the writer
    and the processing size are planned from. The input's metadata (rotation, sample aspect
    ratio, colour) is kept; ``notes`` stays the same list, so what reading adds is reported."""
    if canvas is None:
        return info
    return replace(info, width=canvas.size[0], height=canvas.size[1])


def make_fill(opts: InpaintOptions, rep, runner=None):
    """The filler of what propagation cannot reach: the generator when ``--model`` names one
    (or ``runner``, a model loaded once for many runs), else the classical filler."""
    runner = runner if runner is not None else load_model_runner(opts, rep)
    if runner is not None:
        return GeneratorFill(runner)
    # per-frame filling without propagation stays Telea: a texture fill re-made each frame flickers
    filler = make_filler(opts.filler, opts.threads or usable_cpus()) if opts.propagation else TeleaFiller()
    return ClassicalFill(filler, rep)


def _plan(info, opts: InpaintOptions, rep) -> tuple[tuple[int, int], int, int, bool]:
    """Processing size, window, lookahead and full-resolution flag for this video (``info``:
    its output geometry, :func:`_geometry`)."""
    proc = processing_size(info.width, info.height, opts.max_size)
    if proc != (info.width, info.height):
        rep.info(f"processing at {proc[0]}x{proc[1]} (--max-size {opts.max_size}); "
                 f"filled pixels are pasted back into the {info.width}x{info.height} frames")
    window, lookahead = opts.window, opts.lookahead
    full_res = opts.full_res and opts.propagation and proc != (info.width, info.height)
    if full_res:  # same pixel budget per window as at the processing size
        ratio = proc[0] * proc[1] / (info.width * info.height)
        window, lookahead = max(4, round(window * ratio)), max(2, round(lookahead * ratio))
        rep.info(f"propagating at full resolution {info.width}x{info.height}: windows of {window} + {lookahead} frames")
    return proc, window, lookahead, full_res


def _windows(info, masks, proc, window: int, lookahead: int, rep, canvas: Canvas | None = None):
    """Decode frames + masks into a queue of at most ``window + lookahead`` :class:`_Item`;
    yield ``(items, n_out)`` each time a window is ready: the first ``n_out`` items are
    final after this window (all of them at the end of the video), the rest are lookahead
    and come again at the start of the next window. ``masks``: None = no user mask (outpainting
    only); ``canvas``: place frames and masks on it first (outpainting)."""
    frames, mask_iter = iter(iter_frames(info)), iter(masks if masks is not None else ())
    queue: deque[_Item] = deque()
    eof, index = False, 0
    while True:
        while not eof and len(queue) < window + lookahead:
            with rep.timed("decode"):
                fr = next(frames, None)
            if fr is None:
                eof = True
                break
            mask = next(mask_iter, None)
            if mask is None and canvas is None:  # decoder gave more frames than the container announced
                mask = np.zeros((info.height, info.width), bool)
            full, outside = fr.rgb, None
            if canvas is not None:  # outpainting: the input placed on the canvas, the new area a hole
                with rep.timed("place"):
                    full, outside = canvas.place(fr.rgb), canvas.outside(fr.rgb)
                    mask = canvas.with_mask(outside, mask)
            with rep.timed("resize"):
                small, hole = _reduce(full, mask, proc)
                outside = None if outside is None else _reduce_mask(outside, proc)
            queue.append(_Item(index, full, fr.pts, mask, small, hole, outside))
            index += 1
        if not queue:
            return
        items = list(queue)
        n_out = len(items) if eof else min(window, len(items))
        yield items, n_out
        del items  # else the finished window's frames stay alive while the next one is decoded
        for _ in range(n_out):
            queue.popleft()


@dataclass
class _Written:
    """The last frame written, which the next window continues from."""

    item: _Item
    completed: np.ndarray  # (h, w, 3) uint8 at the completion size
    hops: np.ndarray  # (h, w) float32


def _run_windows(info, masks, writer, fill, opts: InpaintOptions, rep, canvas: Canvas | None = None) -> int:
    """Complete and write every frame, window by window, in the paper's stages: flow (estimated,
    completed in the holes, validity), propagation, fill, then paste back and encode. Returns
    the number of frames written. ``canvas``: outpainting (frames placed on it first)."""
    proc, window, lookahead, full_res = _plan(_geometry(info, canvas), opts, rep)
    flows = _FlowPool(opts.flow, opts.delta, opts.propagation or fill.uses_flow, opts.threads or usable_cpus())
    try:
        return _complete_all(info, masks, writer, fill, flows, (proc, window, lookahead, full_res, canvas), opts, rep)
    finally:
        flows.close()


def _complete_all(info, masks, writer, fill, flows: _FlowPool, plan: tuple, opts: InpaintOptions, rep) -> int:
    """The window loop of :func:`_run_windows`; returns the number of frames written."""
    proc, window, lookahead, full_res, canvas = plan
    rep.start("inpaint", info.n_frames)
    hooks.pause_point("writing")
    cache: dict[int, PairFlow | None] = {}  # pair (a, a + 1) by a, while it is inside the window
    cuts: set[int] = set()  # frame indices a with a shot cut between a and a + 1
    last: _Written | None = None
    n_done = 0
    for items, n_out in _windows(info, masks, proc, window, lookahead, rep, canvas):
        _warn_fully_masked(items[:n_out], rep)
        with rep.timed("flow"):
            _window_flows(([last.item] if last else []) + items, cache, cuts, flows, rep)
        fill.new_window(1 + sum(it.index in cuts for it in items[:-1]))
        win = _window(items, cache, last, n_out, proc if full_res else None)
        completed, hops = complete_window(win, fill, opts.propagation, rep)
        n_done += _paste_and_encode(items[:n_out], completed, writer, rep)
        # copies: a view would keep this whole window's arrays alive into the next one
        last = _Written(items[n_out - 1], completed[n_out - 1].copy(), hops[n_out - 1].copy())
        del completed, hops, items, win
        for key in [k for k in cache if k < last.item.index]:
            del cache[key]
    return n_done


def _window_flows(chain: list[_Item], cache: dict, cuts: set[int], flows: _FlowPool, rep) -> None:
    """Pair flows of neighbouring frames of ``chain`` not computed yet, into ``cache``: the
    pairs are independent, so they run on the pool's threads; cuts are recorded in frame order."""
    todo = [(a, b) for a, b in zip(chain[:-1], chain[1:], strict=True) if a.index not in cache]
    for (a, b), (flow, cut) in zip(todo, flows.map(todo), strict=True):
        if cut:
            rep.info(f"shot cut between frames {a.index} and {b.index}: nothing is copied across it")
            cuts.add(a.index)
        cache[a.index] = flow


class _FlowPool:
    """Computes pair flows on ``threads`` threads. Each pair's result depends on its two frames
    only, so any number of threads gives the same flows (OpenCV's DIS and numpy release the GIL).
    Each thread has its own estimator: an OpenCV DIS object is not shared between threads."""

    def __init__(self, method: str, delta: float, need_flow: bool, threads: int) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.method, self.delta, self.need_flow = method, delta, need_flow
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tsam-flow") if threads > 1 else None

    def map(self, pairs: list[tuple[_Item, _Item]]) -> list[tuple[PairFlow | None, bool]]:
        if self._pool is None or len(pairs) < 2:
            return [self._one(pair) for pair in pairs]
        return list(self._pool.map(self._one, pairs))

    def _one(self, pair: tuple[_Item, _Item]) -> tuple[PairFlow | None, bool]:
        if not hasattr(self._local, "estimator"):
            self._local.estimator = make_estimator(self.method)
        return _pair_flow(*pair, self._local.estimator, self.delta, self.need_flow)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _window(items: list[_Item], cache: dict, last: _Written | None, n_keep: int,
            full_res_from: tuple[int, int] | None) -> Window:
    """The window to complete: frames and holes at the processing size (full size with
    ``full_res_from``), its flows, and the frame written before it when a flow links the two."""
    full = full_res_from is not None
    before_flow = cache.get(last.item.index) if last is not None else None
    before = Before(last.completed, last.hops, before_flow) if before_flow is not None else None
    return Window(np.stack([it.full if full else it.small for it in items]),
                  np.stack([it.mask if full else it.hole for it in items]),
                  [cache.get(it.index) for it in items[:-1]], before, n_keep, full_res_from)


def _paste_and_encode(items: list[_Item], completed: np.ndarray, writer, rep) -> int:
    """Paste the completed pixels into the full frames (inside the mask only) and encode them."""
    for it, done in zip(items, completed, strict=False):
        with rep.timed("paste"):
            result = paste_back(it.full, it.mask, done) if it.hole.any() else it.full
        with rep.timed("encode"):
            writer.write(result, it.pts)
        rep.advance("inpaint")
    return len(items)


def _warn_fully_masked(items, rep) -> None:
    """Say which frames are masked everywhere: they are filled from their neighbours as if
    nothing moved (:func:`~tsam_cli.flow.still_pair_flow`), which may need a look."""
    whole = [it.index for it in items if it.hole.all()]
    if whole:
        rep.warn(f"frame {whole[0]}{f' and {len(whole) - 1} more' if len(whole) > 1 else ''} masked everywhere: "
                 "filled from the neighbouring frames as if nothing moved there; check the result")


def _pair_flow(a: _Item, b: _Item, estimator, delta: float, need_flow: bool) -> tuple[PairFlow | None, bool]:
    """``(flow, cut)`` between neighbouring frames ``a`` and ``b``: the flow is None where
    nothing may propagate (neither has a hole, flow is not needed, or a shot cut lies between
    them: then ``cut`` is True)."""
    if not need_flow or not (a.hole.any() or b.hole.any()):
        return None, False
    if a.hole.all() or b.hole.all():  # nothing of that frame to measure motion or cuts on
        return still_pair_flow(a.hole.shape), False
    beyond = None if a.outside is None or b.outside is None else (a.outside, b.outside)
    flow = pair_flow(estimator, a.small, b.small, a.hole, b.hole, delta, outside=beyond)
    if is_cut(a.small, b.small, a.hole, b.hole, flow.valid_f):
        return None, True
    if beyond is not None:  # outpainting: past a still edge nothing moves
        flow = hold_still_beyond(flow, a.small, b.small, a.hole, b.hole, a.outside, b.outside)
    return flow, False
