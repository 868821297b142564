"""Tensor helpers of the flow stage: grow a hole, sample an image along a flow, bounds.

Arrays are numpy at the processing resolution; holes ``(H, W) bool`` (True = hole); flows
``(H, W, 2) float32`` in pixels.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def grid(h: int, w: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(gx, gy)``, each ``(h, w)`` of ``dtype``: every pixel's own x and y (``np.meshgrid``).
    Cached and read-only: every sampling and model evaluation of a run needs the same ones."""
    gx, gy = np.meshgrid(np.arange(w, dtype=dtype), np.arange(h, dtype=dtype))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the bounding box of ``mask`` ``(H, W) bool`` grown by ``margin`` px and
    clipped to the frame (``mask[y0:y1, x0:x1]`` holds every True pixel); None when it has none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    H, W = mask.shape
    return (max(0, int(rows[0]) - margin), min(H, int(rows[-1]) + margin + 1),
            max(0, int(cols[0]) - margin), min(W, int(cols[-1]) + margin + 1))


def grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate a ``(H, W) bool`` mask by ``pixels`` (square kernel); returns a new mask."""
    import cv2

    if pixels <= 0 or not hole.any():
        return hole
    return cv2.dilate(hole.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0


def _grid_of(flow: np.ndarray, at: tuple[int, int] | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The positions of ``flow``'s pixels: its own grid, or (``at`` = its top-left ``(y0, x0)``
    in an image of ``size`` = ``(H, W)``) that crop of the image's grid (the same float32 values)."""
    h, w = flow.shape[:2]
    if at is None:
        return grid(h, w)
    (y0, x0), (H, W) = at, size
    gx, gy = grid(H, W)
    return gx[y0:y0 + h, x0:x0 + w], gy[y0:y0 + h, x0:x0 + w]


def sample(img: np.ndarray, flow: np.ndarray, interpolation: int | None = None,
           at: tuple[int, int] | None = None) -> np.ndarray:
    """Backward-warp: ``out[y, x] = img[y + dy, x + dx]`` (bilinear; zeros outside).

    Args:
        img: ``(H, W[, C])`` float32 (or uint8) image on the target grid.
        flow: ``(H, W, 2) float32`` pointing from the output grid into ``img``; with ``at``,
            the flow of a crop ``(h, w, 2)`` of that grid whose top-left pixel is ``at = (y0, x0)``
            (the output is that crop, each pixel exactly as sampling the whole grid gives it).
    """
    import cv2

    gx, gy = _grid_of(flow, at, img.shape[:2])
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    interp = cv2.INTER_LINEAR if interpolation is None else interpolation
    return cv2.remap(img, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def magnitude(v: np.ndarray) -> np.ndarray:
    """Length of 2-vectors along the last axis (``(..., 2)`` -> ``(...)``, same dtype): the same
    numbers as ``np.linalg.norm(v, axis=-1)`` (x*x + y*y summed in that order, then sqrt), about
    7x faster on a flow field, where numpy's reduction over a length-2 axis is slow."""
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1])


def in_bounds(flow: np.ndarray, at: tuple[int, int] | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W) bool``: True where ``p + flow(p)`` lands inside the image (bilinear-safe); with
    ``at`` and ``size = (H, W)``, for the crop of an ``H x W`` grid at ``at`` (as :func:`sample`)."""
    h, w = size or flow.shape[:2]
    gx, gy = _grid_of(flow, at, (h, w))
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def resized_part(a: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int] | None,
                 interpolation: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of ``cv2.resize(a, size)`` (``size = (W, H)``) that covers ``box = (y0, y1, x0,
    x1)`` of the output, computed from the part of ``a`` it reads only, each pixel exactly as
    resizing the whole gives it (:func:`_source_span`); the whole output when ``box`` is None or
    the ratio does not allow it. Returns ``(part (h, w[, C]), (y, x) of its first pixel)``."""
    import cv2

    W, H = size
    (sy0, sy1, dy0, dy1), (sx0, sx1, dx0, dx1) = _source_span(box, a.shape[:2], (H, W))
    if (sy0, sy1, sx0, sx1) == (0, a.shape[0], 0, a.shape[1]):
        return cv2.resize(a, (W, H), interpolation=interpolation).reshape((H, W) + a.shape[2:]), (0, 0)
    part = cv2.resize(a[sy0:sy1, sx0:sx1], (dx1 - dx0, dy1 - dy0), interpolation=interpolation)
    return part.reshape((dy1 - dy0, dx1 - dx0) + a.shape[2:]), (dy0, dx0)


def _source_span(box, small: tuple[int, int], full: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """Per axis ``(s0, s1, d0, d1)``: the source rows (columns) ``s0..s1`` whose resize is the
    full-size ``d0..d1``, which covers ``box`` (the whole axis when ``box`` is None).

    OpenCV maps output pixel ``d`` to source ``(d + 0.5) * n / N - 0.5`` (``n`` source, ``N`` output
    pixels). A part starting at source ``s0`` and output ``d0 = s0 * N / n``, of sizes in the same
    ratio, maps its pixels to the same source positions less ``s0``: exactly, when ``n / N`` has a
    power-of-two denominator (2x, 4x, 4/3x: the float arithmetic is then exact; a 3/2x upscale
    differed by 1e-4 in a trial) and ``s0`` is a multiple of ``N / n``'s denominator. Two source
    pixels of margin before and three after keep the bilinear footprint (and the cubic one, source
    pixels -1 .. +2) off the part's edges; otherwise the whole axis.
    """
    from fractions import Fraction

    spans = []
    for axis, (n, N) in enumerate(zip(small, full, strict=True)):
        ratio, lo, hi = Fraction(N, n), (None if box is None else box[2 * axis]), (None if box is None else box[2 * axis + 1])
        inv = Fraction(n, N).denominator
        if lo is None or inv & (inv - 1):  # no box, or a ratio whose float arithmetic is inexact
            spans.append((0, n, 0, N))
            continue
        q = ratio.denominator
        s0 = max(0, (int(lo / ratio) - 2) // q * q)
        s1 = min(n, -(-(int(hi / ratio) + 3) // q) * q)
        spans.append((s0, s1, int(s0 * ratio), N if s1 == n else int(s1 * ratio)))
    return tuple(spans)
