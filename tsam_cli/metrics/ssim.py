"""SSIM (Wang, Bovik, Sheikh, Simoncelli, "Image Quality Assessment: From Error Visibility
to Structural Similarity", IEEE TIP 2004), implemented in numpy, float64.

Per channel, with local statistics under an 11x11 circular-symmetric Gaussian window of
sigma 1.5 (the paper's choice, §III-C), K1 = 0.01, K2 = 0.03 and L = 255:

    SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
    C1 = (K1 L)^2, C2 = (K2 L)^2,

where sigma^2 and sigma_xy are the *population* (weighted, not sample-corrected) local
variances/covariance.  The SSIM map is averaged over the positions where the window lies
fully inside the image ("valid" positions: 5 pixels are dropped on each side), then the
three RGB channel values are averaged with equal weights.

This is the same number as ``skimage.metrics.structural_similarity(gt, pred,
channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255)``: skimage filters with ``scipy.ndimage.gaussian_filter(sigma=1.5,
truncate=3.5)`` -> radius ``int(3.5*1.5 + 0.5) = 5`` -> an 11-tap kernel, and crops
``(11-1)//2 = 5`` pixels per side before averaging, so border handling never enters.

Note: published video-inpainting numbers are *not* all computed this way.  The official
FFVI/TSAM ``evaluate.py`` calls ``libs/video_quality/ssim.py::ssim_exact(gt/255, res/255)``,
which runs ``scipy.ndimage.gaussian_filter(sd=1.5)`` on the whole (H, W, 3) array (so the
blur also mixes the three colour channels), uses C1 = 0.01^2, C2 = 0.03^2 on the [0, 1]
scale and averages the map including the reflect-padded borders (the file itself carries
"FIXME there seems to be a problem with this code"); E2FGVI uses
``skimage.measure.compare_ssim(multichannel=True, win_size=65)`` with a uniform window.
Expect differences in the third decimal between protocols.
"""

from __future__ import annotations

import numpy as np

K1, K2 = 0.01, 0.03
WIN_SIZE, SIGMA = 11, 1.5


def gaussian_kernel(size: int = WIN_SIZE, sigma: float = SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian kernel, float64, shape (size,)."""
    r = (size - 1) / 2
    x = np.arange(size, dtype=np.float64) - r
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of x (..., H, W) with k along H and W."""
    n = len(k)
    H, W = x.shape[-2:]
    acc = np.zeros(x.shape[:-2] + (H - n + 1, W), dtype=np.float64)
    for i in range(n):
        acc += k[i] * x[..., i : i + H - n + 1, :]
    out = np.zeros(x.shape[:-2] + (H - n + 1, W - n + 1), dtype=np.float64)
    for i in range(n):
        out += k[i] * acc[..., i : i + W - n + 1]
    return out


def ssim_map(
    x: np.ndarray, y: np.ndarray, data_range: float = 255.0, win_size: int = WIN_SIZE, sigma: float = SIGMA
) -> np.ndarray:
    """SSIM map over valid window positions.

    Args:
        x, y: arrays of shape (..., H, W) (one channel per leading index), any numeric
            dtype, values in [0, data_range]; converted to float64.

    Returns:
        float64 array (..., H - win_size + 1, W - win_size + 1), values in [-1, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"image {x.shape[-2:]} smaller than the {win_size}x{win_size} SSIM window")
    k = gaussian_kernel(win_size, sigma)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mx, my = _filter_valid(x, k), _filter_valid(y, k)
    vx = _filter_valid(x * x, k) - mx * mx
    vy = _filter_valid(y * y, k) - my * my
    cxy = _filter_valid(x * y, k) - mx * my
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return num / den


def ssim_frames(gt: np.ndarray, pred: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-frame SSIM averaged over RGB channels.

    Args:
        gt, pred: arrays of shape (T, H, W, C) or (H, W, C) (or (H, W) grey), values in
            [0, data_range] (uint8 frames: data_range 255).

    Returns:
        float64 array of shape (T,), each value the mean SSIM over valid window positions
        and then over channels (equal weight per channel).
    """
    a = np.asarray(gt)
    b = np.asarray(pred)
    if a.ndim == 2:
        a, b = a[None, ..., None], b[None, ..., None]
    elif a.ndim == 3:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected equal (T,H,W,C) arrays, got {a.shape} and {b.shape}")
    out = np.empty(len(a), dtype=np.float64)
    for t in range(len(a)):  # one frame at a time keeps memory at a few frame-sizes
        m = ssim_map(np.moveaxis(a[t], -1, 0), np.moveaxis(b[t], -1, 0), data_range)
        out[t] = m.reshape(m.shape[0], -1).mean(axis=1).mean()
    return out


def ssim(gt: np.ndarray, pred: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of one image pair (H, W, C) or (H, W); see :func:`ssim_frames`."""
    return float(ssim_frames(gt, pred, data_range).mean())
