"""Metrics: PSNR (full / hole, inf handling), SSIM, Fréchet distance, I3D layout, E_warp."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from tsam_cli.metrics.frechet import fit_gaussian, frechet_distance, frechet_distance_from_features, sqrtm_psd
from tsam_cli.metrics.psnr import PSNR_CAP, aggregate, capped_mean, mse_frames, psnr_frames
from tsam_cli.metrics.ssim import K1, ssim, ssim_frames


def _video(T=3, H=24, W=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, 3), dtype=np.uint8)


# ---------------------------------------------------------------- PSNR


def test_psnr_identical_is_inf_and_capped_in_means():
    v = _video()
    p = psnr_frames(v, v)
    assert np.all(np.isinf(p)) and np.all(p > 0)
    agg = aggregate([p, p])
    assert agg["mean"] == PSNR_CAP == agg["video_mean"]
    assert agg["capped_frames"] == 6 and agg["frames"] == 6
    assert math.isfinite(capped_mean(p))


def test_psnr_constant_error_closed_form():
    v = np.full((2, 16, 16, 3), 100, np.uint8)
    for e in (1, 3, 20):
        p = psnr_frames(v, v + np.uint8(e))
        assert np.allclose(p, 10 * np.log10(255.0**2 / e**2))
        # and no uint8 wrap-around when the result is darker than the ground truth
        assert np.allclose(psnr_frames(v + np.uint8(e), v), p)


def test_psnr_mixed_frames_frame_weighted_mean():
    v = np.full((2, 8, 8, 3), 50, np.uint8)
    r = v.copy()
    r[1] += 10  # frame 0 identical (inf -> 100 dB), frame 1 MSE 100 -> 28.13 dB
    p = psnr_frames(v, r)
    assert np.isinf(p[0]) and p[1] == pytest.approx(10 * np.log10(255**2 / 100))
    assert aggregate([p])["mean"] == pytest.approx((PSNR_CAP + p[1]) / 2)


def test_hole_psnr_counts_only_hole_pixels():
    gt = np.full((2, 10, 10, 3), 80, np.uint8)
    res = gt.copy()
    mask = np.zeros((2, 10, 10), np.uint8)
    mask[:, 2:5, 2:6] = 1
    res[:, 2:5, 2:6] += 4  # error only inside the hole
    res[:, 8:, 8:] = 0  # huge error outside the hole must not count
    hole = psnr_frames(gt, res, mask)
    assert np.allclose(hole, 10 * np.log10(255**2 / 16))
    assert np.all(psnr_frames(gt, res) < hole)
    # a frame without hole pixels has no hole PSNR and is skipped by the means
    mask[1] = 0
    hole = psnr_frames(gt, res, mask)
    assert np.isnan(hole[1]) and capped_mean(hole) == pytest.approx(hole[0])
    assert np.isnan(mse_frames(gt, res, mask)[1])


# ---------------------------------------------------------------- SSIM


def test_ssim_identical_is_one():
    v = _video(T=2)
    assert np.allclose(ssim_frames(v, v), 1.0)


def test_ssim_constant_images_closed_form():
    c1 = (K1 * 255) ** 2
    for m1, m2 in ((100, 120), (10, 200), (255, 0)):
        a = np.full((20, 24, 3), m1, np.uint8)
        b = np.full((20, 24, 3), m2, np.uint8)
        expected = (2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1)
        assert ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_ssim_decreases_with_noise_and_is_symmetric():
    v = _video(T=1, H=40, W=40)
    rng = np.random.default_rng(1)
    small = np.clip(v + rng.integers(-5, 6, v.shape), 0, 255).astype(np.uint8)
    big = np.clip(v.astype(int) + rng.integers(-60, 61, v.shape), 0, 255).astype(np.uint8)
    s_small, s_big = ssim_frames(v, small)[0], ssim_frames(v, big)[0]
    assert 1 > s_small > s_big > 0
    assert ssim_frames(small, v)[0] == pytest.approx(s_small)


def test_ssim_rejects_tiny_images():
    with pytest.raises(ValueError):
        ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------- Fréchet


def test_frechet_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0, abs=1e-12)


def _denman_beavers_sqrtm(a, iters=60):
    """Independent matrix square root of a (non-symmetric) matrix with positive spectrum."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(iters):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def test_frechet_full_covariance_against_independent_sqrtm():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    root = _denman_beavers_sqrtm(s1 @ s2)
    assert np.allclose(root @ root, s1 @ s2)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # symmetric in its arguments
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_frechet_commuting_rotated_covariances():
    th = 0.7
    r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    s1, s2 = r @ np.diag([4.0, 1.0]) @ r.T, r @ np.diag([1.0, 9.0]) @ r.T
    expected = (4 + 1 - 2 * 2) + (1 + 9 - 2 * 3)
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(expected, rel=1e-12)


def test_frechet_singular_covariances_and_features():
    rng = np.random.default_rng(3)
    f1 = rng.normal(size=(5, 32))  # N < D: rank-deficient covariance, as VFID with few videos
    f2 = rng.normal(size=(5, 32)) + 1.0
    d = frechet_distance_from_features(f1, f2)
    assert math.isfinite(d) and d > 0
    assert frechet_distance_from_features(f1, f1) == pytest.approx(0, abs=1e-8)
    m, s = fit_gaussian(f1)
    assert np.allclose(s, np.cov(f1, rowvar=False))
    r = sqrtm_psd(s)
    assert np.allclose(r @ r, s, atol=1e-10)


# ---------------------------------------------------------------- I3D


def _published_file(path, seed=0):
    """Random weights in the published rgb_imagenet.pt layout: a plain OrderedDict,
    legacy torch.save format, no num_batches_tracked entries."""
    import torch

    from tsam_cli.metrics.i3d import published_layout

    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k, shape in published_layout().items():
        t = torch.randn(shape, generator=g) * 0.05
        if k.endswith("running_var"):
            t = t.abs() + 1.0
        sd[k] = t
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    return sd


def test_i3d_layout_matches_published_file():
    from tsam_cli.metrics.i3d import published_layout

    lay = published_layout()
    # (3 stem units + 9 inception blocks x 6 units) x (conv weight + 4 BN tensors) + logits w, b
    assert len(lay) == (3 + 9 * 6) * 5 + 2 == 287
    assert lay["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert lay["Conv3d_2c_3x3.conv3d.weight"] == (192, 64, 3, 3, 3)
    assert lay["Mixed_3b.b1b.conv3d.weight"] == (128, 96, 3, 3, 3)
    assert lay["Mixed_4f.b0.conv3d.weight"] == (256, 528, 1, 1, 1)
    assert lay["Mixed_5c.b3b.bn.running_var"] == (128,)
    assert lay["logits.conv3d.weight"] == (400, 1024, 1, 1, 1)
    assert lay["logits.conv3d.bias"] == (400,)
    assert not any("num_batches_tracked" in k for k in lay)
    assert not any(k.endswith("conv3d.bias") for k in lay if not k.startswith("logits"))
    # 12,697,264 parameters + 14,560 BN running statistics = 12,711,824 float32 values
    # (50.85 MB; the published file is 50,883,138 bytes, the rest is pickle overhead)
    assert sum(math.prod(s) for s in lay.values()) == 12_711_824


def test_i3d_loads_published_format_strictly_and_outputs_1024(tmp_path):
    import torch

    from tsam_cli.metrics.i3d import i3d_features, load_i3d

    p = tmp_path / "i3d_rgb_imagenet.pt"
    sd = _published_file(p)
    model = load_i3d(p)
    assert torch.equal(model.state_dict()["Mixed_4c.b2b.conv3d.weight"], sd["Mixed_4c.b2b.conv3d.weight"])
    x = torch.rand(2, 3, 8, 48, 64)
    with torch.no_grad():
        f = model.extract_features(x)
    assert f.shape == (2, 1024) and torch.isfinite(f).all()
    v = np.random.default_rng(0).integers(0, 256, (5, 40, 56, 3), dtype=np.uint8)
    assert i3d_features(model, v).shape == (1024,)
    # a DataParallel-style "module." prefix and a modern file with num_batches_tracked load too
    m2 = OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save(m2, tmp_path / "dp.pt")
    load_i3d(tmp_path / "dp.pt")


def test_i3d_wrong_or_missing_file_is_weights_error(tmp_path):
    import torch

    from tsam_cli.errors import WeightsError
    from tsam_cli.metrics.i3d import load_i3d

    with pytest.raises(WeightsError, match="not found"):
        load_i3d(tmp_path / "nope.pt")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="layout"):
        load_i3d(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_text("<html>not a checkpoint</html>")
    with pytest.raises(WeightsError) as ei:
        load_i3d(tmp_path / "junk.pt")
    assert "\n" not in str(ei.value)


def test_vfid_with_random_weights(tmp_path):
    from tsam_cli.errors import WeightsError
    from tsam_cli.metrics.vfid import VFIDScorer, resolve_i3d_weights

    p = tmp_path / "i3d.pt"
    _published_file(p)
    s = VFIDScorer(p)
    rng = np.random.default_rng(0)
    vids = [rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8) for _ in range(3)]
    for v in vids:
        s.add(v, v)
    assert s.compute() == pytest.approx(0, abs=1e-6)
    with pytest.raises(WeightsError, match="--i3d"):
        resolve_i3d_weights(tmp_path / "missing.pt")


# ---------------------------------------------------------------- E_warp


def _textured(T, H=72, W=96):
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((H, W, 3)) * 255).astype(np.uint8), (0, 0), 2.5)
    return np.repeat(base[None], T, 0)


def test_ewarp_static_zero_flicker_large():
    from tsam_cli.metrics.ewarp import warping_error, warping_errors

    static = _textured(5)
    e_static = warping_error(static)
    assert e_static < 1e-6
    flicker = static.astype(int)
    flicker[1::2] += 40
    flicker = np.clip(flicker, 0, 255).astype(np.uint8)
    e_flicker = warping_error(flicker)
    assert e_flicker > 1e-2 > e_static
    assert warping_errors(flicker).shape == (4,)


def test_ewarp_translation_is_compensated():
    from tsam_cli.metrics.ewarp import warping_error

    base = _textured(1)[0]
    moving = np.stack([np.roll(base, 2 * t, axis=1) for t in range(4)])
    flicker = moving.astype(int)
    flicker[1::2] += 30
    assert warping_error(moving) < 1e-3 < warping_error(np.clip(flicker, 0, 255).astype(np.uint8))
