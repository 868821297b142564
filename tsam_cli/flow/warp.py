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
