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

from tsam_cli.options import DEFAULT_DELTA  # noqa: E402,F401 - paper Eq. 2's delta; defined (and explained) there

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


@dataclass
class PairFlow:
    """Flows and validity for frames (t, t+1): fwd/valid_f on t's grid, bwd/valid_b on t+1's."""

    fwd: np.ndarray
    bwd: np.ndarray
    valid_f: np.ndarray
    valid_b: np.ndarray


def pair_flow(estimator, img_a: np.ndarray, img_b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray,
              delta: float = DEFAULT_DELTA) -> PairFlow:
    """Flow both ways between two frames, completed inside the holes, with validity masks.

    Flow inside a hole describes the object being removed, not the background behind it,
    so it is discarded (with a ``FLOW_MARGIN`` band around the hole) and re-filled smoothly
    from the boundary (:func:`smooth_fill`) before the consistency check.
    """
    fwd = smooth_fill(estimator(img_a, img_b), grow(hole_a, FLOW_MARGIN))
    bwd = smooth_fill(estimator(img_b, img_a), grow(hole_b, FLOW_MARGIN))
    return PairFlow(fwd, bwd, validity(fwd, bwd, delta), validity(bwd, fwd, delta))


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
