"""PSNR, full frame and inside the hole, computed in float64 from uint8 frames.

Definition (TSAM paper eq. 8): ``PSNR = 20 log10 max(I) - 10 log10 MSE`` with
``max(I) = 255`` for 8-bit frames and MSE the mean over all pixels *and* RGB channels of
one frame.  The official evaluation (``libs/video_quality/psnr.py`` in FFVI/TSAM) subtracts
the uint8 arrays directly, which wraps around (e.g. ``3 - 5 = 254``); here both frames are
converted to float64 first.

Identical frames have MSE 0 and PSNR = +inf.  Per-frame values keep the inf; averages use
``min(psnr, PSNR_CAP)`` with ``PSNR_CAP = 100 dB`` (MSE = 6.5e-6 on the 0-255 scale, i.e.
less than one unit of error in ~150 000 samples; a single off-by-one value in a 432x240 RGB
frame gives ~103 dB) and report how many frames were capped, so a perfectly reconstructed
frame counts as "excellent" instead of turning the whole mean into inf.  (The official
``libs/video_quality/psnr.py`` likewise returns 100 for MSE = 0.)

Hole PSNR (``mask`` given, 1 = hole): MSE over the hole pixels (and channels) of each frame
only.  A frame without hole pixels has no hole PSNR (NaN) and is left out of the means.

Averaging convention (see :func:`aggregate`):

* video value = mean of its per-frame PSNRs;
* dataset ``mean`` = mean over *all frames of all videos* (frame-weighted).  This is what
  the official TSAM/FFVI ``evaluate.py`` reports (``total_psnr / total_length``) and what
  E2FGVI reports (``avg_frame_psnr``);
* dataset ``video_mean`` = mean of the per-video values (every video weighs the same), also
  reported.
"""

from __future__ import annotations

import math

import numpy as np

PSNR_CAP = 100.0


def _as_video(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 2:  # (H, W) grey frame
        x = x[None, ..., None]
    elif x.ndim == 3:  # (H, W, C) single frame
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected (T,H,W,C), (H,W,C) or (H,W) array, got shape {x.shape}")
    return x


def mse_frames(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-frame mean squared error in float64.

    Args:
        gt, pred: uint8 (or any numeric) arrays of shape (T, H, W, C) or (H, W, C), values
            in [0, 255]; converted to float64 before subtracting.
        mask: optional (T, H, W) or (H, W) array, **1 = hole**; when given, the MSE of each
            frame is taken over its hole pixels only (all channels).

    Returns:
        float64 array of shape (T,); NaN for frames whose mask has no hole pixel.
    """
    a = _as_video(gt).astype(np.float64)
    b = _as_video(pred).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: ground truth {a.shape} vs result {b.shape}")
    se = (a - b) ** 2
    if mask is None:
        return se.reshape(len(se), -1).mean(axis=1)
    m = np.asarray(mask)
    if m.ndim == 2:
        m = np.broadcast_to(m, a.shape[:3])
    if m.shape != a.shape[:3]:
        raise ValueError(f"mask shape {m.shape} does not match frames {a.shape[:3]}")
    m = (m > 0).astype(np.float64)
    n = m.reshape(len(m), -1).sum(axis=1) * a.shape[3]
    s = (se * m[..., None]).reshape(len(se), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def psnr_from_mse(mse: np.ndarray | float, data_range: float = 255.0) -> np.ndarray:
    """``20 log10(data_range) - 10 log10(mse)``; +inf where mse == 0, NaN stays NaN."""
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(data_range) - 10.0 * np.log10(mse)


def psnr_pixels(gt: np.ndarray, pred: np.ndarray, where: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB over the pixels selected by ``where`` (bool, broadcast to ``gt``'s leading
    dims, e.g. ``(T, H, W)`` for ``(T, H, W, 3)`` frames), float64; capped at mse 1e-12."""
    err = (np.asarray(gt, np.float64) - np.asarray(pred, np.float64))[where]
    return float(psnr_from_mse(max(float(np.mean(err**2)), 1e-12), data_range))


def psnr_frames(
    gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None, data_range: float = 255.0
) -> np.ndarray:
    """Per-frame PSNR in dB (float64, shape (T,)); +inf for identical frames, NaN for
    frames without hole pixels when ``mask`` (1 = hole) is given.  Inputs as in
    :func:`mse_frames`."""
    return psnr_from_mse(mse_frames(gt, pred, mask), data_range)


def capped_mean(values: np.ndarray, cap: float = PSNR_CAP) -> float:
    """Mean of PSNR values with +inf replaced by ``cap`` and NaN ignored; NaN if none left."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    return float(np.minimum(v, cap).mean())


def aggregate(per_video: list[np.ndarray], cap: float = PSNR_CAP) -> dict:
    """Dataset summary of per-frame PSNRs.

    Args:
        per_video: one float array of per-frame PSNRs (dB, may hold inf / NaN) per video.

    Returns:
        dict with ``mean`` (frame-weighted over all frames; the official convention),
        ``video_mean`` (mean of per-video means), ``frames`` (number of frames counted),
        ``capped_frames`` (frames with PSNR > cap, e.g. inf, that entered as ``cap``) and ``cap``.
    """
    frames = [np.asarray(v, dtype=np.float64).ravel() for v in per_video]
    allv = np.concatenate(frames) if frames else np.zeros(0)
    vid = [capped_mean(v, cap) for v in frames]
    vid = [v for v in vid if not math.isnan(v)]
    return {
        "mean": capped_mean(allv, cap),
        "video_mean": float(np.mean(vid)) if vid else math.nan,
        "frames": int((~np.isnan(allv)).sum()),
        "capped_frames": int((allv > cap).sum()),
        "cap": cap,
    }
