"""Flow warping error E_warp of a video (temporal stability).

Definition (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018, eq. 8):

    E_pair(V_t, V_{t+1}) = 1 / sum_i M_t(i) * sum_i M_t(i) * || V_t(i) - W(V_{t+1})(i) ||_2^2
    E_warp(V)            = 1 / (T - 1) * sum_{t=1}^{T-1} E_pair(V_t, V_{t+1})

where W(V_{t+1}) is frame t+1 warped back to frame t with the optical flow t -> t+1 and
M_t is the non-occlusion mask (1 = flow reliable).  As in Lai et al., pixel values are RGB
in [0, 1] and the squared norm sums the three channels, so E_warp is a per-pixel squared
error on the [0, 1] scale (papers often print it x 10^3).

Choices made here (documented because implementations differ):

* Flow: OpenCV DIS (``cv2.DISOpticalFlow_create``, preset MEDIUM) on grey frames, computed
  on the video being scored (Lai et al. used FlowNet2 on the *input* video; FFVI's
  ``TemporalWarpingError`` uses FlowNet2 on the ground truth).  ``flow_from`` lets the
  caller pass another video (e.g. the ground truth) to compute the flow on.
* Occlusion: forward-backward consistency of Ruder et al., "Artistic style transfer for
  videos" (GCPR 2016), the test Lai et al. use: a pixel is occluded when
  ``|F_f + F_b(x + F_f)|^2 > 0.01 (|F_f|^2 + |F_b(x + F_f)|^2) + 0.5``; pixels whose flow
  leaves the frame are occluded too.
* Per-pair normalisation by the number of non-occluded pixels, then the plain mean over
  the T-1 pairs (Lai et al.); a pair whose pixels are all occluded is skipped.
"""

from __future__ import annotations

import numpy as np


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` at x + flow(x) (bilinear, border replicated).  img (H, W[, C])."""
    import cv2

    H, W = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def non_occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Ruder et al. 2016 forward-backward test.

    Args:
        flow_fw: (H, W, 2) float32 flow t -> t+1 in pixels (dx, dy).
        flow_bw: (H, W, 2) float32 flow t+1 -> t.

    Returns:
        (H, W) float64 mask, 1 = reliable (not occluded), 0 = occluded / leaves the frame.
    """
    H, W = flow_fw.shape[:2]
    bw_at = _warp(flow_bw.astype(np.float32), flow_fw.astype(np.float32))
    s = flow_fw + bw_at
    lhs = (s**2).sum(-1)
    rhs = 0.01 * ((flow_fw**2).sum(-1) + (bw_at**2).sum(-1)) + 0.5
    gx, gy = np.meshgrid(np.arange(W), np.arange(H))
    tx, ty = gx + flow_fw[..., 0], gy + flow_fw[..., 1]
    inside = (tx >= 0) & (tx <= W - 1) & (ty >= 0) & (ty <= H - 1)
    return ((lhs <= rhs) & inside).astype(np.float64)


def warping_errors(frames: np.ndarray, flow_from: np.ndarray | None = None) -> np.ndarray:
    """Per-pair warping errors E_pair(V_t, V_{t+1}), t = 0..T-2.

    Args:
        frames: uint8 RGB video (T, H, W, 3), values 0-255 (scaled to [0, 1] inside).
        flow_from: optional uint8 RGB video of the same shape to compute the flow and the
            occlusion masks on (default: ``frames`` itself).

    Returns:
        float64 array (T-1,); NaN where every pixel of the pair is occluded.
    """
    import cv2

    v = np.asarray(frames)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) RGB frames, got {v.shape}")
    src = v if flow_from is None else np.asarray(flow_from)
    if src.shape != v.shape:
        raise ValueError(f"flow_from shape {src.shape} differs from frames {v.shape}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    vf = v.astype(np.float32) / 255.0
    grey = [_grey(f) for f in src]
    out = np.full(max(len(v) - 1, 0), np.nan)
    for t in range(len(v) - 1):
        fw = dis.calc(grey[t], grey[t + 1], None)
        bw = dis.calc(grey[t + 1], grey[t], None)
        m = non_occlusion_mask(fw, bw)
        n = m.sum()
        if n == 0:
            continue
        warped = _warp(vf[t + 1], fw)
        err = ((vf[t].astype(np.float64) - warped) ** 2).sum(-1)
        out[t] = float((err * m).sum() / n)
    return out


def warping_error(frames: np.ndarray, flow_from: np.ndarray | None = None) -> float:
    """E_warp of a video: mean of :func:`warping_errors` over the pairs (NaN pairs skipped;
    NaN for a video with fewer than 2 frames)."""
    e = warping_errors(frames, flow_from)
    e = e[~np.isnan(e)]
    return float(e.mean()) if e.size else float("nan")
