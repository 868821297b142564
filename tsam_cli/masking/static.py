"""Static overlays (logos, channel bugs, timestamps, watermarks) -> one mask, from the video alone.

No model: an overlay is what stays put while the picture behind it changes. From ``samples``
frames spread over the video, at most ``analysis_size`` px on the long side, in colour
(a red logo on green grass can have the grass's brightness; sources in ``docs/masking.md``):

1. **Median gradients** (Dekel et al., "On the Effectiveness of Visible Watermarks", CVPR
   2017): the per-pixel median over time of the horizontal and vertical pixel
   differences. Edges of a moving scene point every way and their median is near zero; an
   overlay adds the same gradient to every frame - opaque or alpha-blended alike (a blended
   logo adds ``alpha * grad(logo)``) - and it survives.
2. **Change**: a pixel changes when its median absolute deviation over time is above
   ``--tolerance``. When under :data:`MIN_CHANGING` of the picture changes (a static camera
   on a static scene) overlay and scene cannot be told apart: :class:`MaskError` says so
   and suggests ``--box``.
3. **Candidates**: pixels whose median gradient is above :data:`EDGE_THRESHOLD`, closed
   (strokes of one logo join) and grouped when their boxes overlap (a ring and the letters
   inside it), groups of at least ``--min-area`` of the picture; the
   picture's own border and groups as wide or high as the picture (letterbox bars) are
   frame structure, not overlays. A group
   whose surroundings are mostly still *and* textured is a piece of a static scene (a
   wall in a fixed shot a person walks across), not an overlay, and is dropped.
4. **Shape** (Dekel et al., the "matted watermark"): around each candidate, the median
   gradients are integrated back into an image by solving Poisson's equation ``lap(W) =
   div(median gradient)`` with ``W = 0`` on the border of the crop (pure numpy: a sine
   transform diagonalises the Laplacian). ``W`` is the overlay's own contrast against
   the typical background: non-zero over the whole logo (the flat inside of a solid logo
   too, which has no edges of its own), zero between its strokes and around it. Done per
   colour channel, from the candidate's own gradients only (the background's leftovers
   would integrate into a slow drift); the mask is the largest ``|W|`` of the three above
   :data:`CONTRAST_FRACTION` of its peak (and at least :data:`MIN_CONTRAST`).
5. **Calm**: an overlay hides or damps the change behind it, so its pixels change less
   than the ring around them (:data:`CALM_RATIO`); straight scenery edges that survive the
   median because the camera pans along them change as much as their surroundings.

The mask is scaled to the video's size, grown by ``--pad`` px, and used for every frame.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tsam_cli.errors import InputError, MaskError
from tsam_cli.masking.options import StaticMaskOptions
from tsam_cli.ui import plural

#: fewer pixels than this changing (MAD over time above --tolerance): the scene is static,
#: nothing can be decided; a logo covers a few percent, a moving scene well over half
MIN_CHANGING = 0.25
#: candidate overlay edge: median pixel difference above this many levels. Measured in grey
#: on running_car at the analysis size: 0 in 99 % of the moving picture's pixels, 13 at its
#: 99.9th percentile; 28 / 44 on the edges of a 50 % / 80 % white watermark (90th percentile)
EDGE_THRESHOLD = 12.0
#: |W| (grey levels of the integrated overlay) below this is never overlay
MIN_CONTRAST = 6.0
#: ...and below this fraction of the part's peak |W| (99th percentile) neither. Mean IoU
#: with the logo on 9 tuning cases (3 logos on cotracker_bear, ta_cat_playing,
#: da_rollercoaster; not the benchmark's clips): 0.15 -> 0.828, 0.25 -> 0.889,
#: 0.35 -> 0.913, 0.45 -> 0.932, 0.55 -> 0.914, 0.65 -> 0.831
CONTRAST_FRACTION = 0.45
#: a part is a piece of static scene when this much of the ring around it is still and textured
RING_STILL = 0.5
#: an overlay's pixels change at most this fraction of what the ring around them does (the
#: median absolute deviations over time): blended logos measure 0.18-0.50 (50-80 % opacity),
#: opaque ones 0, scenery whose straight edges survive a pan 0.76-1.25 (aot_market_stall)
CALM_RATIO = 0.65
#: ring width around a part, closing radius of candidate edges, crop margin (analysis pixels)
RING = 6
CLOSE = 2
MARGIN = 8
#: edges this close to the picture's border are the frame's own (encoder padding, a border
#: line): ignored, as are parts spanning this much of the width or height (letterbox bars)
BORDER = 2
FRAME_SPAN = 0.9
#: candidate parts smaller than this (pixels) are noise of the median, not overlay strokes
MIN_PART = 4
#: fewer frames than this give no usable median
MIN_FRAMES = 8


def sample_indices(n_frames: int, samples: int) -> np.ndarray:
    """``min(samples, n_frames)`` frame indices spread evenly over ``[0, n_frames)``."""
    return np.unique(np.linspace(0, n_frames - 1, min(samples, n_frames)).round().astype(int))


def read_samples(info, opts: StaticMaskOptions, pts: list, reporter) -> np.ndarray:
    """``(S, h, w, 3) uint8`` RGB samples at the analysis size (coded orientation); every
    frame's timestamp is appended to ``pts`` (the whole video is decoded once)."""
    import cv2

    from tsam_cli.media import complete_frames

    keep = set(sample_indices(info.n_frames, opts.samples).tolist())
    scale = min(1.0, opts.analysis_size / max(info.width, info.height))
    size = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
    out = []
    reporter.start("find static", info.n_frames)
    for i, frame in enumerate(complete_frames(info)):  # a truncated input stops here, not silently
        pts.append(frame.pts)
        if i in keep:
            out.append(cv2.resize(frame.rgb, size, interpolation=cv2.INTER_AREA))
        reporter.advance("find static")
    if len(out) < MIN_FRAMES:
        raise InputError(f"{info.path} has {plural(len(out), 'frame')}: finding static overlays needs at least {MIN_FRAMES} "
                         "(give a longer video, or mark the overlay with --box)")
    return np.stack(out)


def median_gradients(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(S, h, w)`` one channel -> per-pixel medians over time of ``G[:, x+1] - G[:, x]``
    ``(h, w-1)`` and ``G[y+1] - G[y]`` ``(h-1, w)``."""
    plane = plane.astype(np.float32)
    return np.median(np.diff(plane, axis=2), axis=0), np.median(np.diff(plane, axis=1), axis=0)


def deviation(grey: np.ndarray) -> np.ndarray:
    """``(S, h, w)`` grey -> ``(h, w)`` median absolute deviation over time (grey levels)."""
    return np.median(np.abs(grey - np.median(grey, axis=0)), axis=0)


def changing(grey: np.ndarray, tolerance: float) -> np.ndarray:
    """``(h, w) bool``: the pixel's grey value deviates from its median by more than
    ``tolerance`` in at least half of the samples (median absolute deviation > tolerance)."""
    return deviation(grey) > tolerance


def _dst1(x: np.ndarray, axis: int) -> np.ndarray:
    """Unnormalised DST-I along ``axis``: ``y_k = sum_j x_j sin(pi j k / (n + 1))``, via an FFT
    of the odd extension ``[0, x, 0, -reversed(x)]``."""
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    z = np.zeros((*x.shape[:-1], 2 * (n + 1)))
    z[..., 1 : n + 1] = x
    z[..., n + 2 :] = -x[..., ::-1]
    return np.moveaxis(-np.fft.fft(z, axis=-1).imag[..., 1 : n + 1] / 2, -1, axis)


def solve_poisson(f: np.ndarray) -> np.ndarray:
    """``W`` with ``lap(W) = f`` (5-point Laplacian) on an ``(h, w)`` grid, ``W = 0`` just outside.

    The DST-I diagonalises the Dirichlet Laplacian, eigenvalues ``2 cos(pi k / (n + 1)) - 2``
    per axis; the DST-I is its own inverse up to ``2 / (n + 1)``."""
    h, w = f.shape
    ky = 2 * np.cos(np.pi * np.arange(1, h + 1) / (h + 1)) - 2
    kx = 2 * np.cos(np.pi * np.arange(1, w + 1) / (w + 1)) - 2
    spectrum = _dst1(_dst1(f.astype(np.float64), 0), 1) / (ky[:, None] + kx[None, :])
    return _dst1(_dst1(spectrum, 0), 1) * (4.0 / ((h + 1) * (w + 1)))


def _divergence(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Backward-difference divergence of forward-difference gradients: ``lap(W)`` when
    ``(gx, gy)`` are ``W``'s own differences."""
    h, w = gy.shape[0] + 1, gx.shape[1] + 1
    GX = np.zeros((h, w + 1), np.float32)
    GX[:, 1:-1] = gx
    GY = np.zeros((h + 1, w), np.float32)
    GY[1:-1] = gy
    return (GX[:, 1:] - GX[:, :-1]) + (GY[1:] - GY[:-1])


def _candidates(strength: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Closed parts of strong median gradient ``(h, w)``: ``(n, labels, stats)`` as OpenCV gives them."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * CLOSE + 1,) * 2)
    strong = (strength > EDGE_THRESHOLD).astype(np.uint8)
    strong[:BORDER], strong[-BORDER:], strong[:, :BORDER], strong[:, -BORDER:] = 0, 0, 0, 0
    closed = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, k)
    return cv2.connectedComponentsWithStats(closed, connectivity=8)[:3]


def _channel_fields(rgb: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``(S, h, w, 3)`` samples -> (largest median-gradient strength over the channels ``(h, w)``,
    each channel's median gradients ``(gx, gy)``)."""
    strength, grads = None, []
    for c in range(rgb.shape[3]):
        gx, gy = median_gradients(rgb[..., c])
        s = np.hypot(np.pad(gx, ((0, 0), (0, 1))), np.pad(gy, ((0, 1), (0, 0))))
        strength = s if strength is None else np.maximum(strength, s)
        grads.append((gx, gy))
    return strength, grads


def _contrast(grads, part: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``|W|`` over the crop ``box = (x0, y0, x1, y1)``, the largest over the channels, from the
    median gradients on the (1 px grown) candidate ``part`` only: the background's leftover
    median gradients elsewhere would be integrated into a slow drift."""
    import cv2

    x0, y0, x1, y1 = box
    keep = cv2.dilate(part.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    keep_x, keep_y = keep[:, :-1] | keep[:, 1:], keep[:-1] | keep[1:]
    fields = []
    for gx, gy in grads:
        div = _divergence(gx[y0:y1, x0 : x1 - 1] * keep_x, gy[y0 : y1 - 1, x0:x1] * keep_y)
        fields.append(np.abs(solve_poisson(div)))
    return np.max(fields, axis=0)


def _still_textured(grey: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """``(h, w) bool``: pixels that do not change yet have edges in the frames (static scene)."""
    dx = np.abs(np.diff(grey, axis=2)).mean(axis=0)[:-1]
    dy = np.abs(np.diff(grey, axis=1)).mean(axis=0)[:, :-1]
    return np.pad(~moving[:-1, :-1] & (np.hypot(dx, dy) > EDGE_THRESHOLD / 2), ((0, 1), (0, 1)))


def _static_scene(part: np.ndarray, still_textured: np.ndarray) -> bool:
    """Is the ring around ``part`` (a crop's bool map) mostly still, textured scene?"""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING + 1,) * 2)
    ring = (cv2.dilate(part.astype(np.uint8), k) > 0) & ~part
    return bool(ring.any()) and still_textured[ring].mean() >= RING_STILL


def _calmer_than_around(piece: np.ndarray, dev: np.ndarray, tolerance: float) -> bool:
    """Does the overlay ``piece`` (a crop's bool map) change clearly less than the ring around
    it? An overlay hides (opaque) or damps (blended: by ``1 - alpha``) the change behind it;
    scenery whose edges survive the median - straight edges along the direction of a pan -
    changes as much as its surroundings. A ring that barely changes (sky) cannot tell: kept."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING + 1,) * 2)
    ring = (cv2.dilate(piece.astype(np.uint8), k) > 0) & ~piece
    around = float(np.median(dev[ring])) if ring.any() else 0.0
    return around <= tolerance or float(np.median(dev[piece])) <= CALM_RATIO * around


def group_parts(stats: np.ndarray, parts: list[int], gap: int) -> list[list[int]]:
    """The candidate labels ``parts`` grouped by overlapping bounding boxes (grown by ``gap``),
    transitively: the outer edge of a logo's ring and the letters inside it are separate parts
    but one overlay, and integrating one without the other fills the ring's inside. tsam
    groups overlapping boxes only (``gap`` 0): with a gap, edges of the scene next to a logo
    chain into it (a frame-wide chain is then dropped as frame structure, logo included)."""
    boxes = [(x - gap, y - gap, x + w + gap, y + h + gap) for x, y, w, h, _ in stats[parts]]
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(parts):
        groups.setdefault(root(i), []).append(k)
    return list(groups.values())


def _group_mask(group: list[int], labels, stats, grads, fields, opts) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Crop box and overlay mask of a group of candidates, or None when it is not an overlay.
    ``fields``: ``(still_textured, deviation)`` maps ``(h, w)``."""
    h, w = labels.shape
    st = stats[group]
    x, y = st[:, 0].min(), st[:, 1].min()
    bw, bh = (st[:, 0] + st[:, 2]).max() - x, (st[:, 1] + st[:, 3]).max() - y
    if st[:, 4].sum() < opts.min_area * h * w or bw >= FRAME_SPAN * w or bh >= FRAME_SPAN * h:
        return None  # too small, or frame structure (letterbox bar edge, border line): not an overlay
    x0, y0, x1, y1 = max(0, x - MARGIN), max(0, y - MARGIN), min(w, x + bw + MARGIN), min(h, y + bh + MARGIN)
    part = np.isin(labels[y0:y1, x0:x1], group)
    still_textured, dev = (f[y0:y1, x0:x1] for f in fields)
    if _static_scene(part, still_textured):
        return None
    contrast = _contrast(grads, part, (x0, y0, x1, y1))
    piece = contrast > max(MIN_CONTRAST, CONTRAST_FRACTION * np.percentile(contrast, 99))
    if not piece.any() or not _calmer_than_around(piece, dev, opts.tolerance):
        return None
    return (x0, y0, x1, y1), piece


def overlay_mask(rgb: np.ndarray, opts: StaticMaskOptions) -> np.ndarray:
    """``(S, h, w, 3) uint8`` samples -> ``(h, w) bool`` overlay mask at the analysis size.

    Raises :class:`MaskError` when the picture barely changes (cannot decide) or nothing
    static is found."""
    grey = rgb.mean(axis=3, dtype=np.float32)
    dev = deviation(grey)
    moving = dev > opts.tolerance
    if moving.mean() < MIN_CHANGING:
        raise MaskError(
            f"only {moving.mean():.0%} of the picture changes over the video (a static camera on a static scene?): "
            "a static overlay cannot be told from the scene - mark it with --box x,y,w,h or a --mask image instead"
        )
    fields = (_still_textured(grey, moving), dev)
    del grey
    strength, grads = _channel_fields(rgb)
    n, labels, stats = _candidates(strength)
    out = np.zeros(strength.shape, bool)
    parts = [k for k in range(1, n) if stats[k, 4] >= MIN_PART]  # specks of noise would chain groups
    for group in group_parts(stats, parts, 0):
        found = _group_mask(group, labels, stats, grads, fields, opts)
        if found is not None:
            (x0, y0, x1, y1), piece = found
            out[y0:y1, x0:x1] |= piece
    if not out.any():
        raise MaskError("no static overlay found (nothing keeps its edges while the picture changes): "
                        "mark it with --box x,y,w,h, or lower --min-area for a very small one")
    return out


class StaticMasks:
    """One overlay mask for every frame, ``(mask, pts)`` when iterated (coded orientation).
    ``mask``: ``(H, W) bool``; ``summary``: one line for the user."""

    def __init__(self, mask: np.ndarray, pts: list) -> None:
        self.mask, self.pts = mask, pts
        self.summary = f"static overlay covers {mask.mean():.1%} of the picture"

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        for p in self.pts:
            yield self.mask, p


def static_masks(info, opts: StaticMaskOptions, reporter) -> StaticMasks:
    """Find the static overlay of ``info`` (see the module); the masks to stream."""
    import cv2

    opts.validate()
    pts: list = []
    small = overlay_mask(read_samples(info, opts, pts, reporter), opts)
    mask = cv2.resize(small.astype(np.float32), (info.width, info.height), interpolation=cv2.INTER_LINEAR) >= 0.5
    if opts.pad:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * opts.pad + 1,) * 2)
        mask = cv2.dilate(mask.astype(np.uint8), k) > 0
    return StaticMasks(mask, pts)
