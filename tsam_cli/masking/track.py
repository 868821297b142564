"""Follow one object through a video from a box or mask on one frame (``tsam mask track``).

Each step carries the previous frame's mask to the next frame with the project's optical
flow (:mod:`tsam_cli.flow`, DIS) and re-fits it to the object there:

1. **carry** (``motion``): ``own`` (default, :func:`own_motion_carry`) moves each mask pixel
   by its flow, except where that flow is not the object's: it follows the background's
   motion (background seen through the object), fails the forward-backward check, or strays
   more than :data:`OWN_DEVIATION` px from the object's own motion (an occluder passing in
   front, flow smeared by motion blur); those pixels move by the object's own motion, the
   mode of its reliable vectors nearest to its last motion (:func:`own_shift`; when the object
   is hidden it keeps its last motion). ``object`` moves the whole mask by one shift
   (:func:`object_motion`); ``flow`` samples the previous mask along the raw flow
   (:func:`warp_mask`). A part moved outside the frame drops out of the mask.
2. **refit** (``refine``, ``refit``): ``learned`` (default): the appearance log-odds of
   :class:`tsam_cli.masking.appearance.AppearanceModel` (the seed frame's colours + a tiny
   net trained on the seed frame, updated with new background as the video goes) first
   pull each part of the carried mask to where it looks most like the object
   (:func:`locate_parts`, a few px), then decide each pixel together with the carried mask
   as a prior (:func:`learned_refit`). ``grabcut``: GrabCut (Rother et al. 2004,
   ``cv2.grabCut``) initialised from the carried mask on a crop around it: definite
   foreground = the carried mask eroded by ``core`` px, probable foreground = the rest of
   it, probable background = a ring of ``ring`` px around it, definite background = the rest
   of the crop; ``iterations`` rounds; kept only if plausible (:func:`accept_refined`: area
   within ``area_change``, IoU >= ``min_agreement`` with the carried mask, or smaller while
   the object leaves the frame).
3. **lost**: fewer than ``min_area`` pixels left, or the mask's colours unlike the seed's
   for :data:`LOST_FRAMES` frames (:data:`LOST_DISTANCE`): the object has left the frame
   or the mask has lost it; the masks are empty from there on in that direction.

**Modes.** The default, *removal*, makes the mask ``tsam inpaint`` needs: a missed pixel of
the object stays in the video, an extra one is only filled with background, so it is recall
first (section "removal mode" below: a box becomes every pixel in it unlike the background
around it, :func:`fit_box_removal`; each frame keeps the carried mask unless it looks and moves
like the background, takes back moving or object-like pixels near the object and inside the
seed box's extent, :func:`recall_refit`; the saved mask gets a margin that widens where parts
move fast or the carried mask and the re-fit disagree, :func:`adaptive_margin`). ``tight``
(``--tight``) is the tracker as it was before: the object's outline, steps 1-3 only.

Tracking runs at a reduced size (``max_size`` on the long side) from the seed frame forward
to the end, then from the seed backward to frame 0. Memory: the frames before the seed are
kept JPEG-compressed at the tracking size (for the backward pass), every mask as packed bits
at the tracking size; the full-size masks are produced one at a time when saved.

Quality (``benchmarks/mask_track.py``, docs/benchmarks.md "Mask tracking"): fine on a
distinct, rigid-ish object; on the DAVIS clips mean IoU 0.40 on bmx-trees (a thin bike
passing behind trees during a fast pan: the wheels are lost, and the mask stays on a bush
when the rider passes behind a trunk at frame ~65) and 0.75 on schoolgirls (four people);
0.13 and 0.48 with the object shift + GrabCut used before. Speed: ~0.2-0.3 CPU s per frame
at 432x240 with the learned re-fit, seed-frame training (150 steps) included.

Masks are ``(H, W) bool`` with True = the tracked object (= the region to remove), in the
video's coded orientation (as :func:`tsam_cli.media.iter_frames` gives the frames).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np  # this module is loaded by the commands, not by `tsam --help`; cv2 and av in functions

from tsam_cli.errors import MaskError, UsageError
from tsam_cli.flow.warp import bounding_box, magnitude
from tsam_cli.masking.backdrop import Backdrop, pack_mask, unpack_mask
from tsam_cli.masking.options import TrackOptions
from tsam_cli.ui import plural


# ---------------------------------------------------------------------------- one step
def warp_mask(prev: np.ndarray, flow_to_prev: np.ndarray) -> np.ndarray:
    """Carry a mask to the next frame by backward sampling.

    Args:
        prev: ``(h, w) bool`` mask of the previous frame, True = object.
        flow_to_prev: ``(h, w, 2) float32`` flow from the new frame to the previous one.
    Returns:
        ``(h, w) bool``: True where the sampled soft mask is >= 0.5 (False where the flow
        leaves the frame).
    """
    from tsam_cli.flow.warp import sample

    return sample(prev.astype(np.float32), flow_to_prev) >= 0.5


#: a mask pixel whose flow is within this many px of the background's model flow is taken as
#: background seen through the object (between spokes, limbs) and ignored; 1.5 px: a little
#: more than DIS's error on textured background (docs/design.md, "Flow completion")
BACKGROUND_TOL = 1.5
#: at least this fraction of the mask must move differently from the background for its own
#: motion to be measured; else the object moves with the background (median of all)
OWN_MOTION_MIN = 0.15


def object_motion(prev: np.ndarray, flow_to_new: np.ndarray,
                  background: np.ndarray | None) -> tuple[np.ndarray, bool] | None:
    """The object's motion as one shift ``(dx, dy)``, previous -> new frame.

    Args:
        prev: ``(h, w) bool`` object mask on the previous frame.
        flow_to_new: ``(h, w, 2) float32`` flow from the previous frame to the new one.
        background: ``(h, w, 2) float32`` the background's model flow
            (:class:`tsam_cli.flow.GlobalMotion` fitted outside the grown mask), or None.
    Returns:
        ``(shift (2,) float64, own)`` or None for an empty mask. ``own``: at least
        :data:`OWN_MOTION_MIN` of the mask moves differently from the background, and the
        shift is the median flow over those pixels (a thin object such as a bike shows the
        background between its parts; when the camera pans with a rider that background is
        most of the mask). Otherwise the median over all of them. A shift only: a similarity
        fitted to such flow (RANSAC) shrank the bmx-trees rider by 3 % a frame, which compounds.
    """
    if not prev.any():
        return None
    vec = flow_to_new[prev].astype(np.float64)
    if background is not None:
        moving = magnitude(vec - background[prev]) > BACKGROUND_TOL
        if moving.mean() >= OWN_MOTION_MIN:
            return np.median(vec[moving], axis=0), True
    return np.median(vec, axis=0), background is None


def _shift_matrix(d: np.ndarray) -> np.ndarray:
    return np.array([[1.0, 0.0, d[0]], [0.0, 1.0, d[1]]])


def move_mask(prev: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``prev`` ``(h, w) bool`` moved by the ``(2, 3)`` transform ``m`` (bilinear, >= 0.5);
    parts moved outside the frame are dropped."""
    import cv2

    h, w = prev.shape
    return cv2.warpAffine(prev.astype(np.float32), m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0.5


#: a mask pixel whose forward flow, sent back by the backward flow, misses its start by more
#: than this many px is unreliable (occluded or mismatched; Sundaram et al., "Dense point
#: trajectories by GPU-accelerated large displacement optical flow", ECCV 2010, use the same test)
FB_DELTA = 2.0
#: ... and one whose flow is further than this many px from the object's own motion: an
#: occluder passing in front (the trees of bmx-trees), a flow error on motion blur. Measured
#: (prototype, docs/benchmarks.md "Mask tracking"): 4 px lifts bmx-trees from 0.256 to 0.296
#: mean IoU, schoolgirls 0.687 -> 0.681
OWN_DEVIATION = 4.0
#: the object's own motion is the mode of its reliable flow vectors nearest to its last motion
#: (mean shift, Gaussian kernel of this many px); with less than :data:`OWN_SUPPORT` of them
#: near it the object is taken as hidden and keeps its last motion (prototype, bmx-trees: 0.128 -> 0.256)
OWN_KERNEL, OWN_SUPPORT = 3.0, 0.05


def own_shift(vectors: np.ndarray, velocity: np.ndarray | None) -> np.ndarray:
    """The object's own motion ``(2,) float64`` from its reliable flow vectors ``(n, 2)``.

    Without a previous ``velocity``: their median. Else the mean-shift mode of the vectors
    started at ``velocity`` (a mixture of object and occluder motion has two modes; the
    object's is the one it had a frame ago), or ``velocity`` itself when fewer than
    :data:`OWN_SUPPORT` of the vectors lie near it (the object is hidden).
    """
    if velocity is None:
        return np.median(vectors, axis=0)
    v = np.asarray(velocity, np.float64)
    for _ in range(10):
        weight = np.exp(-np.sum((vectors - v) ** 2, axis=1) / (2 * OWN_KERNEL**2))
        if weight.sum() < OWN_SUPPORT * len(vectors):
            return np.asarray(velocity, np.float64)
        v = (weight[:, None] * vectors).sum(axis=0) / weight.sum()
    return v


def splat_mask(mask: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """Push each pixel of ``mask`` ``(h, w) bool`` by its own ``moves`` ``(n, 2)`` (dx, dy; one
    row per True pixel, in ``np.nonzero`` order), spreading it bilinearly over the 4 pixels
    around where it lands. Returns ``(h, w) float32`` coverage in 0..1, 3x3-closed so that a
    stretched part has no pin holes; what lands outside the frame is dropped."""
    import cv2

    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    tx, ty = xs + moves[:, 0], ys + moves[:, 1]
    x0, y0 = np.floor(tx).astype(np.int64), np.floor(ty).astype(np.int64)
    fx, fy = (tx - x0).astype(np.float32), (ty - y0).astype(np.float32)
    acc = np.zeros((h, w), np.float32)
    for oy, ox, wt in [(0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)]:
        xx, yy = x0 + ox, y0 + oy
        ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        np.add.at(acc, (yy[ok], xx[ok]), wt[ok])
    return cv2.morphologyEx(np.minimum(acc, 1.0), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))


def own_motion_carry(prev: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray,
                     background: np.ndarray | None, velocity: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``prev`` to the next frame pixel by pixel, trusting only the flow that is the object's.

    Args:
        prev: ``(h, w) bool`` object mask on the previous frame (not empty).
        flow_fwd: ``(h, w, 2) float32`` flow previous -> new; ``flow_bwd`` new -> previous.
        background: ``(h, w, 2)`` the background's model flow, or None.
        velocity: the object's motion one frame earlier ``(2,)``, or None.
    Returns:
        ``(soft (h, w) float32 in 0..1, own (2,) float64)``. A mask pixel moves by its flow,
        unless that flow is within :data:`BACKGROUND_TOL` of the background's, fails the
        forward-backward test (:data:`FB_DELTA`) or is more than :data:`OWN_DEVIATION` from
        ``own`` (:func:`own_shift`): then it moves by ``own``.
    """
    from tsam_cli.flow.warp import sample

    d = flow_fwd[prev].astype(np.float64)
    unreliable = magnitude(flow_fwd + sample(flow_bwd, flow_fwd))[prev] > FB_DELTA
    if background is not None:
        unreliable |= magnitude(d - background[prev]) < BACKGROUND_TOL
    mine = ~unreliable if (~unreliable).mean() >= OWN_MOTION_MIN else np.ones(len(d), bool)
    own = own_shift(d[mine], velocity)
    unreliable |= magnitude(d - own) > OWN_DEVIATION
    d[unreliable] = own
    return splat_mask(prev, d), own


#: the learned re-fit (motion "own", refit "learned"). Each part of the carried mask may shift
#: up to LOCATE_RADIUS px to where the appearance log-odds under it are highest, minus
#: LOCATE_PENALTY per px^2 of shift (a pull back to where the flow put it)
LOCATE_RADIUS, LOCATE_PENALTY = 12, 0.02
#: the carried mask, blurred by PRIOR_SIGMA px and clipped to PRIOR_FLOOR..1-PRIOR_FLOOR, is the
#: prior: a pixel is the object where log-odds + logit(prior) > REFIT_BIAS. Measured (prototype,
#: mean IoU bmx-trees / schoolgirls): sigma 2: 0.403 / 0.767, 1: 0.375 / 0.736, 0: 0.334 / 0.656;
#: bias 1: 0.403 / 0.767, 0: 0.357 / 0.762 (the net's blobs grow the mask into the background)
PRIOR_SIGMA, PRIOR_FLOOR, REFIT_BIAS = 2.0, 0.02, 1.0


def locate_parts(log_odds: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Shift each connected part of ``soft >= 0.5`` (``(h, w) float32``) within
    :data:`LOCATE_RADIUS` px to the best mean ``log_odds`` ``(h, w) float32`` under it (penalised
    by :data:`LOCATE_PENALTY` per px^2). Returns the moved ``soft``, ``(h, w) float32``."""
    import cv2

    r, h, w = LOCATE_RADIUS, *soft.shape
    n, labels = cv2.connectedComponents((soft >= 0.5).astype(np.uint8), connectivity=8)
    padded = cv2.copyMakeBorder(log_odds, r, r, r, r, cv2.BORDER_CONSTANT, value=float(log_odds.min()))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    out = np.zeros_like(soft)
    for part in range(1, n):
        piece = np.where(labels == part, soft, 0).astype(np.float32)
        ys, xs = np.nonzero(labels == part)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        tmpl = piece[y0:y1, x0:x1]
        score = cv2.matchTemplate(padded[y0 : y1 + 2 * r, x0 : x1 + 2 * r], tmpl, cv2.TM_CCORR)
        score = score / max(float(tmpl.sum()), 1.0) - LOCATE_PENALTY * (dx**2 + dy**2)
        ky, kx = np.unravel_index(int(np.argmax(score)), score.shape)
        m = _shift_matrix(np.array([kx - r, ky - r], np.float64))
        out = np.maximum(out, cv2.warpAffine(piece, m, (w, h), flags=cv2.INTER_LINEAR))
    return out


def learned_refit(log_odds: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """The object on the new frame from the appearance ``log_odds`` and the carried ``soft``
    mask (both ``(h, w) float32``): ``log_odds + logit(prior) > REFIT_BIAS`` (see
    :data:`PRIOR_SIGMA`), keeping the connected parts that touch ``soft >= 0.5`` and are at least
    a tenth of the largest. Returns ``(h, w) bool``, True = object."""
    import cv2

    prior = cv2.GaussianBlur(soft, (0, 0), PRIOR_SIGMA) if PRIOR_SIGMA > 0 else soft
    prior = np.clip(prior, PRIOR_FLOOR, 1 - PRIOR_FLOOR)
    mask = log_odds + np.log(prior / (1 - prior)) > REFIT_BIAS
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    touching = np.bincount(labels[soft >= 0.5], minlength=n) > 0
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = [i for i in range(1, n) if touching[i] and areas[i] >= 0.1 * areas[1:].max()]
    return np.isin(labels, keep)


def disk(radius: int) -> np.ndarray:
    """Elliptic structuring element of ``radius`` px, ``(2r+1, 2r+1) uint8`` (OpenCV morphology)."""
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def _crop_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Bounding box of ``mask`` (not empty) grown by ``margin`` px, clipped to the frame."""
    y0, y1, x0, x1 = bounding_box(mask, margin)
    return slice(y0, y1), slice(x0, x1)


def grabcut_init(warped: np.ndarray, ring: int, core: int) -> np.ndarray:
    """GrabCut label map for a warped mask: ``(h, w) uint8`` of ``cv2.GC_*``.

    Definite foreground = ``warped`` eroded by ``core`` px (none if ``core`` is 0), probable
    foreground = the rest of ``warped``, probable background = a ``ring`` px band around it,
    definite background = everything else.
    """
    import cv2

    m = warped.astype(np.uint8)
    labels = np.full(m.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(m, disk(ring)) > 0] = cv2.GC_PR_BGD
    labels[warped] = cv2.GC_PR_FGD
    if core > 0:
        labels[cv2.erode(m, disk(core)) > 0] = cv2.GC_FGD
    return labels


def grabcut_refine(image: np.ndarray, warped: np.ndarray, ring: int, core: int, iterations: int) -> np.ndarray | None:
    """Re-fit ``warped`` to the object in ``image`` with GrabCut, on a crop around it.

    The colour models are learned from the labels of :func:`grabcut_init` on this frame.
    (Learning them on the previous frame, where the mask is known, and freezing them, as
    Video SnapCut does, measured no better: mean IoU bmx-trees 0.117 vs 0.129, schoolgirls
    0.465 vs 0.466, in an earlier version that moved each connected part on its own.)

    Args:
        image: ``(h, w, 3) uint8`` RGB frame.
        warped: ``(h, w) bool`` mask carried by the flow, True = object (not empty).
    Returns:
        ``(h, w) bool`` refined mask, or None when GrabCut cannot run (no background or no
        foreground sample in the crop, or too few distinct colours for its GMMs).
    """
    import cv2

    ys, xs = _crop_box(warped, 2 * ring)
    labels = grabcut_init(warped[ys, xs], ring, core)
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if fg.all() or not fg.any():
        return None
    crop = np.ascontiguousarray(image[ys, xs][..., ::-1])  # grabCut models colours, BGR as OpenCV expects
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(crop, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    out = np.zeros(warped.shape, bool)
    out[ys, xs] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return out


def fit_box(image: np.ndarray, box: np.ndarray, iterations: int) -> np.ndarray:
    """The object inside a box: GrabCut with everything outside ``box`` as background.

    Args:
        image: ``(h, w, 3) uint8`` RGB seed frame.
        box: ``(h, w) bool`` rectangle drawn around the object.
    Returns:
        ``(h, w) bool`` object mask inside the box; the box itself when GrabCut keeps less
        than a tenth of it (nothing separable from the surroundings).
    """
    import cv2

    ys, xs = _crop_box(box, 16)
    labels = np.where(box[ys, xs], cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    if labels.min() == cv2.GC_PR_FGD:  # the box is the whole frame: nothing is background
        return box
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(image[ys, xs][..., ::-1]), labels, None, bgd, fgd, iterations,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return box
    out = np.zeros(box.shape, bool)
    out[ys, xs] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    out = keep_largest_parts(out)
    return out if out.sum() >= 0.1 * box.sum() else box


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(h, w) bool`` masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def touches_border(mask: np.ndarray) -> bool:
    """True when ``mask`` has a pixel on the frame's outermost row or column."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def accept_refined(warped: np.ndarray, refined: np.ndarray | None, opts: TrackOptions) -> np.ndarray:
    """The sanity check of step 3: ``refined`` if plausible, else ``warped``.

    Plausible: area within ``area_change`` of the warped mask's and IoU with it at least
    ``min_agreement``; or, when the warped mask touches the frame's edge, any smaller mask
    (the object leaving the frame: GrabCut may shrink it to nothing, and the object is lost).
    """
    if refined is None:
        return warped
    a, b = int(warped.sum()), int(refined.sum())
    if touches_border(warped) and b < a:
        return refined  # the object leaves the frame: only GrabCut sees how much of it is left
    if b == 0 or not 1 / opts.area_change <= b / max(a, 1) <= opts.area_change:
        return warped
    return refined if iou(warped, refined) >= opts.min_agreement else warped


def keep_largest_parts(mask: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """Drop connected parts smaller than ``min_fraction`` of the largest (GrabCut speckles)."""
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= min_fraction * areas.max()) + 1
    return np.isin(lab, keep)


#: colour-histogram distance (Bhattacharyya, 0 = same colours, 1 = none shared) between the
#: seed object and the mask above which the mask no longer holds the object. Measured (every
#: 5th of 80 frames): the ground-truth masks of bmx-trees stay <= 0.45 from their frame 0,
#: schoolgirls' <= 0.16; the same masks moved 40 px off the subject 0.38-0.95 (mostly > 0.5);
#: the mask of a synthetic object that has left the frame 0.83-0.96
LOST_DISTANCE = 0.7
#: ... for this many frames in a row (one frame of motion blur or occlusion is not "gone")
LOST_FRAMES = 2


def colour_histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hue-saturation histogram (18 x 8 bins, sums to 1) of ``image``'s pixels in ``mask``."""
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), [18, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two :func:`colour_histogram` results, 0..1."""
    import cv2

    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


# ---------------------------------------------------------------------------- removal mode
# The default mode (``tight=False``): the mask feeds ``tsam inpaint``, where a missed pixel leaves
# part of the object in the video and an extra one is only filled with background, so every
# choice below leans to recall. Measured on ``benchmarks/removal.py`` (benchmarks/removal_notes.md).

#: seed frame: a box pixel is the object when its colour is this much likelier (log ratio) inside
#: the box than in the ring of :data:`BOX_RING` px around it (the background the box was drawn on)
BOX_UNLIKE, BOX_RING = 0.5, 10
#: the recall re-fit's threshold on ``log_odds + logit(prior)`` (the outline mode uses
#: :data:`REFIT_BIAS` = 1; lower keeps the pixels the appearance is unsure about). Measured with
#: the other constants as set (removal.py, 40 frames, 4 articulated composites, mean recall
#: after +4 px / worst frame / area ratio): -1: 0.950 / 0.737 / 2.84, 0.5: 0.941 / 0.708 / 2.40.
#: With the box regrowth and a margin of 0-5 px (all constants as now, inpainting included):
#: 0.5 gives 0.990 / 0.890 / 2.56, removal 5.09 dB short of the exact mask and the rigid control
#: -0.68 dB, against -1 with a 1-6 px margin: 0.994 / 0.920 / 3.06, 5.10 dB, rigid 1.72 dB short
RECALL_BIAS = 0.5
#: a carried pixel is dropped when the appearance says background (log-odds below this) and it
#: does not move unlike the background: -2 let the mask grow to 5x the object (bmx/highway), 0: 3.5x
DROP_LOG_ODDS = 0.0
#: a pixel moves unlike the background when its flow is this many px from the background's model
#: flow (a little more than DIS's error on texture, as :data:`BACKGROUND_TOL`) ...
MOVING_TOL = 1.5
#: ... and is closer to the object's own motion than to the background's (x this ratio): on the
#: rollercoaster's depth the background's affine model misses by more than MOVING_TOL, and without
#: this test the rigid control's mask grew to 15x the object in 26 frames and was then lost
OWN_RATIO = 1.0
#: inside the seed box's extent around the object, pixels this object-like (log-odds) or moving
#: are taken back (:func:`box_region`: legs that an occluder cut off the carried mask); 40 frames,
#: mean recall after +4 px 0.950 -> 0.994, worst frame 0.737 -> 0.920, area 2.84 -> 3.06
REGROW_LOG_ODDS = 2.0
#: parts smaller than this fraction of the largest are dropped (the outline mode: 0.1)
KEEP_FRACTION = 0.05
#: ... and is taken into the object within this many px of it (a limb, a wheel that the carried
#: mask lost; 12 px grew the mask to 3x-6x the object, 6 px kept recall at 0.95-1.0)
REGROW_PX = 6
#: a connected part of the moving pixels counts as the object's own only when at least this
#: fraction of it lies where the object may be (:func:`attached_motion`). A passing car is one
#: moving part of thousands of pixels of which a few dozen touch the box around the person; a
#: limb's part lies almost whole beside the body. Per-part fractions measured on the removal
#: composites (removal.py, 40 frames): below 0.75 were 21-24 k of the 24 k px that a car on
#: car-turn added over the clip and 7.6 k of 10 k on the highway, against 0.3 k of 4.2 k and 0 of
#: 9.5 k object px; 0.6, 0.75 and 0.9 gave the same damage and recall within 0.001
ATTACHED_INSIDE = 0.75
#: the saved mask is the object grown by MARGIN_MIN px where its outline is sure, up to MARGIN_MAX
#: px where it moves fast relative to its own motion (MARGIN_GAIN px of margin per px/frame)
#: or where the carried mask and the re-fit disagree (MARGIN_UNSURE px)
#: (2/10 px: area 4.5x the object; 1/6: 2.8x at the same mean recall; 0/5: 2.4x but worst frames
#: down; 0/5 with RECALL_BIAS 0.5 is the default: the same removal gap at 2.56x the area, and the
#: rigid control no longer loses 1.7 dB to the larger hole, see RECALL_BIAS)
MARGIN_MIN, MARGIN_MAX, MARGIN_GAIN, MARGIN_UNSURE = 0, 5, 1.0, 4
#: a frame whose tracked core has fewer pixels than REGAIN_DROP x the largest core of the last
#: REGAIN_MEMORY frames is taken as missing parts of the object (hidden behind an occluder, or just
#: back from behind it and not yet re-found). Measured on the removal composites (40 frames): the
#: parts missed there (wheel rims, feet, the top of a head: 20-410 px a frame) were not flagged by
#: the flow (0-7 % of them move unlike the background) nor by the frame's confidence; this drop
#: flags 14-21 of the 39 frames of each, the miss frames among them (bmx/paraglide 14-29 and
#: 35-39, missed 14-26; girl/lawn 7-21, missed 11-19; bmx/highway 12-22 and 33-39, missed 14-15
#: and 30-39). 8 frames of memory left paraglide 22-26 unflagged
REGAIN_DROP, REGAIN_MEMORY = 0.85, 16
#: ... and on such a frame the saved mask also takes every pixel inside the seed box's extent
#: around the object (:func:`box_region`) that looks more like the object than the background
#: (log-odds above this); about half of the missed pixels do, though under the re-fit's thresholds
REGAIN_LOG_ODDS = 0.0
#: ... in connected parts of at least this many pixels. The drop also flags an object that only
#: shrinks (the rigid control, scaled 1.35 -> 0.65: frames 16-38), where what it adds is 30-90
#: specks of background a frame; every one of them taken cost the rigid control 2.6 dB
#: (23.15 -> 20.54, exact 22.48); parts >= 10 px: 22.87, >= 20 px: 22.30
REGAIN_MIN_PX = 10


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` ``(h, w) bool`` with every enclosed hole filled (the background not reachable
    from the frame's border without crossing the mask)."""
    import cv2

    m = np.pad(mask.astype(np.uint8), 1)
    flood = m.copy()
    cv2.floodFill(flood, np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8), (0, 0), 1)
    return (mask | (flood[1:-1, 1:-1] == 0))


def box_prior(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels of ``box`` (``(h, w) bool`` rectangle on ``image``, ``(h, w, 3) uint8`` RGB)
    whose colour is unlike the background around the box: Lab histogram log ratio (box vs a
    :data:`BOX_RING` px ring outside it) above :data:`BOX_UNLIKE`, 5x5-closed, holes filled.
    The background inside the box shares the ring's colours, so it scores near or below 0."""
    import cv2

    from tsam_cli.masking.appearance import colour_index, colour_log_odds, histogram

    idx = colour_index(image)
    ring = (cv2.dilate(box.astype(np.uint8), disk(BOX_RING)) > 0) & ~box
    if not ring.any():
        return box
    score = colour_log_odds(histogram(idx, box), histogram(idx, ring))[idx]
    score = cv2.GaussianBlur(score, (0, 0), 1.0)
    unlike = (score > BOX_UNLIKE) & box
    unlike = cv2.morphologyEx(unlike.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    return fill_holes(unlike) & box


def fit_box_removal(image: np.ndarray, box: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """The object inside a box for removal: ``(recall mask, outline)``, both ``(h, w) bool``.

    The outline is :func:`fit_box` (GrabCut, which keeps the most separable part: the rider,
    not the thin bike); the recall mask adds :func:`box_prior`, every box pixel unlike the
    background around the box, keeping the parts that are at least a tenth of the largest.
    The outline trains the appearance model; the recall mask is what is tracked and saved.
    """
    outline = fit_box(image, box, iterations)
    recall = keep_largest_parts(fill_holes(outline | box_prior(image, box)))
    return recall, outline


def moving_unlike_background(flow_bwd: np.ndarray, flow_fwd: np.ndarray, around: np.ndarray,
                             own: np.ndarray | None = None) -> np.ndarray:
    """``(h, w) bool`` pixels of the new frame whose flow (``flow_bwd``, new -> previous,
    ``(h, w, 2) float32``) is more than :data:`MOVING_TOL` px from the background's model flow
    (:class:`tsam_cli.flow.GlobalMotion` fitted outside ``around``, ``(h, w) bool``) and passes
    the forward-backward test against ``flow_fwd`` (previous -> new; :data:`FB_DELTA`: the
    background the object just uncovered has no match and would trail behind it); all False
    when no model fits."""
    from tsam_cli.flow.complete import GlobalMotion
    from tsam_cli.flow.warp import sample

    bg = GlobalMotion()(flow_bwd, ~around)
    if bg is None:
        return np.zeros(around.shape, bool)
    consistent = magnitude(flow_bwd + sample(flow_fwd, flow_bwd)) <= FB_DELTA
    off_bg = magnitude(flow_bwd - bg)
    moving = (off_bg > MOVING_TOL) & consistent
    if own is not None:  # closer to the object's own motion than to the background's
        moving &= magnitude(flow_bwd - np.asarray(own, np.float32)) < OWN_RATIO * off_bg
    return moving


def box_region(core: np.ndarray, extent: tuple[int, int]) -> np.ndarray:
    """``(h, w) bool`` rectangle around ``core``'s bounding box, grown about its centre to at
    least ``extent`` = ``(height, width)`` px (the seed's box): where the parts of the object
    that the carried mask lost (legs behind an occluder, a wheel) can be again."""
    out = np.zeros(core.shape, bool)
    if not core.any():
        return out
    ys, xs = np.nonzero(core)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    hh = max(ys.max() - ys.min() + 1, extent[0]) / 2 + REGROW_PX
    hw = max(xs.max() - xs.min() + 1, extent[1]) / 2 + REGROW_PX
    out[max(0, int(cy - hh)) : int(cy + hh) + 1, max(0, int(cx - hw)) : int(cx + hw) + 1] = True
    return out


def attached_motion(moving: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The parts of ``moving`` (``(h, w) bool``, 8-connected) that lie mostly inside
    ``allowed`` (``(h, w) bool``, where the object may be), at least :data:`ATTACHED_INSIDE` of
    each part's pixels: ``(h, w) bool``. Something else moving across the frame (a car, a
    second person) is one large part mostly outside, so the few of its pixels that come near
    the object are not taken for a limb; the first such frame decides, since a pixel taken
    in is carried on and the appearance model learns it."""
    import cv2

    n, labels = cv2.connectedComponents(moving.astype(np.uint8), connectivity=8)
    if n <= 1:
        return moving
    total = np.bincount(labels.ravel(), minlength=n)
    inside = np.bincount(labels.ravel(), weights=allowed.ravel(), minlength=n)
    keep = inside >= ATTACHED_INSIDE * total
    keep[0] = False
    return keep[labels]


def recall_refit(log_odds: np.ndarray, located: np.ndarray, moving: np.ndarray,
                 extent: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The object on the new frame, recall first: ``(h, w) bool``.

    Args:
        log_odds: ``(h, w) float32`` appearance log-odds (> 0 = looks like the object).
        located: ``(h, w) float32`` the carried mask after :func:`locate_parts`, 0..1.
        moving: ``(h, w) bool`` :func:`moving_unlike_background`.
        extent: ``(height, width)`` of the seed's box (:func:`box_region`).
    Only the moving parts that lie mostly where the object may be count (:func:`attached_motion`:
    within :data:`REGROW_PX` of the carried mask or the re-fit, or in :func:`box_region`).
    The union of (1) the carried mask, less the pixels that look like the background
    (:data:`DROP_LOG_ODDS`) and do not move unlike it, (2) the re-fit of :func:`learned_refit`
    with the lower threshold :data:`RECALL_BIAS`, and (3) pixels that move unlike the background
    or look clearly like the object (:data:`REGROW_LOG_ODDS`) within :data:`REGROW_PX` of
    (1)+(2) or inside :func:`box_region` (limbs and wheels the carried mask lost); opened 1 px
    (speckles), closed 2 px, holes filled, parts under :data:`KEEP_FRACTION` of the largest dropped.
    """
    import cv2

    prior = np.clip(cv2.GaussianBlur(located, (0, 0), PRIOR_SIGMA), PRIOR_FLOOR, 1 - PRIOR_FLOOR)
    refit = (log_odds + np.log(prior / (1 - prior)) > RECALL_BIAS) & (cv2.dilate(located, disk(REGROW_PX)) > 0.5)
    placed = (located >= 0.5) | refit
    moving = attached_motion(moving, (cv2.dilate(placed.astype(np.uint8), disk(REGROW_PX)) > 0)
                             | box_region(placed, extent))
    carried = (located >= 0.5) & ((log_odds > DROP_LOG_ODDS) | moving)
    core = carried | refit
    near = (cv2.dilate(core.astype(np.uint8), disk(REGROW_PX)) > 0) | box_region(core, extent)
    core |= near & (moving | (log_odds > REGROW_LOG_ODDS))
    core = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_OPEN, disk(1)) > 0
    core = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_CLOSE, disk(2)) > 0
    return keep_largest_parts(fill_holes(core), KEEP_FRACTION)


def regained(core: np.ndarray, log_odds: np.ndarray | None, extent: tuple[int, int], areas: list[int]) -> np.ndarray:
    """Pixels to add to a frame's saved mask where parts of the object may be missing from it.

    Args:
        core: ``(h, w) bool`` the frame's tracked object (True = object), before the margin.
        log_odds: ``(h, w) float32`` its appearance log-odds (> 0 = object), or None.
        extent: ``(height, width)`` of the seed's box (:func:`box_region`).
        areas: the core areas (px) of the previous :data:`REGAIN_MEMORY` frames.
    Returns ``(h, w) bool``: empty unless ``core`` has fewer than :data:`REGAIN_DROP` x
    ``max(areas)`` pixels; then the :func:`box_region` pixels with log-odds > :data:`REGAIN_LOG_ODDS`,
    in connected parts of at least :data:`REGAIN_MIN_PX` pixels.
    Only the saved mask takes them: the tracker carries ``core`` on, so a wrong guess here
    cannot drift into the next frames.
    """
    import cv2

    if log_odds is None or not areas or int(core.sum()) >= REGAIN_DROP * max(areas):
        return np.zeros(core.shape, bool)
    extra = box_region(core, extent) & (log_odds > REGAIN_LOG_ODDS)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(extra.astype(np.uint8), connectivity=8)
    return np.isin(labels, np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= REGAIN_MIN_PX) + 1)


def adaptive_margin(core: np.ndarray, speed: np.ndarray | None, unsure: np.ndarray | None) -> np.ndarray:
    """``core`` ``(h, w) bool`` grown by a margin that follows how unsure each part is.

    Args:
        speed: ``(h, w) float32`` px/frame each pixel moves relative to the object's own motion
            (limbs, wheels), or None (seed frame).
        unsure: ``(h, w) bool`` where the carried mask and the re-fit disagree, or None.
    Returns ``(h, w) bool``: every pixel within ``r`` px of ``core``, where ``r`` is the largest
    :data:`MARGIN_MIN` + :data:`MARGIN_GAIN` x speed (+ :data:`MARGIN_UNSURE` where unsure)
    over the core pixels within :data:`MARGIN_MAX` px, capped at :data:`MARGIN_MAX`.
    """
    import cv2

    if not core.any():
        return core
    r = np.full(core.shape, float(MARGIN_MIN), np.float32)
    if speed is not None:
        r += MARGIN_GAIN * speed.astype(np.float32)
    if unsure is not None:
        r[unsure] += MARGIN_UNSURE
    r = np.where(core, np.minimum(r, MARGIN_MAX), 0).astype(np.float32)
    reach = cv2.dilate(r, disk(MARGIN_MAX))
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 3)
    return core | (dist <= reach)


# ---------------------------------------------------------------------------- confidence
#: a frame whose confidence (:func:`frame_confidence`) is below this is reported as low by
#: ``tsam mask track`` and marked by ``tsam preview``. Measured on the synthetic clips of
#: tests/test_mask_track.py (--net-steps 20, removal / --tight): a rigid object followed well
#: 0.73-0.94 on every frame; a bar crossing in front of it 0.30-0.62 / 0.00-0.58 on the crossing
#: frames (0.81-0.93 elsewhere); an object that jumps 40 px is lost (0.0); a thin arm swinging
#: below a body 0.41-0.75 / 0.48-0.89 (some of its frames are flagged: the arm is unsure there)
LOW_CONFIDENCE = 0.5
#: the area score is 0 when the mask's area changes by this factor (or its inverse) in one frame:
#: a rigid object moving smoothly changes its area by a few percent a frame; doubling or halving
#: in one frame means a part was lost, or background was taken in
AREA_JUMP = 2.0
#: appearance log-odds below this (the object is ``e**2`` ~ 7x less likely than the background)
#: count as "doubted" (a clear verdict: 0 would count every pixel the model cannot tell apart)
DOUBT_LOG_ODDS = -2.0
#: the growth score is 0 when the mask holds this many times the median area of its first
#: GROWTH_MEMORY frames (0.5 at the square root of it, 2x). Something that joined the mask slowly
#: (a second person crossing behind the tracked one) never doubles it in one frame, which is all
#: the area score sees. Tracked cores over 80 frames against that median: a man who joined the
#: lawn composite's girl 2.4-5.5x from frame 32 on, while her own area stayed within 1.1-1.6x;
#: the real tall schoolgirl, whose mask takes in the girls beside her, 2.7-3.3x from frame 24
#: (her own 1.4-1.7x); the composites without a joined bystander and the real bmx-trees and
#: all four schoolgirls at most 1.5x (docs/benchmarks.md, "Bystanders kept out by a box tracker")
GROWTH_LIMIT, GROWTH_MEMORY = 4.0, 16


def frame_confidence(carried: np.ndarray, mask: np.ndarray, prev_area: int,
                     log_odds: np.ndarray | None, early_area: float | None = None) -> tuple[float, str]:
    """How much to trust one tracked frame: ``(confidence in 0..1, name of the weakest signal)``.

    Args:
        carried: ``(h, w) bool`` the previous mask carried by the flow (before the re-fit).
        mask: ``(h, w) bool`` the frame's mask after the re-fit and the lost check (True = object,
            before the removal margin); empty = the object is lost.
        prev_area: pixels of the previous frame's mask.
        log_odds: ``(h, w) float32`` the appearance model's log-odds (> 0 = object), or None
            (``--refit grabcut``, ``--no-refine``).
        early_area: the median area of the mask over its first :data:`GROWTH_MEMORY` frames
            from the seed, or None.
    The lowest of the signals the tracker already computes, each 0..1 (the lowest, not a mean:
    one failing signal is enough to look at a frame):

    * ``lost``: 0 when the mask is empty (the object left, or the tracker gave it up);
    * ``agreement``: IoU of the carried mask and the re-fit one (motion and appearance agree;
      an occluder or a slip makes the re-fit move or cut the mask);
    * ``area``: ``1 - |ln(area / prev_area)| / ln(AREA_JUMP)``, clipped at 0 (:data:`AREA_JUMP`);
    * ``appearance``: 1 - the fraction of the mask the appearance model doubts (log-odds below
      :data:`DOUBT_LOG_ODDS`): the mask lies on something that does not look like the seed;
    * ``growth``: ``1 - ln(area / early_area) / ln(GROWTH_LIMIT)``, clipped to 0..1
      (:data:`GROWTH_LIMIT`): the mask has grown well beyond what it was near the seed, slowly
      enough for ``area`` to miss it (something else joined it). Shrinking is not scored here.
    """
    area = int(mask.sum())
    if area == 0:
        return 0.0, "lost"
    scores = {"agreement": iou(carried, mask),
              "area": max(0.0, 1.0 - abs(float(np.log(area / max(prev_area, 1)))) / float(np.log(AREA_JUMP)))}
    if log_odds is not None:
        scores["appearance"] = 1.0 - float((log_odds[mask] < DOUBT_LOG_ODDS).mean())
    if early_area:
        grown = float(np.log(area / early_area)) / float(np.log(GROWTH_LIMIT))
        scores["growth"] = min(1.0, max(0.0, 1.0 - grown))
    why = min(scores, key=scores.get)
    return float(scores[why]), why


#: what each weakest signal (:func:`frame_confidence`) means for the user, in the summary line
LOW_REASONS = {
    "lost": "the object was lost",
    "agreement": "the flow and the re-fit disagree, as at an occluder or where the mask slipped",
    "area": "the mask's size jumped from one frame to the next",
    "appearance": "much of the mask does not look like the object",
    "growth": "the mask grew to twice or more its size near the seed, as when something beside the object joins it",
}


def low_reason(scores: list, threshold: float = LOW_CONFIDENCE) -> str | None:
    """The :data:`LOW_REASONS` text of the signal that is weakest on most low frames (``scores``:
    per frame ``(confidence, weakest signal)`` or None), or None when no frame is low."""
    from collections import Counter

    weakest = Counter(s[1] for s in scores if s is not None and s[0] < threshold)
    if not weakest:
        return None
    return LOW_REASONS.get(weakest.most_common(1)[0][0])


def low_ranges(confidence: list[float], threshold: float = LOW_CONFIDENCE) -> list[tuple[int, int]]:
    """``(first, last)`` frame ranges (inclusive) whose confidence is below ``threshold``."""
    out: list[tuple[int, int]] = []
    for i, c in enumerate(confidence):
        if c < threshold:
            if out and out[-1][1] == i - 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
    return out


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    """``[(16, 22), (30, 30)]`` -> ``"16-22, 30"``."""
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in ranges)


class MaskTracker:
    """Carries a mask from frame to frame (one direction). Frames: ``(h, w, 3) uint8`` RGB at
    the tracking size; masks ``(h, w) bool``, True = object.

    ``step(frame)`` returns the mask on ``frame``; an empty mask once the object is lost: fewer
    than ``min_area`` pixels left, or colours unlike the seed's (:data:`LOST_DISTANCE`) for
    :data:`LOST_FRAMES` frames. ``appearance``: the seed frame's
    :class:`~tsam_cli.masking.appearance.AppearanceModel` for ``refit='learned'`` (the tracker
    updates it, so give each tracker its own copy). When not given it is trained here at the
    first :meth:`step` (a clip with only the seed frame trains nothing) and an untouched copy is
    kept in ``seed_appearance``, for a tracker going the other way.
    """

    def __init__(self, frame: np.ndarray, mask: np.ndarray, opts: TrackOptions, estimator, appearance=None,
                 train_mask: np.ndarray | None = None) -> None:
        self.prev_frame, self.prev_mask = frame, mask
        self.opts, self.estimator = opts, estimator
        self.lost = int(mask.sum()) < opts.min_area
        self.seed_colours = colour_histogram(frame, mask)
        self.unlike = 0  # frames in a row whose mask's colours are unlike the seed's
        self.velocity = None  # the object's last own motion (motion='own')
        self.appearance, self.seed_appearance = appearance, None
        self._flows = None  # removal mode: (forward, backward) flow of the last carry (motion='own')
        self._margin = (None, None)  # removal mode: (speed, unsure) of the last step, for the margin
        self._log_odds = None  # the appearance log-odds of the last re-fit, for the confidence
        self._areas: deque = deque(maxlen=REGAIN_MEMORY)  # removal mode: the last cores' areas (:func:`regained`)
        self._early = [int(mask.sum())]  # the areas of the seed and the first frames after it (growth score)
        #: the last step's (confidence 0..1, weakest signal) (:func:`frame_confidence`)
        self.confidence: tuple[float, str] = (1.0, "seed")
        ys, xs = np.nonzero(mask) if mask.any() else (np.zeros(1, int), np.zeros(1, int))
        self.extent = (int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1)  # the seed's box (height, width)
        train = mask if train_mask is None else train_mask  # removal mode trains on the outline
        self._seed = (frame, train) if appearance is None and opts.refine and opts.refit == "learned" else None
        self.guard = None  # removal mode: the box the core is kept inside (:class:`BoxGuard`)
        if opts.box_guard and not opts.tight and opts.refine:
            from tsam_cli.masking.boxguard import BoxGuard

            self.guard = BoxGuard.create(frame, mask)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """The object's mask on ``frame`` (``(h, w, 3) uint8``): ``(h, w) bool``; in removal mode
        the tracked core is cut to the box of :attr:`guard` (:class:`BoxGuard`, where it is
        trusted), then grown by :func:`adaptive_margin` and joined with :func:`regained` (the
        core, without either, is carried on)."""
        if self.lost:
            self.prev_frame, self.confidence = frame, (0.0, "lost")
            return self.prev_mask
        if self._seed is not None:  # trained on first use, from the seed frame
            self.appearance = appearance_model(*self._seed, self.opts)
            self.seed_appearance, self._seed = self.appearance.clone(), None
        soft = self._carry(frame)
        carried = mask = soft >= 0.5
        self._log_odds, prev_area = None, int(self.prev_mask.sum())
        if int(mask.sum()) >= self.opts.min_area and self.opts.refine:
            mask = self._refit(frame, soft, mask)
        if self.guard is not None:
            mask = self.guard.clamp(frame, mask, self.prev_mask)
        mask = self._check_lost(frame, mask)
        self.confidence = frame_confidence(carried, mask, prev_area, self._log_odds, float(np.median(self._early)))
        if len(self._early) < GROWTH_MEMORY and mask.any():
            self._early.append(int(mask.sum()))
        self.prev_frame, self.prev_mask = frame, mask
        if self.opts.tight:
            return mask
        extra = regained(mask, self._log_odds, self.extent, list(self._areas))
        self._areas.append(int(mask.sum()))
        return adaptive_margin(mask, *self._margin) | extra

    def _refit(self, frame: np.ndarray, soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Re-fit the carried ``soft`` mask (``(h, w) float32``; ``mask`` = ``soft >= 0.5``) to ``frame``."""
        if self.appearance is None:
            refined = grabcut_refine(frame, mask, self.opts.ring, self.opts.core, self.opts.iterations)
            return keep_largest_parts(accept_refined(mask, refined, self.opts))
        log_odds = self._log_odds = self.appearance.log_odds(frame)
        located = locate_parts(log_odds, soft)
        if self.opts.tight:
            return learned_refit(log_odds, located)
        import cv2

        if self._flows is None:  # motion 'object'/'flow' did not measure both directions
            self._flows = (self.estimator(self.prev_frame, frame), self.estimator(frame, self.prev_frame))
        fwd, bwd = self._flows
        self._flows = None
        own = -self.velocity if self.velocity is not None else np.median(bwd[mask], axis=0)
        moving = moving_unlike_background(bwd, fwd, cv2.dilate(mask.astype(np.uint8), disk(self.opts.ring)) > 0, own)
        core = recall_refit(log_odds, located, moving, self.extent)
        speed = magnitude(bwd - own)
        self._margin = (speed, core ^ learned_refit(log_odds, located))
        return core

    def _check_lost(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``mask``, or an empty one once the object is lost (see the class doc); teaches the
        appearance model this frame's background while it is followed."""
        if int(mask.sum()) >= self.opts.min_area:
            far = colour_distance(self.seed_colours, colour_histogram(frame, mask)) > LOST_DISTANCE
            self.unlike = self.unlike + 1 if far else 0
        if int(mask.sum()) < self.opts.min_area or self.unlike >= LOST_FRAMES:
            self.lost = True
            return np.zeros_like(mask)
        if self.appearance is not None:
            self.appearance.update(frame, mask)
        return mask

    def _background(self, flow: np.ndarray) -> np.ndarray | None:
        """The background's model flow, fitted outside the mask grown by ``ring`` px."""
        from tsam_cli.flow.complete import GlobalMotion
        from tsam_cli.flow.warp import grow

        return GlobalMotion()(flow, ~grow(self.prev_mask, self.opts.ring))

    def _carry(self, frame: np.ndarray) -> np.ndarray:
        """The previous mask carried to ``frame``, ``(h, w) float32`` coverage 0..1: pixel by
        pixel along the object's own flow (``motion='own'``, :func:`own_motion_carry`), moved
        as a whole by the object's shift (``'object'``), or pixel by pixel along the raw flow
        (``'flow'``). (Moving each connected part by its own shift measured worse on
        schoolgirls, 0.466 vs 0.483, with GrabCut.)"""
        if self.opts.motion == "own" and self.prev_mask.any():
            fwd, bwd = self.estimator(self.prev_frame, frame), self.estimator(frame, self.prev_frame)
            soft, self.velocity = own_motion_carry(self.prev_mask, fwd, bwd, self._background(fwd), self.velocity)
            self._flows = (fwd, bwd)
            return soft
        if self.opts.motion == "object" and self.prev_mask.any():
            flow = self.estimator(self.prev_frame, frame)
            shift, _ = object_motion(self.prev_mask, flow, self._background(flow))
            return move_mask(self.prev_mask, _shift_matrix(shift)).astype(np.float32)
        return warp_mask(self.prev_mask, self.estimator(frame, self.prev_frame)).astype(np.float32)


def appearance_model(frame: np.ndarray, mask: np.ndarray, opts: TrackOptions):
    """The seed frame's :class:`~tsam_cli.masking.appearance.AppearanceModel` (trains the net:
    ``net_steps`` steps, ~0.05 CPU s each: 5 s for the default 100 at 432x240)."""
    from tsam_cli.masking.appearance import AppearanceModel

    return AppearanceModel(frame, mask, opts.net_steps, opts.update_every, opts.net_seed)


# ---------------------------------------------------------------------------- a video
def tracking_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """``(w, h)`` with the long side at most ``max_size`` (never upscales)."""
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return img if (img.shape[1], img.shape[0]) == size else cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5


def upscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(h, w) bool`` at the tracking size -> ``(H, W) bool`` at ``size = (W, H)`` (bilinear, 0.5)."""
    import cv2

    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5


class _JpegStash:
    """Frames before the seed, JPEG-compressed (quality 95): a few tens of KB each."""

    def __init__(self) -> None:
        self.items: list[bytes] = []

    def push(self, rgb: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        self.items.append(buf.tobytes())

    def pop(self) -> np.ndarray:
        import cv2

        return cv2.imdecode(np.frombuffer(self.items.pop(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy()


@dataclass
class TrackResult:
    """Packed masks at the tracking size, in frame order; ``seconds`` per frame of tracking."""

    packed: list[np.ndarray]
    small_size: tuple[int, int]  # (w, h) tracking size
    size: tuple[int, int]  # (W, H) video size
    lost_forward: int | None  # first frame after the seed with an empty mask
    lost_backward: int | None  # first frame before the seed with an empty mask
    seconds_per_frame: float
    #: per frame ``(confidence 0..1, weakest signal)`` (:func:`frame_confidence`; seed frames ``(1.0, "seed")``)
    scores: list = field(default_factory=list)
    seeds: list = field(default_factory=list)  # the seed frames, in order

    @property
    def confidence(self) -> list[float]:
        """Per frame confidence in 0..1 (low = look at this frame)."""
        return [c for c, _ in self.scores]

    def mask(self, i: int) -> np.ndarray:
        """``(h, w) bool`` mask of frame ``i`` at the tracking size."""
        return unpack_mask(self.packed[i], self.small_size)

    def full_masks(self, dilate: int = 0) -> Iterator[np.ndarray]:
        """``(H, W) bool`` masks at the video size, one at a time, grown by ``dilate`` px."""
        import cv2

        kernel = disk(dilate) if dilate > 0 else None
        for i in range(len(self.packed)):
            m = upscale_mask(self.mask(i), self.size)
            yield cv2.dilate(m.astype(np.uint8), kernel) > 0 if kernel is not None else m


def track_frames(frames, n_frames: int, size: tuple[int, int], seed: np.ndarray, seed_index: int,
                 opts: TrackOptions, reporter, is_box: bool = False) -> TrackResult:
    """Track ``seed`` (``(H, W) bool`` on frame ``seed_index``) through ``frames``.

    Args:
        frames: iterable of ``(H, W, 3) uint8`` RGB frames in order (decoded once).
        n_frames: how many frames to expect (for the progress bar).
        size: ``(W, H)`` of the frames.
        is_box: ``seed`` is a rectangle around the object: cut the object out of it on the
            seed frame first (:func:`fit_box`).
    Returns a :class:`TrackResult`; raises :class:`MaskError` when the video has fewer
    than ``seed_index + 1`` frames.
    """
    import cv2

    from tsam_cli.flow.estimate import make_estimator

    cv2.setRNGSeed(0)  # GrabCut's k-means start is random: the same input gives the same masks
    small = tracking_size(*size, opts.max_size)
    estimator = make_estimator(opts.flow)
    seed_small = _seed_small(seed, seed_index, small, opts)
    t0 = time.perf_counter()
    forward = _track_forward(frames, n_frames, small, seed_small, seed_index, opts, estimator, reporter, is_box)
    lost_b, n_back = _track_backward(forward, seed_index, opts, estimator, reporter)
    spf = (time.perf_counter() - t0) / max(forward.n_tracked + n_back, 1)
    packed = forward.backdrop.peeled(forward.packed, small)
    return TrackResult(packed, small, size, forward.lost, lost_b, spf, forward.scores, [seed_index])


def _seed_small(seed: np.ndarray, index: int, small: tuple[int, int], opts: TrackOptions) -> np.ndarray:
    """``seed`` ``(H, W) bool`` at the tracking size ``small``; :class:`MaskError` when under ``min_area``."""
    seed_small = _shrink_mask(seed, small)
    if int(seed_small.sum()) < opts.min_area:
        raise MaskError(f"the object on frame {index} is smaller than {opts.min_area} pixels at the tracking "
                        f"size {small[0]}x{small[1]}: draw a larger box/mask or raise --max-size")
    return seed_small


# ---------------------------------------------------------------------------- several seeds
def nearest_seed(i: int, seeds: list[int]) -> int:
    """The seed frame that frame ``i`` follows: the nearest of ``seeds`` (sorted, not empty); a
    frame halfway between two seeds follows the earlier one."""
    import bisect

    k = bisect.bisect_right(seeds, i)  # seeds[:k] are at or before i
    if k == 0:
        return seeds[0]
    if k == len(seeds):
        return seeds[-1]
    before, after = seeds[k - 1], seeds[k]
    return before if i - before <= after - i else after


class _SeededPass:
    """Tracking from several seeds in one decode. Each frame follows its :func:`nearest_seed`: a
    frame after its seed is tracked forward as it is decoded; one before it is stashed (JPEG, as
    the one-seed backward pass) and tracked backward from that seed when the seed frame comes.
    So each seed's track runs to halfway to its neighbours, and a seed on a later frame takes
    over from the earlier seed's track there (a corrected seed overrides a slipped track)."""

    def __init__(self, seeds: dict, opts: TrackOptions, estimator, backdrop: Backdrop) -> None:
        self.seeds, self.order = seeds, sorted(seeds)  # frame -> (mask at the tracking size, is_box)
        self.opts, self.estimator = opts, estimator
        self.packed: list = []
        self.scores: list = []
        self.stash, self.forward, self.n_tracked = _JpegStash(), None, 0
        self.backdrop = backdrop  # what the still-camera peel needs (off with --tight)

    def frame(self, i: int, img: np.ndarray) -> None:
        """Take frame ``i`` (``(h, w, 3) uint8`` at the tracking size), in order."""
        if i in self.seeds:
            self._seed(i, img)
        elif nearest_seed(i, self.order) < i:
            m = self.forward.step(img)
            self.backdrop.keep(i, img, m)
            self.packed.append(pack_mask(m))
            self.scores.append(self.forward.confidence)
            self.n_tracked += 1
        else:
            self.stash.push(img)
            self.packed.append(None)
            self.scores.append(None)

    def _seed(self, i: int, img: np.ndarray) -> None:
        """Seed frame ``i``: track the stashed frames before it backward, start its forward track."""
        mask, outline = _fit_seed(img, self.seeds[i][0], self.opts, self.seeds[i][1])
        back = MaskTracker(img, mask, self.opts, self.estimator, train_mask=outline)
        for j in range(i - 1, i - 1 - len(self.stash.items), -1):
            before = self.stash.pop()
            m = back.step(before)
            self.backdrop.keep(j, before, m)
            self.packed[j] = pack_mask(m)
            self.scores[j] = back.confidence
            self.n_tracked += 1
        # the appearance the backward track trained (None if it never stepped: trained on first use)
        self.forward = MaskTracker(img, mask, self.opts, self.estimator, back.seed_appearance, outline)
        saved = saved_seed(mask, self.opts)
        self.backdrop.keep(i, img, saved)
        self.packed.append(pack_mask(saved))
        self.scores.append((1.0, "seed"))


def saved_seed(mask: np.ndarray, opts: TrackOptions) -> np.ndarray:
    """The mask saved for a seed frame: ``mask`` (``(h, w) bool``) as it is with ``--tight``,
    else with the removal mode's :func:`adaptive_margin` at its sure-outline width."""
    return mask if opts.tight else adaptive_margin(mask, None, None)


def _first_lost(scores: list, start: int, step: int) -> int | None:
    """The first frame from ``start`` on (``step`` +1 / -1) whose mask is empty, or None."""
    end = len(scores) if step > 0 else -1
    return next((i for i in range(start, end, step) if scores[i][1] == "lost"), None)


def track_seeded(frames, n_frames: int, size: tuple[int, int], seeds: dict, opts: TrackOptions,
                 reporter) -> TrackResult:
    """Track from several seeds: ``seeds`` maps a frame index to ``((H, W) bool mask, is_box)``
    (as :func:`track_frames`' ``seed``/``is_box``); each frame follows its :func:`nearest_seed`
    (:class:`_SeededPass`). ``lost_forward``/``lost_backward``: the first empty frame after /
    before the first seed. Raises :class:`MaskError` when the video ends before a seed frame."""
    import cv2

    from tsam_cli.flow.estimate import make_estimator

    cv2.setRNGSeed(0)
    small = tracking_size(*size, opts.max_size)
    run = _SeededPass({i: (_seed_small(m, i, small, opts), is_box) for i, (m, is_box) in seeds.items()},
                      opts, make_estimator(opts.flow), Backdrop(n_frames, enabled=not opts.tight))
    t0 = time.perf_counter()
    reporter.start("track", n_frames)
    for i, rgb in enumerate(frames):
        run.frame(i, _shrink(rgb, small))
        reporter.advance("track")
    if run.order[-1] >= len(run.packed):
        raise MaskError(f"seed frame {run.order[-1]} is past the end of the video ({plural(len(run.packed), 'frame')}): "
                        f"give frames from 0 to {len(run.packed) - 1}")
    first = run.order[0]
    spf = (time.perf_counter() - t0) / max(run.n_tracked, 1)
    return TrackResult(run.backdrop.peeled(run.packed, small), small, size, _first_lost(run.scores, first, 1),
                       _first_lost(run.scores, first, -1), spf, run.scores, run.order)


@dataclass
class _Forward:
    """What the pass from the seed frame to the end leaves for the pass back."""

    packed: list  # per frame: pack_mask of its mask, None before the seed frame
    stash: _JpegStash  # the frames before the seed frame, for the pass back
    tracker: MaskTracker
    seed_img: np.ndarray  # the seed frame at the tracking size
    seed_mask: np.ndarray  # the object on it (fitted when a box was given)
    lost: int | None  # first frame after the seed with an empty mask
    n_tracked: int
    backdrop: Backdrop  # the still-camera peel (off with --tight)
    train_mask: np.ndarray | None = None  # what the appearance is learned from, when not seed_mask
    scores: list = field(default_factory=list)  # per frame (confidence, weakest signal), None before the seed


def _track_forward(frames, n_frames: int, small, seed_small, seed_index: int, opts, estimator, reporter,
                   is_box: bool) -> _Forward:
    """Decode every frame once: stash those before the seed, track from the seed to the end."""
    stash, packed, tracker, lost, n_tracked, outline, scores = _JpegStash(), [], None, None, 0, None, []
    backdrop = Backdrop(n_frames, enabled=not opts.tight)
    reporter.start("track", n_frames)
    for i, rgb in enumerate(frames):
        img = _shrink(rgb, small)
        if i < seed_index:
            stash.push(img)
            packed.append(None)
        elif i == seed_index:
            seed_small, outline = _fit_seed(img, seed_small, opts, is_box)
            tracker, seed_img = MaskTracker(img, seed_small, opts, estimator, train_mask=outline), img
            m = saved_seed(seed_small, opts)
            packed.append(pack_mask(m))
        else:
            m = tracker.step(img)
            n_tracked += 1
            lost = i if lost is None and not m.any() else lost
            packed.append(pack_mask(m))
        if i >= seed_index:
            backdrop.keep(i, img, m)
        scores.append(None if tracker is None else tracker.confidence)
        reporter.advance("track")
    if tracker is None:
        raise MaskError(f"--frame {seed_index} is past the end of the video ({plural(len(packed), 'frame')}): "
                        f"give a frame from 0 to {len(packed) - 1}")
    return _Forward(packed, stash, tracker, seed_img, seed_small, lost, n_tracked, backdrop, outline, scores)


def _fit_seed(img: np.ndarray, seed: np.ndarray, opts: TrackOptions, is_box: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The object on the seed frame and the mask its appearance is learned from (None: the same).

    A box is cut to the object by :func:`fit_box` (``--tight``) or :func:`fit_box_removal`
    (removal mode: recall mask, GrabCut outline); a seed mask is taken as drawn."""
    if not is_box:
        return seed, None
    return (fit_box(img, seed, opts.iterations), None) if opts.tight else fit_box_removal(img, seed, opts.iterations)


def _track_backward(fw: _Forward, seed_index: int, opts, estimator, reporter) -> tuple[int | None, int]:
    """Track from the seed frame back to frame 0 (filling ``fw.packed``); returns the first
    frame before the seed with an empty mask (or None) and the number of frames tracked."""
    if seed_index == 0:
        return None, 0
    # the appearance the forward pass trained (None if it never stepped: trained again here)
    tracker = MaskTracker(fw.seed_img, fw.seed_mask, opts, estimator, fw.tracker.seed_appearance, fw.train_mask)
    lost = None
    reporter.start("track back", seed_index)
    for i in range(seed_index - 1, -1, -1):
        img = fw.stash.pop()
        m = tracker.step(img)
        fw.backdrop.keep(i, img, m)
        lost = i if lost is None and not m.any() else lost
        fw.packed[i], fw.scores[i] = pack_mask(m), tracker.confidence
        reporter.advance("track back")
    return lost, seed_index


def seed_mask(video_info, opts: TrackOptions, reporter) -> np.ndarray:
    """The object on the seed frame: ``(H, W) bool`` in coded orientation, True = object.

    ``--seed`` (a mask image, or a mask video/folder of which frame ``--frame`` is taken) and
    ``--box`` (display pixels) are read by :class:`tsam_cli.media.masks.MaskStream`, so
    orientation, thresholds and sizes follow the rules of ``--mask``; both given = union.
    """
    import itertools

    from tsam_cli.media.masks import MaskSpec, MaskStream, parse_box

    box = parse_box(opts.box) if isinstance(opts.box, str) else opts.box
    spec = MaskSpec(Path(opts.seed) if opts.seed else None, box, opts.invert_seed, 0, None, flag="--seed")
    # only frames up to --frame are read: a seed mask video may be shorter than the clip
    stream = MaskStream(spec, video_info.width, video_info.height, opts.frame + 1, reporter,
                        rotation=video_info.rotation)
    m = next(itertools.islice(iter(stream), opts.frame, None), None)
    if m is None or not m.any():
        raise MaskError(f"the seed mask is empty on frame {opts.frame}: draw the object on that frame "
                        "(white = object; --invert-seed if black marks it) or give the --frame it is drawn on")
    if m.all():
        raise MaskError(f"the seed mask covers all of frame {opts.frame}: draw only the object (white), "
                        "or pass --invert-seed if black marks it")
    if m.mean() > 0.6:
        reporter.warn(f"the seed mask covers {m.mean():.0%} of frame {opts.frame}: white = object; "
                      "--invert-seed if black marks it")
    return m


def read_seeds(video_info, opts: TrackOptions, reporter) -> dict:
    """Every seed of ``opts``: ``{frame: ((H, W) bool mask, is_box)}``, True = object.

    Each ``--seed MASK@N`` (a plain ``MASK``: on ``--frame``) is read by :func:`seed_mask`; ``--box``
    is on ``--frame``, joined with the seed mask there (``is_box`` False) or alone (``is_box``
    True: cut to the object on that frame). Raises :class:`UsageError` for a seed past the end
    of the video or two on one frame, :class:`MaskError` for an empty one.
    """
    import dataclasses

    from tsam_cli.masking.options import seed_frames

    pairs = seed_frames(opts)
    n = video_info.n_frames
    for path, f in [*pairs, *([(None, opts.frame)] if opts.box is not None else [])]:
        if f >= n:
            what = f"--frame {f}" if path is None or len(pairs) == 1 and f == opts.frame else f"--seed {path}@{f}"
            raise UsageError(f"{what} is past the end of {video_info.path} ({plural(n, 'frame')}): give 0 to {n - 1}")
    seeds = {}
    for path, f in pairs:
        one = dataclasses.replace(opts, seed=path, frame=f, box=opts.box if f == opts.frame else None)
        seeds[f] = (seed_mask(video_info, one, reporter), False)
    if opts.box is not None and opts.frame not in seeds:
        seeds[opts.frame] = (seed_mask(video_info, dataclasses.replace(opts, seed=None), reporter), True)
    return seeds


@dataclass
class TrackReport:
    """What ``tsam mask track`` did, for the summary line."""

    output: Path
    n_frames: int
    seconds_per_frame: float
    lost_forward: int | None
    lost_backward: int | None
    low: list = field(default_factory=list)  # (first, last) frame ranges of low confidence (:func:`low_ranges`)
    confidence_file: Path | None = None  # the sidecar written beside the masks
    low_reason: str | None = None  # what most low frames have in common (:func:`low_reason`)

    def summary(self) -> str:
        lost = [f"lost after frame {self.lost_forward - 1}" if self.lost_forward is not None else "",
                f"lost before frame {self.lost_backward + 1}" if self.lost_backward is not None else ""]
        lost_text = "; ".join(x for x in lost if x) or "followed on every frame"
        text = (f"wrote {self.output}: {self.n_frames} mask frames ({lost_text}), "
                f"{self.seconds_per_frame:.3f} s per tracked frame")
        if self.low:
            why = f", mostly because {self.low_reason}" if self.low_reason else ""
            text += (f"\nlow confidence: {plural(sum(b - a + 1 for a, b in self.low), 'frame')} "
                     f"({format_ranges(self.low)}){why}: check them with tsam preview VIDEO --mask {self.output}, "
                     f"fix with --seed MASK@N")
        return text


def track_video(video: str | Path, out: str | Path, opts: TrackOptions, reporter=None,
                fps: float | None = None) -> TrackReport:
    """``tsam mask track``: follow the object of ``opts`` through ``video``; write the masks to
    ``out`` (lossless mask video or PNG folder, :func:`tsam_cli.masking.save.save_masks`) and the
    per-frame confidence beside them (``OUT.confidence.json``, :func:`~tsam_cli.masking.save.confidence_path`).

    Both output paths are checked before the (long) tracking and written only at the end, via
    :class:`~tsam_cli.media.output.OutputTarget`: nothing is left at either on an error. With
    several seeds (``--seed MASK@N`` repeated) :func:`track_seeded` runs, else :func:`track_frames`.
    """
    from tsam_cli.masking.options import seed_frames
    from tsam_cli.masking.save import confidence_json, confidence_target, save_masks
    from tsam_cli.media import complete_frames, probe
    from tsam_cli.media.output import check_output_path
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    opts.validate()
    info = probe(Path(video), fps=fps)
    protected = [("the seed mask", Path(p)) for p, _ in seed_frames(opts)]
    check_output_path(Path(out), [("the input", info.path), *protected], opts.overwrite)
    seeds = read_seeds(info, opts, rep)
    pts: list[int | None] = []

    def frames():
        for f in complete_frames(info):  # a truncated input stops here, not silently
            pts.append(f.pts)
            yield f.rgb

    size = (info.width, info.height)
    with confidence_target(Path(out), [("the input", info.path), *protected], opts.overwrite) as sidecar:
        if len(seeds) == 1:
            (index, (seed, is_box)), = seeds.items()
            result = track_frames(frames(), info.n_frames, size, seed, index, opts, rep, is_box=is_box)
        else:
            result = track_seeded(frames(), info.n_frames, size, seeds, opts, rep)
        n = save_masks(zip(result.full_masks(opts.dilate), pts, strict=True), Path(out), info,
                       overwrite=opts.overwrite, protected=protected, reporter=rep)
        sidecar.write_with(lambda tmp: tmp.write_text(confidence_json(result.scores, result.seeds, LOW_CONFIDENCE),
                                                      encoding="utf-8"))
    return TrackReport(Path(out), n, result.seconds_per_frame, result.lost_forward, result.lost_backward,
                       low_ranges(result.confidence), sidecar.path, low_reason(result.scores))
