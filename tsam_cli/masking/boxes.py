"""Text boxes over time, without the detector: region, sparse detection, tracks, gaps, padding.

A frame's boxes are a ``(K, 4) float32`` array of ``x0, y0, x1, y1`` (pixels, ``x1``/``y1``
exclusive) in **display** orientation (as the video is shown, so text is upright). The
detector itself (:mod:`.text`) is just a callable ``crop -> boxes``; everything here is
plain numpy and is tested without onnxruntime.

Time model (``docs/masking.md``):

1. **Sparse detection** (:func:`detect_sparse`): the detector runs on every ``every``-th
   frame (and the last). Where the boxes at the two ends of an interval agree (each box of
   one end overlaps one of the other by IoU >= 0.5), the frames between get the earlier
   end's boxes; where they disagree, the interval is bisected - its middle frame is
   detected and each half is resolved the same way - so a change is located to the exact
   frame. A text shown and gone again entirely between two agreeing detections (shorter
   than ``every`` frames) is missed: that is the price of ``every > 1``.
2. **Tracks** (:func:`smooth_tracks`): boxes are linked frame to frame by IoU into tracks;
   a track may skip up to ``max_gap`` frames (the detector missed it: a fade, motion blur),
   and those frames get the union of the boxes on both sides; a track seen over fewer than
   ``min_frames`` frames is dropped (a one-frame false detection would make the mask
   blink). Box edges are then smoothed by a running median over 5 frames of the track, so
   the mask of a still subtitle does not wobble by a pixel from frame to frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

#: two detections of the same text overlap at least this much (IoU); glyph boxes of one
#: subtitle line vary by a few pixels between frames, a different line overlaps far less
SAME_IOU = 0.5
#: linking boxes into tracks is looser: a box that grows as letters fade in still links
LINK_IOU = 0.3
#: frames of the running median that steadies box edges (odd; 5 = 0.2 s at 25 fps)
MEDIAN_FRAMES = 5
#: ``--region bottom/top``: the lower/upper 40 % of the picture (three 240p subtitle lines
#: and their margin fit; the rest is never searched)
BAND = 0.4

Boxes = np.ndarray  # (K, 4) float32 x0, y0, x1, y1


def no_boxes() -> Boxes:
    return np.zeros((0, 4), np.float32)


def region_rect(region, width: int, height: int) -> tuple[int, int, int, int]:
    """``--region`` (``"bottom"|"top"|"all"`` or ``(x, y, w, h)``) -> ``(x, y, w, h)`` inside a
    ``width x height`` (display) picture. Raises :class:`UsageError` for a rectangle outside it."""
    from tsam_cli.errors import UsageError

    if region == "all":
        return 0, 0, width, height
    band = max(1, round(height * BAND))
    if region == "bottom":
        return 0, height - band, width, band
    if region == "top":
        return 0, 0, width, band
    x, y, w, h = region
    if x >= width or y >= height:
        raise UsageError(f"--region {x},{y},{w},{h} starts outside the {width}x{height} video: "
                         "give x < width and y < height (pixels of the video as shown)")
    return x, y, min(w, width - x), min(h, height - y)


def iou_matrix(a: Boxes, b: Boxes) -> np.ndarray:
    """``(len(a), len(b))`` intersection over union of every pair of boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-6)


def match(a: Boxes, b: Boxes, min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs ``(i, j)``, best IoU first, each at least ``min_iou``."""
    iou = iou_matrix(a, b)
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def same_text(a: Boxes, b: Boxes) -> bool:
    """Do two frames show the same text boxes (every box of each paired by IoU >= SAME_IOU)?"""
    return len(a) == len(b) and len(match(a, b, SAME_IOU)) == len(a)


def _resolve(left: Boxes, right: Boxes, crops: list, detect: Callable) -> list[Boxes]:
    """Boxes for the frames strictly between two detected ones (bisection where they differ)."""
    if not crops:
        return []
    if same_text(left, right):
        return [left] * len(crops)
    mid = len(crops) // 2
    boxes = detect(crops[mid])
    return [*_resolve(left, boxes, crops[:mid], detect), boxes, *_resolve(boxes, right, crops[mid + 1 :], detect)]


def detect_sparse(crops: Iterable[np.ndarray], detect: Callable[[np.ndarray], Boxes], every: int) -> Iterator[Boxes]:
    """Boxes for every frame in order, running ``detect`` on every ``every``-th frame and the
    last, and on the frames of each interval whose ends disagree (bisected, see the module).

    Holds at most ``every - 1`` crops at a time."""
    prev: Boxes | None = None
    pending: list[np.ndarray] = []
    for i, crop in enumerate(crops):
        if i % every:
            pending.append(crop)
            continue
        boxes = detect(crop)
        if prev is not None:
            yield from _resolve(prev, boxes, pending, detect)
        yield boxes
        prev, pending = boxes, []
    if pending:
        last = detect(pending.pop())
        yield from _resolve(prev, last, pending, detect)
        yield last


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)


def _link(per_frame: list[Boxes], max_gap: int) -> list[_Track]:
    """Boxes -> tracks: a box joins the track whose last box (seen at most ``max_gap + 1``
    frames earlier) it overlaps most, IoU >= LINK_IOU; otherwise it starts a track."""
    tracks: list[_Track] = []
    for t, boxes in enumerate(per_frame):
        open_ = [k for k, tr in enumerate(tracks) if tr.frames[-1] >= t - max_gap - 1]
        last = np.array([tracks[k].boxes[-1] for k in open_], np.float32).reshape(-1, 4)
        taken = {}
        for j, i in match(np.asarray(boxes, np.float32).reshape(-1, 4), last, LINK_IOU):
            taken[j] = open_[i]
        for j, box in enumerate(boxes):
            tr = tracks[taken[j]] if j in taken else None
            if tr is None:
                tr = _Track()
                tracks.append(tr)
            tr.frames.append(t)
            tr.boxes.append(np.asarray(box, np.float32))
    return tracks


def _filled(tr: _Track) -> tuple[list[int], np.ndarray]:
    """A track's frames with its gaps bridged (union of the boxes either side), boxes ``(n, 4)``."""
    frames, boxes = [tr.frames[0]], [tr.boxes[0]]
    for t, box in zip(tr.frames[1:], tr.boxes[1:], strict=True):
        if t - frames[-1] > 1:
            both = np.concatenate([np.minimum(boxes[-1][:2], box[:2]), np.maximum(boxes[-1][2:], box[2:])])
            for g in range(frames[-1] + 1, t):
                frames.append(g)
                boxes.append(both)
        frames.append(t)
        boxes.append(box)
    return frames, np.stack(boxes)


def running_median(values: np.ndarray, size: int = MEDIAN_FRAMES) -> np.ndarray:
    """Median over ``size`` consecutive rows (centred; the window shrinks at the ends)."""
    half = size // 2
    n = len(values)
    return np.stack([np.median(values[max(0, i - half) : i + half + 1], axis=0) for i in range(n)]).astype(np.float32)


def smooth_tracks(per_frame: list[Boxes], min_frames: int, max_gap: int) -> list[Boxes]:
    """Per-frame boxes -> per-frame boxes with gaps bridged, short tracks dropped, edges steadied.

    Args:
        per_frame: boxes of each frame, ``(K_t, 4)``.
        min_frames: a track spanning fewer frames (first to last sighting) is dropped.
        max_gap: a track may be missing for up to this many frames in a row.
    """
    out: list[list[np.ndarray]] = [[] for _ in per_frame]
    for tr in _link(per_frame, max_gap):
        if tr.frames[-1] - tr.frames[0] + 1 < min_frames:
            continue
        frames, boxes = _filled(tr)
        for t, box in zip(frames, running_median(boxes), strict=True):
            out[t].append(box)
    return [np.array(b, np.float32).reshape(-1, 4) for b in out]


def boxes_mask(boxes: Boxes, width: int, height: int, pad: int) -> np.ndarray:
    """``(height, width) bool`` mask, True inside every box grown by ``pad`` px (clipped)."""
    m = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in np.asarray(boxes, np.float32).reshape(-1, 4):
        xa, ya = max(0, int(np.floor(x0)) - pad), max(0, int(np.floor(y0)) - pad)
        xb, yb = min(width, int(np.ceil(x1)) + pad), min(height, int(np.ceil(y1)) + pad)
        m[ya:yb, xa:xb] = True
    return m
