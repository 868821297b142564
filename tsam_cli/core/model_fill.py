"""The learned path: the TSAM generator run over a stack of frames in temporal windows.

Moved out of :mod:`tsam_cli.core.pipeline` (which still re-exports these names):
padding to the generator's multiple of 8, the sliding windows and their blending
weights, device/precision handling, and loading ``--model`` into a runner.
Inside the code masks are True = hole.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np

from tsam_cli.device import resolve_device, usable_cpus
from tsam_cli.errors import UsageError, WeightsError
from tsam_cli.flow.pair import unlinked_pair_flow
from tsam_cli.options import InpaintOptions


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


def generator_spans(need: np.ndarray, context: int) -> list[tuple[int, int]]:
    """Frame ranges ``[a, b)`` the generator runs on so that every frame with ``need`` True
    (``(T,) bool``) is predicted with up to ``context`` frames on each side as temporal context
    (each temporal shift reads frames t - 1 and t + 1).

    Needed frames separated by at most ``2 * context`` un-needed frames share a span (running
    the gap costs no more than the two spans' extra context frames); spans may overlap in their
    context frames, every needed frame lies in exactly one span. No needed frame: ``[]``.
    """
    idx = np.flatnonzero(need)
    T = len(need)
    groups: list[list[int]] = []
    for f in idx.tolist():
        if groups and f - groups[-1][1] - 1 <= 2 * context:
            groups[-1][1] = f
        else:
            groups.append([f, f])
    return [(max(0, first - context), min(T, last + context + 1)) for first, last in groups]


# Memory of the full generator per window on the CPU in fp32, measured with the per-layer
# profile of docs/benchmarks.md ("Learned path: memory and speed"): at 432x240 the encoder
# holds ~72 MB per window frame (activations up to layer4, 2048 channels at H/8) and the
# frame-chunked decoder stages ~0.8 GB whatever the window (a few 256-channel frames at full
# size). Per processed pixel (padded to a multiple of 8), rounded up:
ENCODER_BYTES_PER_PIXEL_FRAME = 720
DECODER_BYTES_PER_PIXEL = 8192
#: share of the available memory (MemAvailable on the CPU, free memory on CUDA) a window may
#: take: the rest is for the pipeline's frames and flows, and for other programs
MEMORY_SHARE = 0.6


def window_bytes(length: int, h: int, w: int) -> int:
    """Estimated generator memory for a window of ``length`` frames of ``h x w`` (padded)."""
    px = (h + (-h) % 8) * (w + (-w) % 8)
    return px * (length * ENCODER_BYTES_PER_PIXEL_FRAME + DECODER_BYTES_PER_PIXEL)


def available_memory(device) -> int | None:
    """Bytes free for tensors: free VRAM on CUDA, ``MemAvailable`` of /proc/meminfo on the CPU
    (None where neither can be read)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # no /proc (not Linux): the configured window is used as it is
        return None
    return None


def fit_window(length: int, stride: int, h: int, w: int, available: int) -> tuple[int, int]:
    """The longest window ``<= length`` whose :func:`window_bytes` fits in ``MEMORY_SHARE`` of
    ``available``, and the stride scaled alike (same overlap ratio, at least 1).

    Raises :class:`UsageError` when not even one frame fits.
    """
    budget = available * MEMORY_SHARE
    fit = length
    while fit > 1 and window_bytes(fit, h, w) > budget:
        fit -= 1
    if window_bytes(fit, h, w) > budget:
        need = window_bytes(1, h, w) / MEMORY_SHARE / 2**30
        raise UsageError(f"the generator needs ~{need:.1f} GiB at {w}x{h} but {available / 2**30:.1f} GiB is free: "
                         "lower --max-size (the generator runs at the processing size)")
    return fit, max(1, min(fit, round(stride * fit / length)))


#: glibc malloc settings of :func:`release_freed_memory` (bytes): blocks from 64 MiB on (a
#: 256-channel frame at full size, ~100 MB at 432x240, or a window's stacked encoder maps) are
#: mapped fresh and returned when freed; smaller ones are reused from the heap, which keeps up
#: to 128 MiB of free memory at its top instead of handing it back and faulting it in again
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 128 << 20


def release_freed_memory() -> None:
    """Fixed glibc thresholds for the generator's large blocks (no effect outside glibc).

    glibc raises its mmap threshold after large blocks are freed (dynamic threshold, see the
    ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` entries of ``man 3 mallopt``), so the 100 MB
    decoder frames ended up in a heap that fragments (peak 2465 MiB, generator alone, 12 frames
    at 432x240). A fixed 1 MiB threshold fixed that (2072 MiB) but every block of 1 MiB or more
    was then a fresh mapping whose pages the kernel faults in and zeroes: ~800,000 minor faults
    and ~1.3 s of system time per generator frame. With 64 MiB / 128 MiB: ~400,000 and ~0.8 s
    (12-frame windows); whole pipeline, 24 frames at 432x240, 12-frame windows everywhere
    (``--no-propagation``): peak 2121 MiB, where a 512 MiB trim threshold reached 2775 MiB
    (docs/benchmarks.md, "Speed of the learned path").
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD = -3 in glibc's malloc.h
            libc.mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD = -1
    except OSError:  # the C library cannot be loaded: malloc keeps its own thresholds
        return


class ModelRunner:
    """Runs a :class:`~tsam_cli.model.TSAMGenerator` over a stack of frames in windows.

    Call with frames ``(T, h, w, 3) uint8``, holes ``(T, h, w) bool`` (True = hole) and
    ``T - 1`` pair flows (:class:`~tsam_cli.flow.PairFlow` or None for "no flow known");
    returns ``(T, h, w, 3) uint8`` equal to the input outside the holes. The generator runs only
    on the frames that need a prediction plus ``context`` neighbours (:func:`generator_spans`),
    there in windows of ``length`` frames every ``stride`` frames, overlaps blended with
    :func:`window_weights`. Memory is set by ``length`` and ``frame_chunk``, not by T.
    """

    #: frames per chunk of the generator's H/2 and full-resolution decoder stages (same values up
    #: to rounding, see TSAMGenerator.forward): one 256-channel frame there is ~100 MB at
    #: 432x240. 1 holds the fewest (peak 7.8 -> 2.2 GiB at 432x240); since the shift builds only
    #: the kept frames, chunks of 2 or 3 are no faster (user CPU per frame 2.47 / 2.52 / 2.43 s
    #: for 1 / 2 / 3, peak 1.4 / 2.2 / 2.4 GiB, 7 frames; docs/benchmarks.md), so 1 stays
    frame_chunk: int | None = 1
    #: frames of temporal context on each side of a run of frames that need a prediction
    #: (:func:`generator_spans`): 1 = what one temporal shift reads; more frames cost a full
    #: generator frame each (docs/benchmarks.md, "Speed of the learned path")
    context: int = 1

    def __init__(self, model, device: str, length: int, stride: int, precision: str = "auto", use_flow: bool = True,
                 *, auto_window: bool = False, reporter=None):
        import torch

        if length < 1 or not 1 <= stride <= length:
            raise UsageError(f"--model-window {length} / --model-stride {stride}: need 1 <= stride <= window")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        else:
            release_freed_memory()
        self.length, self.stride, self.use_flow = length, stride, use_flow
        self.dtype = self._autocast_dtype(precision)
        self.auto_window, self.reporter = auto_window, reporter
        self._fitted: dict[tuple[int, int], tuple[int, int]] = {}

    def window_for(self, h: int, w: int) -> tuple[int, int]:
        """``(length, stride)`` for frames of ``h x w``: the configured ones, or with
        ``auto_window`` shorter ones when they would not fit in the available memory (one note)."""
        if not self.auto_window:
            return self.length, self.stride
        if (h, w) not in self._fitted:
            avail = available_memory(self.device)
            fit = (self.length, self.stride) if avail is None else fit_window(self.length, self.stride, h, w, avail)
            if fit[0] < self.length and self.reporter is not None:
                self.reporter.info(f"model window {fit[0]} frames (stride {fit[1]}) instead of {self.length}: "
                                   f"{avail / 2**30:.1f} GiB free at {w}x{h}")
            self._fitted[(h, w)] = fit
        return self._fitted[(h, w)]

    def _autocast_dtype(self, precision: str):
        """``--precision`` -> the autocast dtype, or None for plain fp32."""
        import torch

        if precision not in ("auto", "fp32", "fp16", "bf16"):
            raise UsageError(f"--precision {precision!r}: use auto, fp32, fp16 or bf16")
        if self.device.type != "cuda":
            if precision == "fp16":
                raise UsageError("--precision fp16 needs a CUDA device: use --precision bf16 or fp32 on the CPU")
            return torch.bfloat16 if precision == "bf16" else None  # auto = fp32 on the CPU
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    def __call__(self, frames: np.ndarray, holes: np.ndarray, flows, need: np.ndarray | None = None) -> np.ndarray:
        """``(T, h, w, 3) uint8``: the holes of the frames that ``need`` a prediction filled
        (:meth:`predict`), every other pixel as given."""
        out = np.clip(np.rint(self.predict(frames, holes, flows, need) * 255.0), 0, 255).astype(np.uint8)
        return np.where(holes[..., None], out, frames)

    def predict(self, frames: np.ndarray, holes: np.ndarray, flows, need: np.ndarray | None = None) -> np.ndarray:
        """The generator's prediction, ``(T, h, w, 3) float32`` in [0, 1].

        Only frames that ``need`` one (``(T,) bool``; default: every frame with a hole; a frame
        without holes never needs one) are predicted; every other frame is returned as its own
        pixels / 255. The generator runs on :func:`generator_spans` of the needed frames (each
        with ``context`` neighbours for the temporal shifts); inside a span, windows of the
        configured length/stride are blended with :func:`window_weights` and windows without a
        needed frame are not run. A frame inside one window only gets that window's prediction
        exactly (its weight is divided by its total weight up front: multiplied by exactly 1).
        When every frame is needed this is the plain sliding window over the whole clip.
        """
        T, h, w = holes.shape
        has_hole = holes.reshape(T, -1).any(axis=1)
        need = has_hole if need is None else np.asarray(need, bool) & has_hole
        out = frames.astype(np.float32) / 255.0
        padder = Padder(h, w)
        for a, b in generator_spans(need, self.context):
            self._span(frames[a:b], holes[a:b], flows[a : b - 1], need[a:b], out[a:b], padder)
        return out

    def _span(self, frames, holes, flows, need, out, padder) -> None:
        """Blended windows over one span; writes the needed frames' predictions into ``out``
        (a view of the clip's ``(n, h, w, 3)`` result)."""
        import torch

        n = len(frames)
        length, stride = self.window_for(*holes.shape[1:])
        starts = [s for s in window_starts(n, length, stride) if need[s : s + length].any()]
        ends = [min(n, s + length) for s in starts]
        wsum = np.zeros((n,), np.float32)
        for s, e in zip(starts, ends, strict=True):
            wsum[s:e] += window_weights(e - s)
        wsum[wsum == 0] = 1.0  # frames of no run window (none of them is needed)
        acc = np.zeros(out.shape, np.float32)
        for s, e in zip(starts, ends, strict=True):
            pred = self._window(frames[s:e], holes[s:e], flows[s : e - 1], padder, torch)
            acc[s:e] += pred * (window_weights(e - s) / wsum[s:e])[:, None, None, None]
            del pred
        out[need] = acc[need]

    def _window(self, frames, holes, flows, padder, torch) -> np.ndarray:
        """One window -> ``(L, h, w, 3) float32`` in [0, 1]."""
        from tsam_cli.model import TSAMGenerator

        dev = self.device
        x = padder.pad(torch.from_numpy(frames).to(dev).permute(0, 3, 1, 2).float() / 255.0)
        m = padder.pad(torch.from_numpy(holes).to(dev)[:, None].float(), fill=1.0)
        guide = None
        if self.use_flow and len(flows):
            flows = [f if f is not None else unlinked_pair_flow(frames.shape[1:3]) for f in flows]

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
        ctx = torch.autocast(device_type=dev.type, dtype=self.dtype) if self.dtype is not None else nullcontext()
        kwargs = {"frame_chunk": self.frame_chunk} if isinstance(self.model, TSAMGenerator) else {}
        with torch.inference_mode(), ctx:
            y = self.model(x[None], m[None], guide, **kwargs)
        return padder.unpad(y[0].float()).permute(0, 2, 3, 1).cpu().numpy()


def load_model_runner(opts: InpaintOptions, reporter) -> ModelRunner | None:
    """``--model`` -> a ready :class:`ModelRunner`, or None for the classical path."""
    from tsam_cli.models import MODELS, choose_model
    from tsam_cli.weights import resolve

    choice = choose_model(opts.model, opts.device, reporter)  # auto -> classical or a file; full -> converted once
    if choice == "classical":
        return None
    from tsam_cli.model.tsam_format import load_generator

    if choice in MODELS:
        path = resolve(MODELS[choice].weights)
    else:
        path = Path(choice)
        if not path.exists():
            raise WeightsError(f"--model {opts.model!r} is neither auto, classical, compact, full nor an existing weight file: check the path")
        if not path.is_file():
            raise WeightsError(f"--model {opts.model} is not a regular file: give a .safetensors or official .pth file")
    device = resolve_device(opts.device)
    if device == "cpu":  # PyTorch counts the machine's cores, not the ones this process may use
        import torch

        torch.set_num_threads(opts.threads or usable_cpus())
    with reporter.timed("model load"):
        model = load_generator(path)
    if opts.use_flow and not model.config.use_flow:
        reporter.warn(f"{path.name} was built without flow guidance: flows are not used")
    reporter.info(f"model {model.config.name} from {path} on {device}")
    return ModelRunner(model, device, opts.model_window, opts.model_stride, opts.precision,
                       use_flow=opts.use_flow and model.config.use_flow, auto_window=True, reporter=reporter)
