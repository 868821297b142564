"""Optical flow, flow completion inside holes, and forward-backward validity masks.

Conventions (all arrays are numpy, processing resolution):
  * frames: ``(H, W, 3) uint8 RGB``; holes: ``(H, W) bool``, True = hole.
  * a flow ``F`` is ``(H, W, 2) float32`` in pixels, ``F[y, x] = (dx, dy)``: the pixel at
    ``(x, y)`` of the first image moves to ``(x + dx, y + dy)`` in the second (paper Eq. 1).
  * for a pair ``(t, t+1)``: ``fwd`` is the flow t -> t+1 on frame t's grid, ``bwd`` the
    flow t+1 -> t on frame t+1's grid (the official TSAM code's convention, docs/official-checkpoint.md fact 31).

Estimators are pluggable: anything with ``__call__(img1, img2) -> flow`` and a ``name``.
The default is OpenCV's DIS (Kroeger et al., ECCV 2016), fast on a CPU. RAFT (torchvision)
can be added as another estimator with the same interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsam_cli.options import DEFAULT_DELTA  # paper Eq. 2's delta, defined and explained there

#: Flow is also discarded in a band of this many pixels around each hole before completion:
#: DIS matches 8x8 patches (medium preset), so vectors next to a moving object are a mix of
#: the object's and the background's motion.
FLOW_MARGIN = 6


#: Why small frames are padded before DIS (OpenCV 4.x/5.0 ``modules/video/src/dis_flow.cpp``):
#: DIS starts at pyramid level ``min(int(log2(max(H, W) / (4 * patch)) + 0.5),
#: int(log2(min(H, W) / patch)))``. When that is below the preset's finest scale it falls back
#: to ``autoSelectPatchSizeAndScales``, which looks at the *width only*: on short, wide frames
#: the coarse levels become smaller than a patch and DIS reads out of bounds (segfault, exit
#: 139), and the fallback also overwrites the object's finest scale for every later call.
#: Frames under 8 px (and some extreme aspect ratios) raise ``cv2.error`` instead.
#: Measured with a child process per crash (OpenCV 5.0.0, random texture, the three presets;
#: H x W over 1..64 x 1..64, plus H = 1..64 with W in 80..4096 and the transposes):
#:   * all presets: cv2.error when min(H, W) < 8, or H and W < 12; tall frames never fail.
#:   * medium (patch 8, finest 1): H = 8..15 segfaults for most W in 40..256 (e.g. 12 x 96)
#:     and gives cv2.error from W = 400; H >= 16 never fails.
#:   * fast and ultrafast (patch 8, finest 2): the same for H = 8..15; H = 16..31 segfaults
#:     for most W in 80..512 and gives cv2.error from W = 1000; H >= 32 never fails. So no
#:     single "safe minimum" exists below the formula's: 31 x 400 still crashes.
#: All failures are exactly the frames that take the fallback or are below 8 px, so we pad
#: (bottom/right, edge-replicated: coordinates and vectors of the real pixels are unchanged)
#: until the normal path is taken, with 25% margin (:func:`dis_min_size`): short side >= 40 and
#: long side >= 114 for fast/ultrafast, >= 20 and >= 57 for medium. The same sweep through
#: :class:`DISFlow` (5504 sizes per preset, forward and backward) then had no failure.
DIS_SIZE_MARGIN = 1.25


def dis_min_size(patch_size: int, finest_scale: int) -> tuple[int, int]:
    """``(min short side, min long side)`` in pixels for which DIS keeps its normal pyramid.

    From the coarsest-level formula above: ``int(log2(short / patch)) >= finest`` needs
    ``short >= patch * 2**finest``; ``int(log2(long / (4 * patch)) + 0.5) >= finest`` needs
    ``long >= 4 * patch * 2**(finest - 0.5)``. Both are multiplied by :data:`DIS_SIZE_MARGIN`.
    """
    short = patch_size * 2**finest_scale
    long_side = max(4 * patch_size * 2 ** (finest_scale - 0.5), short)
    return math.ceil(DIS_SIZE_MARGIN * short), math.ceil(DIS_SIZE_MARGIN * long_side)


def pad_to_min_size(img: np.ndarray, min_short: int, min_long: int) -> np.ndarray:
    """Pad ``(H, W[, C])`` at the bottom/right (edge replicate) so that both sides are at least
    ``min_short`` and the longer one at least ``min_long``. Returns ``img`` itself if it is
    already large enough; ``out[:H, :W] == img`` otherwise."""
    import cv2

    h, w = img.shape[:2]
    ph, pw = max(h, min_short), max(w, min_short)
    if max(ph, pw) < min_long:
        if pw >= ph:
            pw = min_long
        else:
            ph = min_long
    if (ph, pw) == (h, w):
        return img
    return cv2.copyMakeBorder(img, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)


class DISFlow:
    """OpenCV DIS optical flow on grey images. ``preset``: ``ultrafast | fast | medium``.

    Frames of any size >= 1 x 1 work: small or short-and-wide frames are padded before DIS
    (which would crash on them, see the notes above :data:`DIS_SIZE_MARGIN`) and the flow is
    cropped back.
    """

    name = "dis"

    def __init__(self, preset: str = "medium") -> None:
        import cv2

        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        if preset not in presets:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(presets)}")
        self._dis = cv2.DISOpticalFlow_create(presets[preset])
        self._cv2 = cv2
        self.min_size = dis_min_size(self._dis.getPatchSize(), self._dis.getFinestScale())

    def __call__(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` x2 -> ``(H, W, 2) float32`` flow img1 -> img2 (any H, W >= 1)."""
        cv2 = self._cv2
        h, w = img1.shape[:2]
        g1 = pad_to_min_size(cv2.cvtColor(img1, cv2.COLOR_RGB2GRAY), *self.min_size)
        g2 = pad_to_min_size(cv2.cvtColor(img2, cv2.COLOR_RGB2GRAY), *self.min_size)
        flow = self._dis.calc(g1, g2, None)
        if flow.shape[:2] != (h, w):
            flow = np.ascontiguousarray(flow[:h, :w])
        return flow


def make_estimator(name: str = "dis"):
    """Flow estimator by name (``dis``, ``dis-fast``, ``dis-ultrafast``)."""
    if name == "dis":
        return DISFlow("medium")
    if name.startswith("dis-"):
        return DISFlow(name[4:])
    raise ValueError(f"unknown flow method {name!r}: use dis, dis-fast or dis-ultrafast")


def smooth_fill(values: np.ndarray, hole: np.ndarray, smooth_iters: int = 4) -> np.ndarray:
    """Fill ``values`` inside ``hole`` smoothly from the hole boundary (push-pull).

    A pyramid of hole-aware averages is built down to a few pixels ("push"), then each
    level's missing pixels take the upsampled coarser level ("pull"); a few masked blurs
    remove the pyramid's blockiness. Outside the hole the values are returned unchanged.

    Args:
        values: ``(H, W, C) float32`` (e.g. a flow field, C = 2).
        hole: ``(H, W) bool``, True = unknown.
    Returns:
        ``(H, W, C) float32``.
    """
    import cv2

    if not hole.any():
        return values
    known = (~hole).astype(np.float32)
    if not known.any():
        return np.zeros_like(values)
    nums, weights = [values * known[..., None]], [known]
    while min(nums[-1].shape[:2]) > 4:
        h, w = nums[-1].shape[:2]
        size = ((w + 1) // 2, (h + 1) // 2)
        n = cv2.resize(nums[-1], size, interpolation=cv2.INTER_AREA)
        k = cv2.resize(weights[-1], size, interpolation=cv2.INTER_AREA)
        nums.append(n.reshape(size[1], size[0], -1))
        weights.append(k)
    # coarsest level: normalised average, missing pixels take the global mean
    k = weights[-1][..., None]
    mean = nums[0].sum(axis=(0, 1)) / max(known.sum(), 1.0)
    est = np.where(k > 1e-6, nums[-1] / np.maximum(k, 1e-6), mean)
    for n, k in zip(reversed(nums[:-1]), reversed(weights[:-1]), strict=True):
        h, w = n.shape[:2]
        up = cv2.resize(est, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        k3 = k[..., None]
        # blend the local known average with the coarser estimate by the known fraction
        est = k3 * (n / np.maximum(k3, 1e-6)) + (1 - k3) * up
    out = np.where(hole[..., None], est, values).astype(np.float32)
    for _ in range(smooth_iters):
        blurred = cv2.blur(out, (5, 5)).reshape(out.shape)
        out = np.where(hole[..., None], blurred, values).astype(np.float32)
    return out


def grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate a ``(H, W) bool`` mask by ``pixels`` (square kernel); returns a new mask."""
    import cv2

    if pixels <= 0 or not hole.any():
        return hole
    return cv2.dilate(hole.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0


def sample(img: np.ndarray, flow: np.ndarray, interpolation: int | None = None) -> np.ndarray:
    """Backward-warp: ``out[y, x] = img[y + dy, x + dx]`` (bilinear; zeros outside).

    Args:
        img: ``(H, W[, C])`` float32 (or uint8) image on the target grid.
        flow: ``(H, W, 2) float32`` pointing from the output grid into ``img``.
    """
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    interp = cv2.INTER_LINEAR if interpolation is None else interpolation
    return cv2.remap(img, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def in_bounds(flow: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: True where ``p + flow(p)`` lands inside the image (bilinear-safe)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def validity(flow_ab: np.ndarray, flow_ba: np.ndarray, delta: float = DEFAULT_DELTA) -> np.ndarray:
    """Forward-backward cycle consistency, paper Eq. 2.

    A pixel ``A`` of image a is valid when its flow lands inside image b and coming back
    with b's flow returns within ``delta`` pixels: ``|| F_ab(A) + F_ba(A + F_ab(A)) || < delta``.

    Args:
        flow_ab: ``(H, W, 2)`` flow a -> b on a's grid.
        flow_ba: ``(H, W, 2)`` flow b -> a on b's grid.
    Returns:
        ``(H, W) bool`` on a's grid, True = valid correspondence.
    """
    back = sample(flow_ba, flow_ab)
    err = np.linalg.norm(flow_ab + back, axis=2)
    return (err < delta) & in_bounds(flow_ab)


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
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    den = m[2, 0] * gx + m[2, 1] * gy + m[2, 2]
    if den.min() <= 1e-3:
        return None
    fx = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / den - gx
    fy = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / den - gy
    return np.stack([fx, fy], axis=2).astype(np.float32)


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

    other = (~region & ~follows).astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    other = cv2.morphologyEx(other, cv2.MORPH_OPEN, disc)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return region & (cv2.morphologyEx(other, cv2.MORPH_CLOSE, disc) > 0)


def complete_flow(flow: np.ndarray, region: np.ndarray, model: np.ndarray | None = None) -> np.ndarray:
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
    Returns:
        ``(H, W, 2) float32``.
    """
    if not region.any():
        return flow
    if model is None:
        return smooth_fill(flow, region)
    d = flow - model
    follows = (np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2) < LAYER_INLIER_TOL) & ~region
    layered = background_holes(region, follows)
    out = flow
    if layered.any():  # model + residual, the residual interpolated from the model's layer only
        out = np.where(layered[..., None], model + smooth_fill(d, ~follows), out)
    other = region & ~layered
    if other.any():  # from the other layer's pixels only (all of them when none follows the model)
        unknown = region | follows if not (region | follows).all() else region
        out = np.where(other[..., None], smooth_fill(flow, unknown), out)
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
        out |= ~validity(raw_ab, raw_ba, delta) & (sample(target, model_ab) > 0)
    return out


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
    import cv2

    if not region.any() or region.all():
        return values
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
    if not completed_a.any():
        return np.ones(completed_a.shape, bool)
    known_b = (~hole_b).astype(np.float32)
    weight = sample(known_b, flow_ab)  # bilinear weight of b's known pixels at B
    judged = completed_a & (weight > LAYER_MIN_WEIGHT)
    d = flow_ab + sample(measured_ba * known_b[..., None], flow_ab) / np.maximum(weight, 1e-6)[..., None]
    return ~(judged & (d[..., 0] ** 2 + d[..., 1] ** 2 >= tol * tol))


@dataclass
class PairFlow:
    """Flows and validity for frames (t, t+1): fwd/valid_f on t's grid, bwd/valid_b on t+1's."""

    fwd: np.ndarray
    bwd: np.ndarray
    valid_f: np.ndarray
    valid_b: np.ndarray


def pair_flow(estimator, img_a: np.ndarray, img_b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray,
              delta: float = DEFAULT_DELTA, motion=None) -> PairFlow:
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
    """
    motion = (DEFAULT_MOTION if motion is None else motion) or None
    raw_f, raw_b = estimator(img_a, img_b), estimator(img_b, img_a)
    grown_a, grown_b = grow(hole_a, FLOW_MARGIN), grow(hole_b, FLOW_MARGIN)
    any_hole = grown_a.any() or grown_b.any()
    model_f = motion(raw_f, ~grown_a) if motion is not None and any_hole else None
    model_b = motion(raw_b, ~grown_b) if motion is not None and any_hole else None
    reg_a = untrusted(grown_a, raw_f, grown_b, raw_b, model_f, delta)
    reg_b = untrusted(grown_b, raw_b, grown_a, raw_f, model_b, delta)
    fwd, bwd = complete_flow(raw_f, reg_a, model_f), complete_flow(raw_b, reg_b, model_b)
    meas_f, meas_b = nearest_outside(raw_f, reg_a), nearest_outside(raw_b, reg_b)
    valid_f = validity(fwd, bwd, delta) & same_layer(fwd, meas_b, reg_a, hole_b)
    valid_b = validity(bwd, fwd, delta) & same_layer(bwd, meas_f, reg_b, hole_a)
    return PairFlow(fwd, bwd, valid_f, valid_b)


def still_pair_flow(shape: tuple[int, int]) -> PairFlow:
    """The pair flow of two frames one of which is a hole everywhere (``shape`` = (H, W)):
    nothing of that frame can be tracked, so it gets what a still camera would give, every
    pixel to the same place, all valid; propagation then fills it from its neighbours like any
    other frame instead of leaving it to a filler that has nothing to start from."""
    zero = np.zeros((*shape, 2), np.float32)
    ones = np.ones(shape, bool)
    return PairFlow(zero, zero.copy(), ones, ones.copy())


def upscale_pair_flow(pf: PairFlow, size: tuple[int, int]) -> PairFlow:
    """A pair flow computed at a small size, brought to ``size = (W, H)``.

    Vectors are resized bilinearly and scaled by the size ratio (a vector of 1 px at half
    size is 2 px at full size); validity masks are resized with nearest neighbour.
    """
    import cv2

    h, w = pf.fwd.shape[:2]
    W, H = size
    scale = np.array([W / w, H / h], np.float32)

    def vec(f):
        return cv2.resize(f, (W, H), interpolation=cv2.INTER_LINEAR) * scale

    def val(v):
        return cv2.resize(v.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0

    return PairFlow(vec(pf.fwd), vec(pf.bwd), val(pf.valid_f), val(pf.valid_b))
