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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsam_cli import hooks
from tsam_cli.core.flow import PairFlow, make_estimator, pair_flow, still_pair_flow, upscale_pair_flow
from tsam_cli.core.model_fill import (  # noqa: F401 - re-exported: the runner lived here before
    MODEL_NAMES,
    ModelRunner,
    Padder,
    _nullcontext,
    _still,
    load_model_runner,
    window_starts,
    window_weights,
)
from tsam_cli.core.propagate import FILLER_HOPS, ScaledFiller, TeleaFiller, make_filler, propagate
from tsam_cli.core.shots import is_cut
from tsam_cli.device import resolve_device
from tsam_cli.errors import STOP_SIGNALS, signal_number
from tsam_cli.media import OutputTarget, check_complete, iter_frames, open_writer, probe
from tsam_cli.media.masks import MaskSpec, MaskStream, parse_box
from tsam_cli.options import DEFAULT_MAX_SIZE, InpaintOptions  # noqa: F401 - InpaintOptions is part of this module's API
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


def _reduce(item_full: np.ndarray, mask: np.ndarray, proc: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-res frame + mask -> processing-res frame + hole (a pixel touching the mask is a hole)."""
    import cv2

    if (item_full.shape[1], item_full.shape[0]) == proc:
        return item_full, mask
    small = cv2.resize(item_full, proc, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(mask.astype(np.float32), proc, interpolation=cv2.INTER_AREA) > 0
    return small, hole


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

    h, w = full.shape[:2]
    up = completed_small if completed_small.shape[:2] == (h, w) else cv2.resize(
        completed_small, (w, h), interpolation=cv2.INTER_CUBIC
    )
    out = full.copy()
    out[mask] = up[mask]
    return out


def inpaint(input_path: str | os.PathLike, output_path: str | os.PathLike, opts: InpaintOptions,
            reporter=None) -> InpaintReport:
    """Remove the masked region from a video; write the result atomically to ``output_path``.

    ``input_path`` is a video file or a folder of frames; ``output_path`` a ``.mp4/.mov/.mkv``
    file or a folder (PNG frames). Raises :class:`tsam_cli.errors.TsamError` subclasses for
    every user mistake; nothing is left at ``output_path`` when it raises.
    """
    rep = reporter or NullReporter()
    state: dict = {}
    try:
        if opts.remove:  # a detector's mask first, in a temporary file removed afterwards (tsam_cli/masking/remove.py)
            from tsam_cli.masking.remove import removal_mask

            with removal_mask(Path(input_path), Path(output_path), opts, rep) as with_mask:
                return _inpaint(Path(input_path), Path(output_path), with_mask, rep, state)
        return _inpaint(Path(input_path), Path(output_path), opts, rep, state)
    except STOP_SIGNALS as exc:  # after the target closed: the message must say the output is complete
        target = state.get("target")
        if target is not None and target.committed:
            raise target.interrupted(signal_number(exc)) from None
        raise
    finally:
        rep.stop()  # also when a check fails half-way through a progress bar


def protected_paths(inp: Path, opts: InpaintOptions) -> list[tuple[str, Path]]:
    """Every path this run reads, labelled: the output may never replace or contain one of them."""
    paths = [("the input", inp), *opts.protected]
    if opts.mask:
        paths.append(("the mask", Path(opts.mask)))
    if opts.model not in MODEL_NAMES:
        paths.append(("the weight file", Path(opts.model)))
    return paths


def _inpaint(inp: Path, out: Path, opts: InpaintOptions, rep, state: dict) -> InpaintReport:
    t_start = time.perf_counter()
    opts.validate()
    if opts.preview:  # the mask overlay only, nothing inpainted (tsam_cli/masking/preview.py)
        from tsam_cli.masking.preview import inpaint_preview

        return inpaint_preview(inp, out, opts, rep)
    box = parse_box(opts.box) if isinstance(opts.box, str) else opts.box
    with rep.timed("probe"):
        info = probe(inp, fps=opts.fps)
    with OutputTarget(out, protected_paths(inp, opts), opts.overwrite) as target:
        state["target"] = target
        if opts.device != "auto":  # validated now; the classical path itself runs on the CPU
            resolve_device(opts.device)
        runner = load_model_runner(opts, rep)  # before the mask pass: missing weights fail fast
        with rep.timed("mask check"):
            masks = MaskStream(
                MaskSpec(Path(opts.mask) if opts.mask else None, box, opts.invert_mask, opts.dilate, opts.mask_threshold),
                info.width, info.height, info.n_frames, rep, rotation=info.rotation, fps=float(info.fps),
            )
        writer = open_writer(target.tmp, info.width, info.height, info.fps, kind=target.kind, time_base=info.time_base,
                             audio_from=None if info.is_folder else info.path,
                             lossless=opts.lossless, crf=opts.crf, suffix=out.suffix, meta=info)
        with writer:
            n_done = _run_windows(info, masks, writer, runner, opts, rep)
        rep.stop()
        check_complete(info, n_done, opts.allow_partial, rep)
        for note in writer.notes:
            rep.warn(note)
        proc = processing_size(info.width, info.height, opts.max_size)
        report = InpaintReport(out, n_done, (info.width, info.height), proc, float(info.fps),
                               time.perf_counter() - t_start, dict(rep.timings), list(rep.warnings), list(writer.notes))
        target.commit()
    return report


def _plan(info, opts: InpaintOptions, runner, rep) -> tuple[tuple[int, int], int, int, bool]:
    """Processing size, window, lookahead and full-resolution flag for this video."""
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


def _windows(info, masks, proc, window: int, lookahead: int, rep):
    """Decode frames + masks into a queue of at most ``window + lookahead`` :class:`_Item`;
    yield ``(items, n_out)`` each time a window is ready: the first ``n_out`` items are
    final after this window (all of them at the end of the video), the rest are lookahead
    and come again at the start of the next window."""
    frames, mask_iter = iter(iter_frames(info)), iter(masks)
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
            if mask is None:  # decoder gave more frames than the container announced
                mask = np.zeros((info.height, info.width), bool)
            with rep.timed("resize"):
                small, hole = _reduce(fr.rgb, mask, proc)
            queue.append(_Item(index, fr.rgb, fr.pts, mask, small, hole))
            index += 1
        if not queue:
            return
        items = list(queue)
        n_out = len(items) if eof else min(window, len(items))
        yield items, n_out
        del items  # else the finished window's frames stay alive while the next one is decoded
        for _ in range(n_out):
            queue.popleft()


def _run_windows(info, masks, writer, runner, opts: InpaintOptions, rep) -> int:
    """Complete and write every frame, window by window; returns the number written."""
    proc, window, lookahead, full_res = _plan(info, opts, runner, rep)
    estimator = make_estimator(opts.flow)
    # per-frame filling without propagation stays Telea: a texture fill re-made each frame flickers
    filler = make_filler(opts.filler) if opts.propagation else TeleaFiller()
    need_flow = opts.propagation or (runner is not None and runner.use_flow)

    def timed_filler(image, hole):
        with rep.timed("fill"):
            return filler(image, hole)

    rep.start("inpaint", info.n_frames)
    hooks.pause_point("writing")
    cache: dict[int, PairFlow | None] = {}
    cuts: set[int] = set()  # frame indices a with a shot cut between a and a + 1
    prev = None  # (_Item, completed small, hops) of the last frame written
    n_done = 0
    for items, n_out in _windows(info, masks, proc, window, lookahead, rep):
        _warn_fully_masked(items[:n_out], rep)
        chain = ([prev[0]] if prev is not None else []) + items
        with rep.timed("flow"):
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                if a.index not in cache:
                    cache[a.index] = _pair_flow(a, b, estimator, opts.delta, need_flow, rep, cuts)
        if hasattr(filler, "new_window"):  # a texture budget per shot in this window
            filler.new_window(1 + sum(it.index in cuts for it in items[:-1]))
        completed, hops = _complete(items, cache, prev, timed_filler, opts.propagation, runner, rep,
                                    proc if full_res else None, n_keep=n_out)
        for k in range(n_out):
            it = items[k]
            with rep.timed("paste"):
                result = paste_back(it.full, it.mask, completed[k]) if it.hole.any() else it.full
            with rep.timed("encode"):
                writer.write(result, it.pts)
            n_done += 1
            rep.advance("inpaint")
        last = items[n_out - 1]
        # copies: a view would keep this whole window's arrays alive into the next one
        prev = (last, completed[n_out - 1].copy(), hops[n_out - 1].copy())
        del completed, hops, items, chain
        for key in [k for k in cache if k < last.index]:
            del cache[key]
    return n_done


def _warn_fully_masked(items, rep) -> None:
    """Say which frames are masked everywhere: they are filled from their neighbours as if
    nothing moved (:func:`~tsam_cli.core.flow.still_pair_flow`), which may need a look."""
    whole = [it.index for it in items if it.hole.all()]
    if whole:
        rep.warn(f"frame {whole[0]}{f' and {len(whole) - 1} more' if len(whole) > 1 else ''} masked everywhere: "
                 "filled from the neighbouring frames as if nothing moved there; check the result")


def _pair_flow(a: _Item, b: _Item, estimator, delta: float, need_flow: bool, rep, cuts: set[int]) -> PairFlow | None:
    """Flow between neighbouring frames ``a`` and ``b``, or None where nothing may propagate:
    neither has a hole, flow is not needed, or a shot cut lies between them (added to ``cuts``)."""
    if not need_flow or not (a.hole.any() or b.hole.any()):
        return None
    if a.hole.all() or b.hole.all():  # nothing of that frame to measure motion or cuts on
        return still_pair_flow(a.hole.shape)
    flow = pair_flow(estimator, a.small, b.small, a.hole, b.hole, delta)
    if is_cut(a.small, b.small, a.hole, b.hole, flow.valid_f):
        rep.info(f"shot cut between frames {a.index} and {b.index}: nothing is copied across it")
        cuts.add(a.index)
        return None
    return flow


def _complete(items, cache, prev, filler, use_propagation: bool, runner, rep, full_res_from=None, n_keep=None):
    """Complete one window.

    Returns ``(completed (T, h, w, 3) uint8, hops (T, h, w) float32)`` for ``items``, at the
    processing size, or at full size when ``full_res_from`` (the processing size ``(w, h)``
    the flows were computed at) is given: then flows are upscaled and propagation copies
    full-resolution pixels, and only what it cannot reach is invented at the processing size.
    Classical path: propagation, then the per-frame filler for the rest. With a model:
    propagation (unless disabled) leaves what it cannot reach to the generator, which also
    sees the last frame already written (as a known frame) for continuity between windows.
    Only the first ``n_keep`` frames (default: all) are kept by the caller: the generator
    predicts just those of them with holes left (their neighbours serve as context), so the
    lookahead frames keep their propagation result, unfilled where it could not reach.
    """
    full = full_res_from is not None
    frames = np.stack([it.full if full else it.small for it in items])
    holes = np.stack([it.mask if full else it.hole for it in items])
    T = len(items)
    if not holes.any():
        return frames, np.zeros(holes.shape, np.float32)
    flows = [cache.get(it.index) for it in items[:-1]]
    prev_flow = cache.get(prev[0].index) if prev is not None else None
    prev_arg = (prev[1], prev[2], prev_flow) if prev_flow is not None else None
    hops = np.where(holes, FILLER_HOPS, 0.0).astype(np.float32)
    if use_propagation:
        size = (holes.shape[2], holes.shape[1])
        up = (lambda f: upscale_pair_flow(f, size) if f is not None else None) if full else (lambda f: f)
        p_flows = [up(f) or _still(holes.shape[1:]) for f in flows]
        p_prev = (prev[1], prev[2], up(prev_flow)) if prev_arg is not None else None
        p_filler = None if runner is not None else (ScaledFiller(filler, full_res_from) if full else filler)
        with rep.timed("propagate"):
            frames, hops, rest = propagate(frames, holes, p_flows, p_filler, prev=p_prev)
    else:
        rest = holes
    if runner is None:
        if not use_propagation:
            out = frames.copy()
            for t in range(T):
                if holes[t].any():
                    out[t][holes[t]] = filler(frames[t], holes[t])[holes[t]]
            frames = out
        return frames, hops
    need = rest.reshape(T, -1).any(axis=1)
    need[T if n_keep is None else n_keep :] = False  # lookahead: computed again in the next window
    if not need.any():
        return frames, hops
    g_frames, g_rest, g_flows = frames, rest, flows
    if full:  # the generator runs at the processing size; its result is upscaled into the holes
        g_frames = np.stack([_resize(f, full_res_from) for f in frames])
        g_rest = np.stack([_resize(r.astype(np.float32), full_res_from) > 0 for r in rest])
    if prev_arg is not None:  # the written frame before the window, as a known frame
        g_prev = _resize(prev[1], full_res_from) if full else prev[1]
        g_frames = np.concatenate([g_prev[None], g_frames])
        g_rest = np.concatenate([np.zeros_like(g_rest[:1]), g_rest])
        g_flows = [prev_flow] + g_flows
        need = np.concatenate([[False], need])
    with rep.timed("model"):
        out = runner(g_frames, g_rest, g_flows, need=need)[-T:]
    if full:
        size = (holes.shape[2], holes.shape[1])
        out = np.where(rest[..., None], np.stack([_resize(o, size, cubic=True) for o in out]), frames)
    return out, hops


def _resize(img: np.ndarray, size: tuple[int, int], cubic: bool = False) -> np.ndarray:
    import cv2

    return cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_AREA)
