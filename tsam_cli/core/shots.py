"""Shot cuts: no colour is ever copied, nor any flow trusted, across a cut.

A cut between two frames makes their optical flow meaningless; flow-guided propagation would
then paste the other shot's content into the hole ("content from the other side of
a shot cut leaks in"). :func:`is_cut` decides per pair of neighbouring frames, and the pipeline
treats a pair across a cut like a pair without flow (nothing propagates through it).

Two tests must agree (measurements in docs/shot-cuts.md):

1. colour: PySceneDetect's content detector: convert both frames to HSV and average the mean
   absolute differences of the H, S and V channels; above ``CUT_THRESHOLD`` the frames differ.
   Alone it is not enough: fast continuous motion (bmx-trees, a pan at 14 px/frame) scores up
   to 37 against the threshold 27.
2. motion: the flow between the frames (already computed for propagation) is consistent
   (paper Eq. 2) on fewer than ``CUT_MAX_VALID`` of the known pixels. Within one shot it is
   >= 0.87 even on those fast clips; across a cut <= 0.03.

Only pixels outside both frames' holes count, so the object being removed (often the
fastest-changing thing in view) does not trigger cuts.
"""

from __future__ import annotations

import numpy as np

#: PySceneDetect ``ContentDetector(threshold=27.0)``, its default (docs/shot-cuts.md): mean
#: |HSV difference| (0-255 scale, OpenCV's H in 0-179) above which two frames are different shots
CUT_THRESHOLD = 27.0
#: frames are compared at this width: the score is a mean over the frame, detail does not matter
#: and 160 px wide costs ~0.2 ms a pair
COMPARE_WIDTH = 160
#: at most this fraction of the known pixels with a consistent flow: no common content
CUT_MAX_VALID = 0.2
#: fewer comparable pixels than this fraction of the frame: no decision (not a cut)
MIN_KNOWN = 0.25


def cut_score(a: np.ndarray, b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray) -> float:
    """Mean |HSV difference| of two ``(H, W, 3) uint8`` RGB frames over the pixels known in
    both (holes ``(H, W) bool``, True = hole); 0 when too few pixels are known to tell."""
    import cv2

    h, w = hole_a.shape
    size = (min(w, COMPARE_WIDTH), max(1, round(h * min(w, COMPARE_WIDTH) / w)))
    hsv = [cv2.cvtColor(cv2.resize(x, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV).astype(np.float32)
           for x in (a, b)]
    known = cv2.resize((~(hole_a | hole_b)).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if known.mean() < MIN_KNOWN:
        return 0.0
    return float(np.abs(hsv[0] - hsv[1])[known].mean())


def is_cut(a: np.ndarray, b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray, valid_ab: np.ndarray) -> bool:
    """True when neighbouring frames ``a`` and ``b`` belong to different shots: their colours
    differ (:func:`cut_score`) and their flow is consistent almost nowhere (``valid_ab (H, W)
    bool``, the a->b validity of :func:`tsam_cli.flow.pair.pair_flow`)."""
    known = ~(hole_a | hole_b)
    if not known.any() or valid_ab[known].mean() >= CUT_MAX_VALID:
        return False
    return cut_score(a, b, hole_a, hole_b) > CUT_THRESHOLD
