"""The flows of one pair of neighbouring frames: estimated both ways, completed in the
holes, with validity masks (:func:`pair_flow`, paper §3.2 and Eq. 2).

For a pair ``(t, t+1)``: ``fwd`` is the flow t -> t+1 on frame t's grid, ``bwd`` the flow
t+1 -> t on frame t+1's grid (the official TSAM code's convention, docs/official-checkpoint.md
fact 31).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsam_cli.flow.beyond import picture_flows
from tsam_cli.flow.complete import DEFAULT_MOTION, FLOW_MARGIN, complete_flow, untrusted
from tsam_cli.flow.validity import nearest_outside, same_layer, validity
from tsam_cli.flow.warp import bounding_box, grow, resized_part
from tsam_cli.options import DEFAULT_DELTA  # paper Eq. 2's delta, defined and explained there


@dataclass
class PairFlow:
    """Flows and validity for frames (t, t+1): fwd/valid_f on t's grid, bwd/valid_b on t+1's."""

    fwd: np.ndarray
    bwd: np.ndarray
    valid_f: np.ndarray
    valid_b: np.ndarray


def pair_flow(estimator, img_a: np.ndarray, img_b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray,
              delta: float = DEFAULT_DELTA, motion=None,
              outside: tuple[np.ndarray, np.ndarray] | None = None) -> PairFlow:
    """Flow both ways between two frames, completed inside the holes, with validity masks.

    Flow inside a hole describes the object being removed, not the background behind it,
    so it is discarded (with a ``FLOW_MARGIN`` band around the hole, and the vectors matched
    into the other frame's hole: :func:`untrusted`) and re-filled (:func:`complete_flow`: the
    background's motion where the hole's border holds it, else a smooth fill from the border's
    other motion) before the consistency check. Validity is
    paper Eq. 2 (:func:`validity`), and additionally a completed vector must not land on a
    known pixel whose own measured flow belongs to another motion layer (:func:`same_layer`).

    Args:
        estimator: ``(img1, img2) -> (H, W, 2) float32`` flow (:func:`make_estimator`).
        img_a, img_b: ``(H, W, 3) uint8`` RGB frames t and t+1.
        hole_a, hole_b: ``(H, W) bool``, True = hole.
        delta: Eq. 2 threshold in pixels.
        motion: background-motion estimator (:class:`GlobalMotion`); ``None`` = the default
            (:data:`DEFAULT_MOTION`), ``False`` = none (every hole gets :func:`smooth_fill`).
        outside: outpainting: ``(out_a, out_b)`` ``(H, W) bool``, True = outside the picture
            (part of the holes); completed from the background model there in both directions.
    """
    motion = (DEFAULT_MOTION if motion is None else motion) or None
    out_a, out_b = outside if outside is not None else (None, None)
    img_a, img_b = hidden(img_a, hole_a, out_a), hidden(img_b, hole_b, out_b)
    if outside is not None:  # outpainting: measured on the picture, not the edge-replicated canvas
        raw_f, raw_b = picture_flows(estimator, img_a, img_b, *outside)
    else:
        raw_f, raw_b = estimator(img_a, img_b), estimator(img_b, img_a)
    grown_a, grown_b = grow(hole_a, FLOW_MARGIN), grow(hole_b, FLOW_MARGIN)
    any_hole = grown_a.any() or grown_b.any()
    model_f = motion(raw_f, ~grown_a) if motion is not None and any_hole else None
    model_b = motion(raw_b, ~grown_b) if motion is not None and any_hole else None
    reg_a = untrusted(grown_a, raw_f, grown_b, raw_b, model_f, delta)
    reg_b = untrusted(grown_b, raw_b, grown_a, raw_f, model_b, delta)
    fwd, bwd = complete_flow(raw_f, reg_a, model_f, out_a), complete_flow(raw_b, reg_b, model_b, out_b)
    meas_f, meas_b = nearest_outside(raw_f, reg_a), nearest_outside(raw_b, reg_b)
    valid_f = validity(fwd, bwd, delta) & same_layer(fwd, meas_b, reg_a, hole_b)
    valid_b = validity(bwd, fwd, delta) & same_layer(bwd, meas_f, reg_b, hole_a)
    return PairFlow(fwd, bwd, valid_f, valid_b)


#: :func:`hidden` fills the hole from the known pixels within this many pixels of the holes'
#: bounding box (more than DIS's 8 px patch, so every patch that overlaps a hole sees a fill
#: made from its own neighbourhood); the rest of the frame is not looked at, which keeps the
#: cost at the box's size.
HIDE_REACH = 16


def hidden(img: np.ndarray, hole: np.ndarray, outside: np.ndarray | None = None) -> np.ndarray:
    """The frame as the flow estimator sees it: each hole pixel takes the colour of the nearest
    known pixel (:func:`nearest_outside`), so the object being removed is not there to be tracked.

    DIS matches patches and smooths its field coarse to fine, so a moving object drags the
    flow of the background around it along with it, beyond ``FLOW_MARGIN``. Those vectors fail
    the layer check (:func:`same_layer`) against the completed flow and cut the propagation
    chains next to the hole, which leaves that area to the filler, and the filler flickers.
    Measured on removal composites in docs/benchmarks.md, "The hole hidden from the flow estimator".

    Args:
        img: ``(H, W, 3) uint8`` RGB frame; ``hole`` ``(H, W) bool``, True = hole.
        outside: outpainting: ``(H, W) bool``, True = outside the picture; left as it is (it is
            never measured: :func:`picture_flows`).
    Returns ``(H, W, 3) uint8``: a copy, or ``img`` itself when nothing is to be hidden.
    """
    region = hole & ~outside if outside is not None else hole
    box = bounding_box(region, HIDE_REACH)
    if box is None:
        return img
    y0, y1, x0, x1 = box
    out = img.copy()
    out[y0:y1, x0:x1] = nearest_outside(img[y0:y1, x0:x1], region[y0:y1, x0:x1])
    return out


def still_pair_flow(shape: tuple[int, int]) -> PairFlow:
    """The pair flow of two frames one of which is a hole everywhere (``shape`` = (H, W)):
    nothing of that frame can be tracked, so it gets what a still camera would give, every
    pixel to the same place, all valid; propagation then fills it from its neighbours like any
    other frame instead of leaving it to a filler that has nothing to start from."""
    zero = np.zeros((*shape, 2), np.float32)
    ones = np.ones(shape, bool)
    return PairFlow(zero, zero.copy(), ones, ones.copy())


def unlinked_pair_flow(shape: tuple[int, int]) -> PairFlow:
    """Zero flow with nothing valid (``shape`` = (H, W)): stands for a pair no flow links (two
    hole-free frames, where nothing is ever sampled, or a shot cut)."""
    zero = np.zeros((*shape, 2), np.float32)
    none = np.zeros(shape, bool)
    return PairFlow(zero, zero, none, none)


def upscale_pair_flow(pf: PairFlow, size: tuple[int, int], box: tuple[int, int, int, int] | None = None) -> PairFlow:
    """A pair flow computed at a small size, brought to ``size = (W, H)``.

    Vectors are resized bilinearly and scaled by the size ratio (a vector of 1 px at half
    size is 2 px at full size); validity masks are resized with nearest neighbour.
    ``box = (y0, y1, x0, x1)`` of the full size: only a part covering it is resized (zero flow,
    nothing valid elsewhere; for propagation, which reads its holes' box only), each pixel
    exactly as resizing the whole gives it; see :func:`tsam_cli.flow.warp.resized_part`.
    """
    import cv2

    h, w = pf.fwd.shape[:2]
    W, H = size
    scale = np.array([W / w, H / h], np.float32)

    def part(a, interp):
        resized, (dy0, dx0) = resized_part(a, (W, H), box, interp)
        if resized.shape[:2] == (H, W):  # the whole frame: no part to place
            return resized
        out = np.zeros((H, W) + a.shape[2:], a.dtype)
        out[dy0:dy0 + resized.shape[0], dx0:dx0 + resized.shape[1]] = resized
        return out

    def vec(f):
        return part(f, cv2.INTER_LINEAR) * scale

    def val(v):
        return part(v.astype(np.uint8), cv2.INTER_NEAREST) > 0

    return PairFlow(vec(pf.fwd), vec(pf.bwd), val(pf.valid_f), val(pf.valid_b))
