"""Validity of flow correspondences: paper Eq. 2 (forward-backward consistency) and the
motion-layer check of completed vectors (docs/design.md, "Flow completion", step 4).

Flows are ``(H, W, 2) float32`` in pixels; masks ``(H, W) bool``. A valid pixel of frame a
may copy its colour from where its vector lands in frame b.
"""

from __future__ import annotations

import numpy as np

from tsam_cli.flow.warp import bounding_box, in_bounds, magnitude, sample
from tsam_cli.options import DEFAULT_DELTA  # paper Eq. 2's delta, defined and explained there


def validity(flow_ab: np.ndarray, flow_ba: np.ndarray, delta: float = DEFAULT_DELTA,
             at: tuple[int, int] | None = None) -> np.ndarray:
    """Forward-backward cycle consistency, paper Eq. 2.

    A pixel ``A`` of image a is valid when its flow lands inside image b and coming back
    with b's flow returns within ``delta`` pixels: ``|| F_ab(A) + F_ba(A + F_ab(A)) || < delta``.

    Args:
        flow_ab: ``(H, W, 2)`` flow a -> b on a's grid.
        flow_ba: ``(H, W, 2)`` flow b -> a on b's grid.
        at: ``flow_ab`` is the crop ``(h, w, 2)`` of a's grid whose top-left pixel is ``at = (y0,
            x0)``: the result is that crop, each pixel as the whole frame gives it.
    Returns:
        ``(H, W) bool`` on a's grid (or the crop), True = valid correspondence.
    """
    back = sample(flow_ba, flow_ab, at=at)
    err = magnitude(flow_ab + back)
    return (err < delta) & in_bounds(flow_ab, at, flow_ba.shape[:2])


#: A completed vector that lands on a known pixel whose measured flow is farther than this (px)
#: from the way back is on another motion layer: not valid (:func:`same_layer`). Twice Eq. 2's
#: delta, as a margin: the flow read there is bilinear across the layer edge. Summed hole PSNR
#: for 1.5 / 2 / 3 / 5 px: 209.1 / 208.4 / 207.4 / 206.9 dB, without the check 195.4 dB (bmx-trees
#: ring around the rider: 23.3 vs 18.1 dB); 1.5 gains only on one case (a hole inside the rider).
LAYER_TOL = 2.0
#: :func:`same_layer` judges a landing point by its known bilinear neighbours when they weigh
#: more than this (propagation blends their colour in with that weight, so this caps how much
#: of another layer's colour can leak in). 0.01 judges hole pixels by a sliver of the subject
#: below them and cuts the pan clip's chains (29.8 dB vs 36.8); 0.1 / 0.25 / 0.5 / 0.999 sum to
#: 208.3 / 208.4 / 208.5 / 208.7 dB, but from 0.5 up a landing 91% on the subject passes.
LAYER_MIN_WEIGHT = 0.25


def nearest_outside(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``values`` with each pixel of ``region`` replaced by the value at the nearest pixel outside it.

    Nearest by ``cv2.distanceTransformWithLabels`` (L2, 5x5 mask, ``DIST_LABEL_PIXEL``: the
    zero pixels are labelled 1..N in raster order, checked in tests/test_flow_completion.py).

    Args:
        values: ``(H, W, C)`` array.
        region: ``(H, W) bool``, True = replace.
    Returns:
        ``(H, W, C)``, ``values`` itself when ``region`` is empty or covers everything.
    """
    if not region.any() or region.all():
        return values
    # The region's box grown by the 5x5 mask's reach has a ring of outside pixels all round it
    # (or the frame's edge), and the nearest outside pixel of a region pixel is never beyond
    # that ring: so the labels are computed on that box only, each the same as on the frame
    y0, y1, x0, x1 = bounding_box(region, 2)
    if (y1 - y0, x1 - x0) == region.shape:
        return _nearest_outside(values, region)
    out = values.copy()
    out[y0:y1, x0:x1] = _nearest_outside(values[y0:y1, x0:x1], region[y0:y1, x0:x1])
    return out


def _nearest_outside(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    """:func:`nearest_outside` of the whole of ``values`` (``region`` neither empty nor all)."""
    import cv2

    zero = (~region).astype(np.uint8)  # distanceTransform measures to the nearest 0 pixel
    _, labels = cv2.distanceTransformWithLabels(1 - zero, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    outside = np.flatnonzero(zero.ravel())
    flat = values.reshape(-1, values.shape[-1])
    return flat[outside[labels.ravel() - 1]].reshape(values.shape)


def same_layer(flow_ab: np.ndarray, measured_ba: np.ndarray, completed_a: np.ndarray, hole_b: np.ndarray,
               tol: float = LAYER_TOL) -> np.ndarray:
    """False where a completed correspondence lands on a pixel of another motion layer.

    For ``A`` in ``completed_a`` whose target ``B = A + flow_ab(A)`` touches a known pixel of b
    (one of its 4 bilinear neighbours is outside ``hole_b``: propagation would blend that pixel's
    colour in), the flow *measured* at ``B`` must lead back:
    ``|| flow_ab(A) + measured_ba(B) || < tol``. Eq. 2 alone does not see a conflict when ``B``
    lies in b's ``FLOW_MARGIN`` band (b's flow was completed there too, and agrees with a's);
    ``measured_ba`` is b's raw flow with its band taken from the nearest pixel outside the band
    (:func:`nearest_outside`), because the raw band vectors mix in the removed object's motion.
    Elsewhere (outside ``completed_a``, or ``B`` in the hole) the result is True: Eq. 2 decides.

    Args:
        flow_ab: ``(H, W, 2)`` completed flow a -> b on a's grid.
        measured_ba: ``(H, W, 2)`` measured flow b -> a on b's grid (see above).
        completed_a: ``(H, W) bool``, True = ``flow_ab`` was completed there.
        hole_b: ``(H, W) bool``, True = hole in b.
    Returns:
        ``(H, W) bool`` on a's grid, True = no layer conflict.
    """
    box = bounding_box(completed_a)
    out = np.ones(completed_a.shape, bool)
    if box is None:
        return out
    y0, y1, x0, x1 = box  # only completed pixels are judged: sample their box of b (exactly as the whole)
    flow, at = flow_ab[y0:y1, x0:x1], (y0, x0)
    known_b = (~hole_b).astype(np.float32)
    weight = sample(known_b, flow, at=at)  # bilinear weight of b's known pixels at B
    judged = completed_a[y0:y1, x0:x1] & (weight > LAYER_MIN_WEIGHT)
    d = flow + sample(measured_ba * known_b[..., None], flow, at=at) / np.maximum(weight, 1e-6)[..., None]
    out[y0:y1, x0:x1] = ~(judged & (d[..., 0] ** 2 + d[..., 1] ** 2 >= tol * tol))
    return out
