"""Optical flow estimation: OpenCV DIS (Kroeger et al., ECCV 2016), safe on any frame size.

Estimators are pluggable: anything with ``__call__(img1, img2) -> (H, W, 2) float32`` and a
``name``; :func:`make_estimator` builds one by name. Frames are ``(H, W, 3) uint8`` RGB; a flow
``F[y, x] = (dx, dy)`` moves the pixel at ``(x, y)`` of the first image to ``(x + dx, y + dy)``
in the second (paper Eq. 1).
"""

from __future__ import annotations

import math

import numpy as np

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
