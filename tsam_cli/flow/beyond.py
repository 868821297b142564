"""Flow beyond the picture (outpainting): hold still what lies past a still seam.

Outside the input picture (the new area of ``tsam outpaint``, black borders filled in place)
no flow is measured; :func:`~tsam_cli.flow.complete.complete_flow` extrapolates the
background's motion model there. With a still camera that model is fitted to whatever moves
in the picture (a person in the middle of the shot) and to DIS's sub-pixel noise on flat
walls, so the extrapolated flow is 0.3-0.7 px/frame where the truth is still, and the carried
fill slides and re-fills (docs/outpaint.md, "Still camera"). A picture edge whose textured
pixels do not change between the two frames shows that nothing moves there; the region past
it then gets exactly zero flow both ways, valid both ways, and the fill stays put.

Conventions as in :mod:`tsam_cli.flow`: frames ``(H, W, 3) uint8 RGB``; masks ``(H, W) bool``
(True = hole, or True = outside the picture); flows ``(H, W, 2) float32``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tsam_cli.flow.warp import bounding_box

#: Width (px) of the strip of picture along each outside region that decides whether it is
#: still: the pixels next to the seam are the ones the new area continues; further in, the
#: subject of a still shot moves (``sam2_coffee_pour``: arms within 48 px of a 75 % crop's edge).
STILL_BAND = 16
#: A strip pixel counts only where the picture has texture: 3x3 Sobel magnitude of the grey
#: frame at least this (64 = a ramp of 8 grey levels per pixel, since a Sobel kernel weighs a
#: ramp by 8), so that a shift of 0.4 px changes it by more than STILL_DIFF. Flat pixels do not
#: change under motion and say nothing.
STILL_TEXTURE = 64.0
#: A textured strip pixel is unchanged when its grey level moves by at most this much between
#: the two frames: above H.264's noise on still, textured pixels (1-2 grey levels).
STILL_DIFF = 3.0
#: The region is still when at least this fraction of its textured strip pixels is unchanged.
#: Measured per pair on 75 % crops of 36 real clips (``benchmarks/outpaint.py --still-table``,
#: table in docs/outpaint.md): clips whose true motion past the seam is at most 0.25 px/frame
#: have a median of 0.56-1.00, clips moving 0.45 px/frame or more 0.07-0.48; 0-17 % of a
#: moving clip's pairs pass (among them the arm-wrestling clip's repeated frames).
STILL_FRACTION = 0.5
#: Fewer textured strip pixels than this: undecided, the motion model stays.
STILL_MIN_SAMPLES = 64


#: A picture narrower or lower than this (px) is measured on the whole canvas: DIS needs a few
#: of its 8x8 patches across
MIN_PICTURE = 32


def picture_flows(estimator, img_a: np.ndarray, img_b: np.ndarray, out_a: np.ndarray,
                  out_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flows a -> b and b -> a measured on the pictures' bounding box only, zero outside it.

    The canvas past the picture holds edge-replicated rows that do not move with the scene; DIS
    (coarse to fine, with a smoothness term) drags the picture's flow towards their stillness
    for some 20 px inside the seam (a 6 px/frame pan read 1-2 px/frame next to the seam of a
    75 % crop, ``da_rollercoaster``). Cut to the picture, the seam is an image border, as in the
    source video. Outside the box the zeros are never used: that area is all hole, completed.
    ``out_a``, ``out_b`` ``(H, W) bool``, True = outside the picture; flows ``(H, W, 2) float32``.
    """
    box = bounding_box(~(out_a & out_b))
    H, W = out_a.shape
    if box is None or box == (0, H, 0, W) or min(box[1] - box[0], box[3] - box[2]) < MIN_PICTURE:
        return estimator(img_a, img_b), estimator(img_b, img_a)
    y0, y1, x0, x1 = box
    a, b = (np.ascontiguousarray(img[y0:y1, x0:x1]) for img in (img_a, img_b))
    flows = []
    for src, dst in ((a, b), (b, a)):
        full = np.zeros((H, W, 2), np.float32)
        full[y0:y1, x0:x1] = estimator(src, dst)
        flows.append(full)
    return flows[0], flows[1]


def grey(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB -> ``(H, W) float32`` grey."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def textured(grey_img: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: pixels whose 3x3 Sobel magnitude is at least :data:`STILL_TEXTURE`."""
    import cv2

    return cv2.magnitude(cv2.Sobel(grey_img, cv2.CV_32F, 1, 0), cv2.Sobel(grey_img, cv2.CV_32F, 0, 1)) >= STILL_TEXTURE


def unchanged_fraction(grey_a: np.ndarray, grey_b: np.ndarray, sel: np.ndarray) -> float | None:
    """Fraction of the pixels ``sel`` (``(H, W) bool``: the textured part of a strip) whose grey
    level changes by at most :data:`STILL_DIFF` from ``grey_a`` to ``grey_b``; None below
    :data:`STILL_MIN_SAMPLES`."""
    n = int(sel.sum())
    if n < STILL_MIN_SAMPLES:
        return None
    return float((np.abs(grey_a - grey_b)[sel] <= STILL_DIFF).sum()) / n


def still_outside(img_a: np.ndarray, img_b: np.ndarray, known: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The parts of ``outside`` that lie past a still edge of the picture.

    Each connected part of ``outside`` (8-connected: a ring of padding is one part, left and
    right strips two) is judged on the pixels of ``known`` within :data:`STILL_BAND` px of it.

    Args:
        img_a, img_b: ``(H, W, 3) uint8`` the pair's frames.
        known: ``(H, W) bool``, True = picture pixel known in both frames.
        outside: ``(H, W) bool``, True = outside the picture in either frame.
    Returns:
        ``(H, W) bool``, a subset of ``outside``.
    """
    import cv2

    n, labels = cv2.connectedComponents(outside.astype(np.uint8), connectivity=8)
    still = np.zeros(outside.shape, bool)
    if n < 2:
        return still
    ga, gb = grey(img_a), grey(img_b)
    judged = known & textured(ga)  # the same for every part: computed once
    for label in range(1, n):
        part = labels == label
        dist = cv2.distanceTransform((~part).astype(np.uint8), cv2.DIST_L2, 5)
        fraction = unchanged_fraction(ga, gb, judged & (dist <= STILL_BAND))
        if fraction is not None and fraction >= STILL_FRACTION:
            still |= part
    return still


def hold_still_beyond(pf, img_a: np.ndarray, img_b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray,
                      out_a: np.ndarray, out_b: np.ndarray):
    """``pf`` (a :class:`~tsam_cli.flow.pair.PairFlow`) with zero flow, valid both ways, in the
    parts of the outside regions ``out_a`` / ``out_b`` (``(H, W) bool``, True = no picture there)
    that lie past a still edge (:func:`still_outside`); ``pf`` itself when there are none.
    ``hole_a`` / ``hole_b``: the frames' whole holes (outside regions and user masks)."""
    still = still_outside(img_a, img_b, ~hole_a & ~hole_b, out_a | out_b)
    if not still.any():
        return pf
    fwd, bwd = pf.fwd.copy(), pf.bwd.copy()
    on_a, on_b = still & out_a, still & out_b
    fwd[on_a], bwd[on_b] = 0.0, 0.0
    return replace(pf, fwd=fwd, bwd=bwd, valid_f=pf.valid_f | on_a, valid_b=pf.valid_b | on_b)
