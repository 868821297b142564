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
from tsam_cli.core.flow import PairFlow, make_estimator, pair_flow, upscale_pair_flow
from tsam_cli.core.propagate import FILLER_HOPS, ScaledFiller, TeleaFiller, propagate
from tsam_cli.device import resolve_device
from tsam_cli.errors import STOP_SIGNALS, InputError, UsageError, WeightsError, signal_number
from tsam_cli.media import OutputTarget, iter_frames, open_writer, probe
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


# ----------------------------------------------------------------------------------------
# the learned model: padding, sliding temporal windows, device, precision, compositing

#: ``--model`` names that are not files: the classical path, and the weight registry entries
MODEL_NAMES = {"classical": None, "compact": "tsam-compact", "full": "tsam-official"}


class Padder:
    """Owns the generator's "H and W multiple of 8" rule (docs/official-checkpoint.md fact 10).

    Pads the last two dims at the bottom/right (so pixel coordinates and flow vectors are
    unchanged) and crops back. Images/flows are replicated at the border, masks and
    validities padded with ``fill``.
    """

    def __init__(self, h: int, w: int, multiple: int = 8) -> None:
        self.h, self.w = h, w
        self.ph, self.pw = (-h) % multiple, (-w) % multiple

    def pad(self, x, fill: float | None = None):
        """``(N, C, H, W)`` tensor -> ``(N, C, H + ph, W + pw)``; replicate, or constant ``fill``."""
        import torch.nn.functional as F

        if not (self.ph or self.pw):
            return x
        if fill is None:
            return F.pad(x, (0, self.pw, 0, self.ph), mode="replicate")
        return F.pad(x, (0, self.pw, 0, self.ph), mode="constant", value=fill)

    def unpad(self, x):
        return x[..., : self.h, : self.w]


def window_starts(T: int, length: int, stride: int) -> list[int]:
    """Start indices of windows of ``length`` frames every ``stride`` frames covering ``[0, T)``.

    The last window is moved back to end exactly at ``T`` (no padding frames, no repeats).
    """
    if T <= length:
        return [0]
    starts = list(range(0, T - length + 1, stride))
    if starts[-1] + length < T:
        starts.append(T - length)
    return starts


def window_weights(length: int):
    """Triangular blending weights ``(length,)``: 1, 2, ..., peak, ..., 2, 1 (frames near a
    window's middle see both neighbours and count more where windows overlap)."""
    return np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)).astype(np.float32)


class ModelRunner:
    """Runs a :class:`~tsam_cli.model.TSAMGenerator` over a stack of frames in windows.

    Call with frames ``(T, h, w, 3) uint8``, holes ``(T, h, w) bool`` (True = hole) and
    ``T - 1`` pair flows (:class:`~tsam_cli.core.flow.PairFlow` or None for "no flow known");
    returns ``(T, h, w, 3) uint8`` equal to the input outside the holes. Windows of
    ``length`` frames every ``stride`` frames; overlaps are blended with
    :func:`window_weights`. Memory is set by ``length``, not by T.
    """

    def __init__(self, model, device: str, length: int, stride: int, precision: str = "auto", use_flow: bool = True):
        import torch

        if length < 1 or not 1 <= stride <= length:
            raise UsageError(f"--model-window {length} / --model-stride {stride}: need 1 <= stride <= window")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.length, self.stride, self.use_flow = length, stride, use_flow
        self.dtype = self._autocast_dtype(precision)

    def _autocast_dtype(self, precision: str):
        import torch

        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise UsageError(f"--precision {precision!r}: use auto, fp32, fp16 or bf16")
        if self.device.type != "cuda" or precision == "fp32":
            if precision in ("fp16", "bf16") and self.device.type != "cuda":
                raise UsageError(f"--precision {precision} needs a CUDA device: use --precision fp32 on the CPU")
            return None
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if precision == "fp16" else torch.bfloat16

    def __call__(self, frames: np.ndarray, holes: np.ndarray, flows) -> np.ndarray:
        import torch

        T, h, w = holes.shape
        acc = np.zeros((T, h, w, 3), np.float32)
        wsum = np.zeros((T,), np.float32)
        padder = Padder(h, w)
        for s in window_starts(T, self.length, self.stride):
            e = min(T, s + self.length)
            if holes[s:e].any():
                pred = self._window(frames[s:e], holes[s:e], flows[s : e - 1], padder, torch)
            else:  # nothing to fill in this window: its frames are their own prediction
                pred = frames[s:e].astype(np.float32) / 255.0
            wts = window_weights(e - s)
            acc[s:e] += pred * wts[:, None, None, None]
            wsum[s:e] += wts
        out = np.clip(np.rint(acc / wsum[:, None, None, None] * 255.0), 0, 255).astype(np.uint8)
        return np.where(holes[..., None], out, frames)

    def _window(self, frames, holes, flows, padder, torch) -> np.ndarray:
        """One window -> ``(L, h, w, 3) float32`` in [0, 1]."""
        dev = self.device
        x = padder.pad(torch.from_numpy(frames).to(dev).permute(0, 3, 1, 2).float() / 255.0)
        m = padder.pad(torch.from_numpy(holes).to(dev)[:, None].float(), fill=1.0)
        guide = None
        if self.use_flow and len(flows):
            flows = [f if f is not None else _still(frames.shape[1:3]) for f in flows]

            def stack(get, fill):
                arr = np.stack([get(f) for f in flows])
                t = torch.from_numpy(arr.astype(np.float32)).to(dev)
                t = t.permute(0, 3, 1, 2) if t.ndim == 4 else t[:, None]
                return padder.pad(t, fill=fill)[None]

            guide = {
                "forward": stack(lambda f: f.fwd, None),
                "backward": stack(lambda f: f.bwd, None),
                "forward_valid": stack(lambda f: f.valid_f, 0.0),
                "backward_valid": stack(lambda f: f.valid_b, 0.0),
            }
        ctx = torch.autocast(device_type="cuda", dtype=self.dtype) if self.dtype is not None else _nullcontext()
        with torch.inference_mode(), ctx:
            y = self.model(x[None], m[None], guide)
        return padder.unpad(y[0].float()).permute(0, 2, 3, 1).cpu().numpy()


def _nullcontext():
    from contextlib import nullcontext

    return nullcontext()


def load_model_runner(opts: InpaintOptions, reporter) -> ModelRunner | None:
    """``--model`` -> a ready :class:`ModelRunner`, or None for the classical path."""
    if opts.model == "classical":
        return None
    from tsam_cli.model.official import load_generator
    from tsam_cli.weights import resolve

    if opts.model in MODEL_NAMES:
        path = resolve(MODEL_NAMES[opts.model])
    else:
        path = Path(opts.model)
        if not path.exists():
            raise WeightsError(f"--model {opts.model!r} is neither classical, compact, full nor an existing weight file: check the path")
        if not path.is_file():
            raise WeightsError(f"--model {opts.model} is not a regular file: give a .safetensors or official .pth file")
    device = resolve_device(opts.device)
    with reporter.timed("model load"):
        model = load_generator(path)
    if opts.use_flow and not model.config.use_flow:
        reporter.warn(f"{path.name} was built without flow guidance: flows are not used")
    reporter.info(f"model {model.config.name} from {path} on {device}")
    return ModelRunner(model, device, opts.model_window, opts.model_stride, opts.precision,
                       use_flow=opts.use_flow and model.config.use_flow)


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
                info.width, info.height, info.n_frames, rep, rotation=info.rotation,
            )
        writer = open_writer(target.tmp, info.width, info.height, info.fps, kind=target.kind, time_base=info.time_base,
                             audio_from=None if info.is_folder else info.path,
                             lossless=opts.lossless, crf=opts.crf, suffix=out.suffix, meta=info)
        with writer:
            n_done = _run_windows(info, masks, writer, runner, opts, rep)
        rep.stop()
        _check_complete(info, n_done, opts.allow_partial, rep)
        for note in writer.notes:
            rep.warn(note)
        proc = processing_size(info.width, info.height, opts.max_size)
        report = InpaintReport(out, n_done, (info.width, info.height), proc, float(info.fps),
                               time.perf_counter() - t_start, dict(rep.timings), list(rep.warnings), list(writer.notes))
        target.commit()
    return report


def _check_complete(info, n_done: int, allow_partial: bool, rep) -> None:
    """Fewer frames decoded than the container announced: a truncated or damaged input."""
    if n_done >= info.n_frames:
        return
    msg = f"{info.path} announced {info.n_frames} frames but only {n_done} could be decoded"
    if not allow_partial:
        raise InputError(f"{msg}: the file is truncated or damaged - repair it, or pass --allow-partial to keep the {n_done} frames")
    rep.warn(f"{msg}; --allow-partial: the output has {n_done} frames")


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
    filler = TeleaFiller()
    need_flow = opts.propagation or (runner is not None and runner.use_flow)

    def timed_filler(image, hole):
        with rep.timed("fill"):
            return filler(image, hole)

    rep.start("inpaint", info.n_frames)
    hooks.pause_point("writing")
    cache: dict[int, PairFlow | None] = {}
    prev = None  # (_Item, completed small, hops) of the last frame written
    n_done = 0
    for items, n_out in _windows(info, masks, proc, window, lookahead, rep):
        chain = ([prev[0]] if prev is not None else []) + items
        with rep.timed("flow"):
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                if a.index not in cache:
                    cache[a.index] = (
                        pair_flow(estimator, a.small, b.small, a.hole, b.hole, opts.delta)
                        if need_flow and (a.hole.any() or b.hole.any()) else None
                    )
        completed, hops = _complete(items, cache, prev, timed_filler, opts.propagation, runner, rep,
                                    proc if full_res else None)
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


def _complete(items, cache, prev, filler, use_propagation: bool, runner, rep, full_res_from=None):
    """Complete one window.

    Returns ``(completed (T, h, w, 3) uint8, hops (T, h, w) float32)`` for ``items``, at the
    processing size, or at full size when ``full_res_from`` (the processing size ``(w, h)``
    the flows were computed at) is given: then flows are upscaled and propagation copies
    full-resolution pixels, and only what it cannot reach is invented at the processing size.
    Classical path: propagation, then the per-frame filler for the rest. With a model:
    propagation (unless disabled) leaves what it cannot reach to the generator, which also
    sees the last frame already written (as a known frame) for continuity between windows.
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
    if not rest.any():
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
    with rep.timed("model"):
        out = runner(g_frames, g_rest, g_flows)[-T:]
    if full:
        size = (holes.shape[2], holes.shape[1])
        out = np.where(rest[..., None], np.stack([_resize(o, size, cubic=True) for o in out]), frames)
    return out, hops


def _resize(img: np.ndarray, size: tuple[int, int], cubic: bool = False) -> np.ndarray:
    import cv2

    return cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_AREA)


def _still(shape: tuple[int, int]) -> PairFlow:
    """Zero flow, all invalid: stands for pairs of hole-free frames (never sampled)."""
    z = np.zeros((*shape, 2), np.float32)
    v = np.zeros(shape, bool)
    return PairFlow(z, z, v, v)
