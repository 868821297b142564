"""Flow completion inside holes by motion layers (docs/design.md, "Flow completion").

Flow measured inside a hole describes the object being removed, not what lies behind it: it
is discarded (:func:`untrusted`) and filled again (:func:`complete_flow`) with the
background's motion model (:class:`GlobalMotion`) where the hole's border follows it, else
smoothly from the border (:func:`smooth_fill`). Flows ``(H, W, 2) float32``; holes
``(H, W) bool``, True = hole.
"""

from __future__ import annotations

import numpy as np

from tsam_cli.flow.validity import validity
from tsam_cli.flow.warp import bounding_box, grid, grow, magnitude, resized_part, sample
from tsam_cli.options import DEFAULT_DELTA  # paper Eq. 2's delta, defined and explained there

#: Flow is also discarded in a band of this many pixels around each hole before completion:
#: DIS matches 8x8 patches (medium preset), so vectors next to a moving object are a mix of
#: the object's and the background's motion.
FLOW_MARGIN = 6


def smooth_fill(values: np.ndarray, hole: np.ndarray, smooth_iters: int = 4,
                read: np.ndarray | None = None) -> np.ndarray:
    """Fill ``values`` inside ``hole`` smoothly from the hole boundary (push-pull).

    A pyramid of hole-aware averages is built down to a few pixels ("push"), then each
    level's missing pixels take the upsampled coarser level ("pull"); a few masked blurs
    remove the pyramid's blockiness. Outside the hole the values are returned unchanged.

    Args:
        values: ``(H, W, C) float32`` (e.g. a flow field, C = 2).
        hole: ``(H, W) bool``, True = unknown.
        read: ``(H, W) bool``, the hole pixels the caller will read (default: all). Only those
            are filled then (each exactly as without ``read``); other hole pixels are left
            unspecified.
    Returns:
        ``(H, W, C) float32`` (a new array).
    """
    import cv2

    if not hole.any():
        return values
    known = (~hole).astype(np.float32)
    if not known.any():
        return np.zeros_like(values)
    # Only hole pixels change, and each blur reads 2 px around them (known pixels are put back
    # after every blur): so the finest level and the blurs work on the box of what is read,
    # grown by 2 px (the whole hole) or by 2 px a blur more (only ``read``: a crop's edge spoils
    # 2 px more at every blur), which gives those pixels exactly what the whole frame does
    # (OpenCV's 5x5 blur of a crop equals the crop of the blur away from the crop's edges), at a
    # fraction of the cost for small holes
    if read is None:
        box = bounding_box(hole, SMOOTH_REACH)
    else:
        box = bounding_box(read & hole, SMOOTH_REACH * (smooth_iters + 1))
        if box is None:
            return values.astype(np.float32)
    y0, y1, x0, x1 = box
    part = values[y0:y1, x0:x1]
    est = _push_pull(values, known, box)
    # the mask repeated per channel: np.where is ~3x faster with it than broadcasting (h, w, 1)
    hole_c = np.repeat(hole[y0:y1, x0:x1, None], values.shape[2], axis=2)
    out = np.where(hole_c, est, part).astype(np.float32, copy=False)
    for _ in range(smooth_iters):
        blurred = cv2.blur(out, (5, 5)).reshape(out.shape)
        out = np.where(hole_c, blurred, part).astype(np.float32, copy=False)
    if out.shape[:2] == values.shape[:2]:  # the box is the whole frame (outpainting's strips)
        return out
    whole = values.astype(np.float32)  # a copy
    whole[y0:y1, x0:x1] = out
    return whole


#: px a 5x5 blur reads around a pixel (:func:`smooth_fill`)
SMOOTH_REACH = 2


def _push_pull(values: np.ndarray, known: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """:func:`smooth_fill`'s pyramid: ``(h, w, C) float32`` estimate of ``values`` on ``box`` =
    ``(y0, y1, x0, x1)`` from its ``known`` (``(H, W) float32``, 1 = known) pixels everywhere."""
    import cv2

    nums, weights = [values * known[..., None]], [known]
    while min(nums[-1].shape[:2]) > 4:
        h, w = nums[-1].shape[:2]
        size = ((w + 1) // 2, (h + 1) // 2)
        n = cv2.resize(nums[-1], size, interpolation=cv2.INTER_AREA)
        k = cv2.resize(weights[-1], size, interpolation=cv2.INTER_AREA)
        nums.append(n.reshape(size[1], size[0], -1))
        weights.append(k)
    # coarsest level: normalised average, missing pixels take the global mean (summed only
    # when some are missing: a sum over the whole frame is a third of this function's time)
    k = weights[-1][..., None]
    est = nums[-1] / np.maximum(k, 1e-6)
    if not (k > 1e-6).all():
        est = np.where(k > 1e-6, est, nums[0].sum(axis=(0, 1)) / max(known.sum(), 1.0))
    for n, k in zip(reversed(nums[1:-1]), reversed(weights[1:-1]), strict=True):
        h, w = n.shape[:2]
        est = _pull(n, k, cv2.resize(est, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1))
    y0, y1, x0, x1 = box
    if len(nums) == 1:  # a frame of a few pixels: the coarsest level is the finest
        return est[y0:y1, x0:x1]
    h, w = nums[0].shape[:2]  # the finest level is needed on the box only
    up, (ay, ax) = resized_part(est, (w, h), box, cv2.INTER_LINEAR)
    ph, pw = up.shape[:2]
    est = _pull(nums[0][ay:ay + ph, ax:ax + pw], weights[0][ay:ay + ph, ax:ax + pw], up)
    return est[y0 - ay:y1 - ay, x0 - ax:x1 - ax]


def _pull(n: np.ndarray, k: np.ndarray, up: np.ndarray) -> np.ndarray:
    """One pull step: the local known average ``n / k`` (``(h, w, C)``, ``(h, w)``) blended with
    the coarser estimate ``up`` (``(h, w, C)``, changed in place) by the known fraction ``k``:
    ``k * (n / max(k, 1e-6)) + (1 - k) * up``, computed in place (the same products)."""
    k3 = k[..., None]
    est = np.divide(n, np.maximum(k3, 1e-6))
    est *= k3
    up *= 1 - k3
    est += up
    return est


# --- flow completion by motion layers -------------------------------------------------------
#
# On a camera pan the camera follows a subject: the background moves by several px/frame while
# the subject stays nearly still. A hole in the background next to the subject has both motions
# on its border, and a smooth fill from that border is neither. So the dominant motion of the
# frame (the background's, on such shots) is fitted as one parametric model, and a hole whose
# border partly follows it is filled with that model (corrected by what the agreeing border
# pixels measure); other holes are filled smoothly from the border pixels that do *not* follow
# it (a hole inside a moving object follows the object, unmixed with the background).
# Motion layers as in Wang & Adelson, "Representing moving images with layers", IEEE TIP 3(5),
# 1994; dominant motion by a robust parametric fit as in Odobez & Bouthemy, "Robust
# multiresolution estimation of parametric motion models", JVCIR 6(4), 1995; RANSAC: Fischler
# & Bolles, CACM 24(6), 1981. Every constant below was measured on 11 cases (the pan test clip,
# bmx-trees and schoolgirls with hole rings around / inside the subject, four clips with a box
# over the subject; hole PSNR after propagation + Telea, summed): docs/design.md, "Flow completion".

#: Grid step (px) of the flow vectors the background model is fitted to: one per DIS patch
#: (8 x 8 in the medium preset), so neighbouring samples mostly come from different patches.
#: At 432x240 that is ~1600 samples.
MOTION_GRID = 8
#: Fewer samples outside the holes than this: no model (plain smooth fill). An affine map needs
#: 3 point pairs, a homography 4; RANSAC needs many more to tell a dominant motion from noise.
MOTION_MIN_SAMPLES = 24
#: A flow vector *follows* a model when it is within this many pixels of the model's vector
#: (also the RANSAC reprojection threshold): the same 1 px as Eq. 2's delta, "a correspondence
#: off by more than a pixel smears detail" (tsam_cli/options.py).
LAYER_INLIER_TOL = 1.0
#: Width (px) of the ring just outside each grown hole whose vectors are compared with the model.
BORDER_RING = 4
#: A hole is filled from the background model when at least this fraction of its border ring
#: follows the model: the hole straddles a motion boundary, and the background is what lies
#: behind everything else. Below it, the hole is taken to lie inside another moving surface.
#: Summed hole PSNR for 0.1 / 0.25 / 0.4 / 0.5 / 0.75: 202.8 / 208.4 / 207.7 / 207.9 / 201.8 dB
#: (before this work: 178.5); the pan and ring cases are the same from 0.1 to 0.5.
MIN_BACKGROUND_BORDER = 0.25


#: A hole pixel that another motion layer surrounds closely (known pixels of that layer within
#: about this radius on opposite sides: a thin stroke across a moving object) lies on that layer,
#: not on the background, whatever the hole's border says overall. Found by closing the other
#: layer's known pixels (after an opening of radius 2 drops isolated noisy vectors) with a
#: disc of this radius; wide holes beside a subject are not bridged. The untrusted region is the
#: hole grown by FLOW_MARGIN and more, so an 8-16 px stroke is 20-30 px wide here: radius 10
#: changed nothing on benchmarks/fill_quality.py; 18 brings thin strokes from 24.91 back to
#: 25.56 dB hole PSNR (flicker 3.48 -> 2.98) and leaves both blob kinds exactly as they were.
LAYER_BRIDGE = 18


class GlobalMotion:
    """Dominant motion of a flow field: one affine map (or homography) fitted with RANSAC.

    Samples the flow on a ``step`` grid outside the holes, maps each sample ``p`` to
    ``p + F(p)`` and fits ``cv2.estimateAffine2D`` (``kind="affine"``, 6 parameters: pan,
    rotation, zoom, shear) or ``cv2.findHomography`` (``kind="homography"``, 8: also the
    perspective of a wide-angle pan) with RANSAC. Affine is the default: between two
    neighbouring frames the perspective terms are tiny, and the homography's extra freedom fits
    noise. Hole flow error, homography vs affine: 0.126 vs 0.111 px on the pan test clip,
    0.068-0.078 vs 0.058-0.072 px on the translating-texture tests; summed hole PSNR 205.6 vs
    208.4 dB (docs/design.md). Pluggable: any callable
    ``(flow, known) -> model flow | None`` can replace it (:func:`pair_flow`'s ``motion``).
    """

    def __init__(self, kind: str = "affine", step: int = MOTION_GRID, tol: float = LAYER_INLIER_TOL) -> None:
        if kind not in ("homography", "affine"):
            raise ValueError(f"unknown motion model {kind!r}: use homography or affine")
        self.kind, self.step, self.tol = kind, step, tol
        self.name = kind

    def __call__(self, flow: np.ndarray, known: np.ndarray) -> np.ndarray | None:
        """Fit the model to ``flow`` where ``known`` and evaluate it everywhere.

        Args:
            flow: ``(H, W, 2) float32`` measured flow.
            known: ``(H, W) bool``, True = usable sample (outside the grown holes).
        Returns:
            ``(H, W, 2) float32`` model flow, or ``None`` when too few samples or no fit.
        """
        import cv2

        h, w = known.shape
        ys, xs = np.mgrid[self.step // 2 : h : self.step, self.step // 2 : w : self.step]
        keep = known[ys, xs]
        if keep.sum() < MOTION_MIN_SAMPLES:
            return None
        src = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
        dst = src + flow[ys[keep], xs[keep]]
        if self.kind == "affine":
            m, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.tol)
            m = None if m is None else np.vstack([m, [0.0, 0.0, 1.0]])
        else:
            m, _ = cv2.findHomography(src, dst, cv2.RANSAC, self.tol)
        return None if m is None else model_flow(m, h, w)


def model_flow(m: np.ndarray, h: int, w: int) -> np.ndarray | None:
    """Flow of a 3x3 homography ``m`` on an ``h x w`` grid: ``F(p) = m(p) - p``, ``(h, w, 2) float32``.

    ``None`` when ``m`` sends part of the frame to or behind the line at infinity (its third
    coordinate is not clearly positive there): no plausible motion between two frames.
    """
    gx, gy = grid(h, w, np.float64)
    if m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1:  # affine: den is exactly 1, x / 1 == x
        return _affine_flow(m, gx, gy)
    den = m[2, 0] * gx + m[2, 1] * gy + m[2, 2]
    if den.min() <= 1e-3:
        return None
    fx = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / den - gx
    fy = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / den - gy
    return np.stack([fx, fy], axis=2).astype(np.float32)


def _affine_flow(m: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """:func:`model_flow` of an affine ``m`` (last row 0, 0, 1): the same float64 arithmetic
    without the division by 1, written into one float32 array."""
    out = np.empty((*gx.shape, 2), np.float32)
    for i, g in ((0, gx), (1, gy)):
        v = m[i, 0] * gx
        v += m[i, 1] * gy
        v += m[i, 2]
        v -= g
        out[..., i] = v
    return out


#: the background-motion model :func:`pair_flow` uses unless told otherwise
DEFAULT_MOTION = GlobalMotion()


def background_holes(region: np.ndarray, follows: np.ndarray, ring: int = BORDER_RING,
                     min_fraction: float = MIN_BACKGROUND_BORDER) -> np.ndarray:
    """The parts of ``region`` to fill from the background model.

    Each connected part of ``region`` (8-connected, after growing by ``ring``, so parts closer
    than ``2 * ring`` are judged together) is taken when at least ``min_fraction`` of the
    pixels in its ``ring``-wide border follow the model.

    Args:
        region: ``(H, W) bool``, True = flow to be completed (grown holes).
        follows: ``(H, W) bool``, True = measured flow within ``LAYER_INLIER_TOL`` of the model.
    Returns:
        ``(H, W) bool``, a subset of ``region``.
    """
    import cv2

    n, labels = cv2.connectedComponents(grow(region, ring).astype(np.uint8), connectivity=8)
    border = ~region & (labels > 0)
    total = np.bincount(labels[border], minlength=n)
    agree = np.bincount(labels[border & follows], minlength=n)
    take = (total > 0) & (agree >= min_fraction * total)
    take[0] = False
    return region & take[labels] & ~bridged_layer(region, follows)


def bridged_layer(region: np.ndarray, follows: np.ndarray, radius: int = LAYER_BRIDGE) -> np.ndarray:
    """``(H, W) bool``: pixels of ``region`` that the non-background layer closes over
    (:data:`LAYER_BRIDGE`), e.g. a stroke across a moving object. True = not background."""
    import cv2

    # the result at a pixel reads the layer within 2 * radius (close) + 4 px (the 5x5 open): on
    # the region's box grown by that, the crop's edge is never read for a pixel of the region
    box = bounding_box(region, 2 * radius + 5)
    out = np.zeros_like(region)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    other = (~region[y0:y1, x0:x1] & ~follows[y0:y1, x0:x1]).astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    other = cv2.morphologyEx(other, cv2.MORPH_OPEN, disc)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out[y0:y1, x0:x1] = region[y0:y1, x0:x1] & (cv2.morphologyEx(other, cv2.MORPH_CLOSE, disc) > 0)
    return out


def complete_flow(flow: np.ndarray, region: np.ndarray, model: np.ndarray | None = None,
                  beyond: np.ndarray | None = None) -> np.ndarray:
    """Replace ``flow`` inside ``region`` by the motion of the surface behind it.

    Parts of ``region`` whose border partly follows ``model`` (the background's motion, see
    :func:`background_holes`) take the model's flow plus the residual ``flow - model`` of the
    pixels that follow it, interpolated with :func:`smooth_fill` (so a background that departs
    slightly from the model, e.g. by parallax, stays continuous with what the border measures;
    the other layers' pixels do not count). Other parts get :func:`smooth_fill` from the pixels
    that do not follow the model; with no model everything gets :func:`smooth_fill` of the
    whole border, as before. Outside ``region`` nothing changes.

    Args:
        flow: ``(H, W, 2) float32`` measured flow.
        region: ``(H, W) bool``, True = flow to replace (:func:`untrusted`).
        model: ``(H, W, 2) float32`` flow of the background model (:class:`GlobalMotion`), or None.
        beyond: ``(H, W) bool``, True = outside the picture (outpainting): there the model is
            taken whatever the border says (see :mod:`tsam_cli.flow.beyond`).
    Returns:
        ``(H, W, 2) float32``.
    """
    if not region.any():
        return flow
    if model is None:
        return smooth_fill(flow, region)
    d = flow - model
    follows = (magnitude(d) < LAYER_INLIER_TOL) & ~region
    layered = background_holes(region, follows)
    if beyond is not None:  # past the picture's edge: always the background model
        layered |= region & beyond
    out = flow
    if layered.any():  # model + residual, the residual interpolated from the model's layer only
        out = np.where(layered[..., None], model + smooth_fill(d, ~follows, read=layered), out)
    other = region & ~layered
    if other.any():  # from the other layer's pixels only (all of them when none follows the model)
        unknown = region | follows if not (region | follows).all() else region
        out = np.where(other[..., None], smooth_fill(flow, unknown, read=other), out)
    return out.astype(np.float32)


def untrusted(grown_a: np.ndarray, raw_ab: np.ndarray, grown_b: np.ndarray, raw_ba: np.ndarray | None = None,
              model_ab: np.ndarray | None = None, delta: float = DEFAULT_DELTA) -> np.ndarray:
    """Where a's measured flow is not trusted: a's grown hole, plus pixels matched into b's hole.

    Next to a hole, a strip as wide as the motion is visible in a but hidden behind b's hole,
    and DIS returns a blend there (measured on the pan test: 0.8-1.8 px off up to 9 px from the
    hole, beyond ``FLOW_MARGIN``). Left in, those vectors fail Eq. 2 against the completed flow
    of correct correspondences and cut every propagation chain through them. So a pixel is also
    untrusted when its measured vector lands in (or bilinearly touches) b's grown hole, or when
    it fails Eq. 2 on the *measured* flows (an occlusion, Eq. 2's usual reading) while the
    background model sends it into b's grown hole: a near-still blend lands just beside the
    hole, the model's vector does not. A subject next to the hole is seen in both frames, passes
    Eq. 2 and keeps its flow.

    Args:
        grown_a, grown_b: ``(H, W) bool`` holes of a and b grown by ``FLOW_MARGIN`` (True = hole).
        raw_ab: ``(H, W, 2)`` measured flow a -> b on a's grid; ``raw_ba`` b -> a on b's grid.
        model_ab: ``(H, W, 2)`` background-model flow a -> b, or None (then only the first test).
        delta: Eq. 2 threshold in pixels.
    Returns:
        ``(H, W) bool`` on a's grid, True = complete the flow there; contains ``grown_a``.
    """
    if not grown_b.any():
        return grown_a
    target = grown_b.astype(np.float32)
    out = grown_a | (sample(target, raw_ab) > 0)
    if model_ab is not None and raw_ba is not None:
        into = sample(target, model_ab) > 0  # the model sends these into b's hole; Eq. 2 only there
        box = bounding_box(into)
        if box is not None:
            y0, y1, x0, x1 = box
            valid = validity(raw_ab[y0:y1, x0:x1], raw_ba, delta, at=(y0, x0))
            out[y0:y1, x0:x1] |= ~valid & into[y0:y1, x0:x1]
    return out
