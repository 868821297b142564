"""``tsam preview``: check a mask, or compare a result with its input, in seconds.

Two kinds of preview video, both with the input's frame count, timestamps, fps and audio:

* **overlay** (``--mask``/``--box``): each frame with the region that ``tsam inpaint`` would
  fill (the mask after ``--dilate``, as inpaint grows it) tinted in a semi-transparent
  colour and outlined, so a wrong polarity, a missed limb or a drifting track shows at once;
* **comparison** (``--result OUT``): input and result side by side (``input | result``,
  twice the width as shown), or with ``--wipe`` one frame whose left part is the result and
  right part the input, the border sweeping across and back once per ``wipe_period`` frames.
  A result larger than the input (``tsam outpaint``) is compared with the input placed where
  it sits in the result (found by matching the first frames) on a tinted grey canvas;
* **outpainting** (``tsam outpaint --preview``): each frame placed on the output canvas, the
  new area (and any mask) tinted, so the new size and the original's place show at once.

Frames are composed in display orientation (as a player shows them) and turned back to the
input's coded orientation, so "left"/"right" and the double width hold for rotated phone
clips too. Everything is written through :class:`~tsam_cli.media.output.OutputTarget`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsam_cli.errors import InputError
from tsam_cli.masking.options import PreviewOptions
from tsam_cli.ui import plural

#: tint of the overlay: a saturated magenta is rare in natural footage (RGB)
OVERLAY_COLOUR = (255, 0, 255)
#: the border of a frame whose tracked mask has low confidence (RGB): red, apart from the magenta tint
LOW_COLOUR = (255, 0, 0)


# ---------------------------------------------------------------------------- drawing
def overlay(frame: np.ndarray, mask: np.ndarray, opacity: float = 0.45, outline: int = 2,
            colour: tuple[int, int, int] = OVERLAY_COLOUR) -> np.ndarray:
    """Tint ``mask`` on ``frame`` and outline it.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        mask: ``(H, W) bool``, True = region to remove.
        opacity: 0 (no tint) .. 1 (solid colour).
        outline: border width in px, drawn just inside the mask (0 = none).
    Returns:
        ``(H, W, 3) uint8``; equal to ``frame`` outside ``mask``.
    """
    import cv2

    out = frame.copy()
    if not mask.any():
        return out
    col = np.array(colour, np.float32)
    out[mask] = np.clip(frame[mask] * (1 - opacity) + col * opacity + 0.5, 0, 255).astype(np.uint8)
    if outline > 0:
        inner = cv2.erode(mask.astype(np.uint8), np.ones((2 * outline + 1,) * 2, np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        out[mask & ~inner] = colour
    return out


def mark_low(frame: np.ndarray, confidence: float, rotation: int = 0) -> np.ndarray:
    """``frame`` (``(H, W, 3) uint8`` RGB, coded orientation) with a :data:`LOW_COLOUR` border and
    "low confidence 0.30" written at its top left as shown (``rotation``: the video's clockwise
    display rotation). Border: 1/80 of the short side, at least 3 px; white text on a red label."""
    import cv2

    img = np.ascontiguousarray(to_display(frame, rotation)).copy()
    h, w = img.shape[:2]
    b = max(3, round(min(h, w) / 80))
    img[:b], img[-b:], img[:, :b], img[:, -b:] = LOW_COLOUR, LOW_COLOUR, LOW_COLOUR, LOW_COLOUR
    scale = max(0.3, min(h, w) / 600)  # FONT_HERSHEY_SIMPLEX is ~22 px tall at scale 1
    thick = max(1, round(2 * scale))
    text = f"low confidence {confidence:.2f}"
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, b // 2)
    img[b : b + th + base + 2 * pad, b : b + tw + 2 * pad] = LOW_COLOUR  # a label on the border: readable on any picture
    cv2.putText(img, text, (b + pad, b + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return to_coded(img, rotation)


def to_display(img: np.ndarray, rotation: int) -> np.ndarray:
    """Coded-orientation image -> as shown (turned ``rotation`` degrees clockwise)."""
    return np.rot90(img, k=-(rotation // 90)) if rotation % 360 else img


def to_coded(img: np.ndarray, rotation: int) -> np.ndarray:
    """As shown -> coded orientation (the inverse of :func:`to_display`)."""
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90)) if rotation % 360 else img


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` x2 (display orientation) -> ``(H, 2W, 3)``: ``a`` left, ``b`` right."""
    return np.concatenate([a, b], axis=1)


def wipe_position(index: int, width: int, period: int) -> int:
    """Column of the wipe border on frame ``index``: 0 -> ``width`` -> 0 every ``period`` frames."""
    phase = (index % period) / period
    return round(width * (1 - abs(2 * phase - 1)))


def wipe(before: np.ndarray, after: np.ndarray, column: int, line: int = 2) -> np.ndarray:
    """``after`` left of ``column``, ``before`` right of it, a white border line between them.

    Both ``(H, W, 3) uint8`` in display orientation; returns ``(H, W, 3) uint8``.
    """
    out = before.copy()
    out[:, :column] = after[:, :column]
    lo, hi = max(0, column - line // 2), min(out.shape[1], column + (line + 1) // 2)
    out[:, lo:hi] = 255
    return out


# ---------------------------------------------------------------------------- writing
@dataclass
class PreviewReport:
    """What a preview run wrote (the same fields ``tsam inpaint`` prints)."""

    output: Path
    n_frames: int
    size: tuple[int, int]  # (W, H) of the preview, coded orientation
    fps: float
    seconds: float
    n_low: int = 0  # frames marked "low confidence" (a tracked mask's confidence sidecar)


def _frames_with(info, other_frames):
    """``(frame, other)`` pairs: the input's frames with the mask / result frame of the same index
    (``other_frames`` None: no second input, ``other`` is None)."""
    from tsam_cli.media import iter_frames

    if other_frames is None:
        yield from ((f, None) for f in iter_frames(info))
        return
    yield from zip(iter_frames(info), other_frames, strict=False)


#: grey of the canvas the input is put on when it is compared with a larger (outpainted) result
CANVAS_GREY = 96


def canvas_background(size: tuple[int, int], opacity: float = 0.45) -> np.ndarray:
    """``(H', W', 3) uint8`` grey canvas of ``size`` (W', H') tinted with :data:`OVERLAY_COLOUR`:
    what an outpainted result's new area is shown on, next to it (made once per preview)."""
    grey = np.full((size[1], size[0], 3), CANVAS_GREY, np.uint8)
    return overlay(grey, np.ones(grey.shape[:2], bool), opacity, outline=0)


def on_canvas(rgb: np.ndarray, offset: tuple[int, int], background: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` input at ``offset`` (x, y) on a copy of ``background``
    (:func:`canvas_background`); ``(H', W', 3) uint8``."""
    out = background.copy()
    x, y = offset
    out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = rgb
    return out


def _compose(opts: PreviewOptions, rotation: int, placed: tuple | None = None):
    """``(index, frame rgb, other) -> preview frame`` for the options' kind, coded orientation.
    ``placed``: ``(offset, background)`` when the result is larger (outpainted): the input is put
    at ``offset`` on the :func:`canvas_background`; None = the same size."""
    if opts.result is None:
        return lambda i, rgb, mask: overlay(rgb, mask, opts.opacity, opts.outline)

    def compare(i: int, rgb: np.ndarray, res: np.ndarray) -> np.ndarray:
        if placed is not None:
            rgb = on_canvas(rgb, *placed)
        a, b = to_display(rgb, rotation), to_display(res, rotation)
        if opts.wipe:
            return to_coded(wipe(a, b, wipe_position(i, a.shape[1], opts.wipe_period)), rotation)
        return to_coded(side_by_side(a, b), rotation)

    return compare


def confidence_file(opts: PreviewOptions) -> Path | None:
    """The confidence sidecar to mark frames by: ``--confidence``, else ``MASK.confidence.json``
    beside ``--mask`` when it exists (:func:`tsam_cli.masking.save.confidence_path`), else None."""
    from tsam_cli.masking.save import confidence_path

    if opts.confidence is not None:
        return Path(opts.confidence)
    if opts.mask is None or opts.result is not None:
        return None
    found = confidence_path(Path(opts.mask))
    return found if found.is_file() else None


def low_frames(info, opts: PreviewOptions, rep) -> dict[int, float]:
    """``{frame: confidence}`` of the frames below the sidecar's threshold (empty without one).
    A sidecar found beside the mask with another frame count is warned about and not used; a
    ``--confidence`` file with one is an :class:`InputError`."""
    from tsam_cli.masking.save import read_confidence

    path = confidence_file(opts)
    if path is None:
        return {}
    conf, threshold = read_confidence(path)
    if len(conf) != info.n_frames:
        msg = f"{path} has {plural(len(conf), 'frame')}, {info.path} {info.n_frames}: it belongs to another mask"
        if opts.confidence is not None:
            raise InputError(f"{msg}: give the confidence file of this video's mask")
        rep.warn(f"{msg}, so no frame is marked low confidence")
        return {}
    return {i: c for i, c in enumerate(conf) if c < threshold}


def _with_marks(compose, low: dict[int, float], rotation: int):
    """``compose`` with the frames of ``low`` (``{frame: confidence}``) marked by :func:`mark_low`."""
    def marked(i: int, rgb: np.ndarray, other) -> np.ndarray:
        out = compose(i, rgb, other)
        return mark_low(out, low[i], rotation) if i in low else out

    return marked


def _user_masks(info, opts, rep):
    """The ``--mask``/``--box`` stream of ``opts`` (dilated as inpaint does), or None without one."""
    from tsam_cli.media.masks import MaskSpec, MaskStream, parse_box

    if not opts.mask and opts.box is None:
        return None
    box = parse_box(opts.box) if isinstance(opts.box, str) else opts.box
    spec = MaskSpec(Path(opts.mask) if opts.mask else None, box, opts.invert_mask, opts.dilate, opts.mask_threshold)
    return iter(MaskStream(spec, info.width, info.height, info.n_frames, rep, rotation=info.rotation,
                            fps=float(info.fps)))


def _open_other(info, opts: PreviewOptions, rep):
    """``(second input per frame, offset, (W, H))``: the mask stream, or the result's frames (checked
    to match; ``offset`` = the input's place in a larger, outpainted result, else None), and the
    size (coded) each preview half has."""
    from tsam_cli.media import iter_frames, probe

    if opts.result is None:
        return _user_masks(info, opts, rep), None, (info.width, info.height)
    res = probe(Path(opts.result), fps=float(info.fps) if Path(opts.result).is_dir() else None)
    larger = res.width >= info.width and res.height >= info.height and (res.width, res.height) != (info.width, info.height)
    if (not larger and (res.width, res.height) != (info.width, info.height)) or res.rotation != info.rotation:
        raise InputError(f"result {res.path} is {res.width}x{res.height} (rotation {res.rotation}), the input "
                         f"{info.width}x{info.height} (rotation {info.rotation}): compare a result of this input")
    if res.n_frames != info.n_frames:
        raise InputError(f"result {res.path} has {plural(res.n_frames, 'frame')}, the input {info.n_frames}: "
                         "compare a result of this input")
    offset = _find_offset(info, res) if larger else None
    return (f.rgb for f in iter_frames(res)), offset, (res.width, res.height)


def _find_offset(info, res) -> tuple[int, int]:
    """Where the input's first frame sits in the (larger) result's first frame: ``(x, y)`` of the
    best match (sum of squared differences; an outpainted result holds the input unchanged)."""
    import cv2

    from tsam_cli.media import iter_frames

    a = next(iter(iter_frames(info)), None)
    b = next(iter(iter_frames(res)), None)
    if a is None or b is None:
        return (res.width - info.width) // 2, (res.height - info.height) // 2
    scores = cv2.matchTemplate(b.rgb.astype(np.float32), a.rgb.astype(np.float32), cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(scores)
    return int(x), int(y)


def write_preview(video: str | Path, out: str | Path, opts: PreviewOptions, reporter=None,
                  fps: float | None = None, protected: tuple = ()) -> PreviewReport:
    """Write the preview of ``video`` (overlay or comparison, see the module doc) to ``out``.

    ``out``: a video file (H.264, the input's audio and timestamps kept) or a folder for PNG
    frames. ``protected``: more ``(label, path)`` pairs ``out`` may not replace (input, mask
    and result always are). Raises :class:`~tsam_cli.errors.TsamError` subclasses for bad
    input; nothing is left at ``out`` then.
    """
    from tsam_cli.media import OutputTarget, probe
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    t0 = time.perf_counter()
    opts.validate()
    info = probe(Path(video), fps=fps)
    others = [("the mask", opts.mask), ("the result", opts.result), ("the confidence file", confidence_file(opts))]
    protected = [("the input", info.path), *((k, Path(p)) for k, p in others if p), *protected]
    with OutputTarget(Path(out), protected, opts.overwrite) as target:
        low = low_frames(info, opts, rep)
        other, offset, (w, h) = _open_other(info, opts, rep)
        placed = None if offset is None else (offset, canvas_background((w, h), opts.opacity))
        if opts.result is not None and not opts.wipe:
            w, h = (w, 2 * h) if info.rotation in (90, 270) else (2 * w, h)
        compose = _compose(opts, info.rotation, placed)
        compose = _with_marks(compose, low, info.rotation) if low else compose
        n = _write_frames(target, info, Path(out), (w, h), other, compose, opts.crf, rep)
        target.commit()
    return PreviewReport(Path(out), n, (w, h), float(info.fps), time.perf_counter() - t0, len(low))


def _write_frames(target, info, out: Path, size: tuple[int, int], other, compose, crf: int, rep) -> int:
    """Write ``compose(index, frame, other)`` for every input frame into ``target``'s temporary
    (H.264 at ``crf``, the input's timing, audio and metadata); returns the frames written."""
    from tsam_cli.media import open_writer

    writer = open_writer(target.tmp, size[0], size[1], info.fps, kind=target.kind, time_base=info.time_base,
                         audio_from=None if info.is_folder else info.path, crf=crf, suffix=out.suffix, meta=info)
    rep.start("preview", info.n_frames)
    n = 0
    with writer:
        for frame, extra in _frames_with(info, other):
            writer.write(compose(n, frame.rgb, extra), frame.pts)
            n += 1
            rep.advance("preview")
    rep.stop()
    if n < info.n_frames:
        raise InputError(f"{info.path} announced {plural(info.n_frames, 'frame')} but only {n} could be read together "
                         "with the mask/result: the file is truncated or damaged - repair or re-export it")
    for note in writer.notes:
        rep.warn(note)
    return n


def preview_of_inpaint(inp: Path, out: Path, opts, reporter) -> PreviewReport:
    """``tsam inpaint --preview``: write the mask overlay of ``opts``' mask (after its
    ``--dilate``: what inpaint would fill) to ``out`` instead of inpainting."""
    box = opts.box if isinstance(opts.box, str) or opts.box is None else ",".join(map(str, opts.box))
    popts = PreviewOptions(mask=opts.mask, box=box, dilate=opts.dilate, invert_mask=opts.invert_mask,
                           mask_threshold=opts.mask_threshold, crf=opts.crf, overwrite=opts.overwrite, quiet=opts.quiet)
    return write_preview(inp, out, popts, reporter, fps=opts.fps, protected=tuple(opts.protected))


def preview_of_outpaint(inp: Path, out: Path, opts, plan, reporter) -> PreviewReport:
    """``tsam outpaint --preview``: each frame placed on the canvas ``plan(info)`` returns (an
    object with ``size`` (W', H'), ``place(frame)`` and ``holes(frame, mask)``, see
    tsam_cli.core.canvas), the new area, detected borders and ``opts``' mask tinted."""
    from tsam_cli.media import OutputTarget, probe
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    t0 = time.perf_counter()
    info = probe(Path(inp), fps=opts.fps)
    canvas = plan(info)
    protected = [("the input", info.path), *((("the mask", Path(opts.mask)),) if opts.mask else ()), *opts.protected]
    popts = PreviewOptions(overwrite=opts.overwrite)  # the tint's and the preview's defaults

    def compose(i: int, rgb: np.ndarray, mask) -> np.ndarray:
        return overlay(canvas.place(rgb), canvas.holes(rgb, mask), popts.opacity, popts.outline)

    with OutputTarget(Path(out), protected, opts.overwrite) as target:
        masks = _user_masks(info, opts, rep)
        n = _write_frames(target, info, Path(out), canvas.size, masks, compose, popts.crf, rep)
        target.commit()
    return PreviewReport(Path(out), n, canvas.size, float(info.fps), time.perf_counter() - t0)
