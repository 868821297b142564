"""Seeded mask generation: kinds, area buckets, determinism, motion."""

from __future__ import annotations

import numpy as np
import pytest

from tsam_cli.data.mask_gen import AREA_BUCKETS, KINDS, clip_seed, generate_masks, hole_ratio

H, W = 60, 108  # a quarter of 240x432 keeps the test fast


def _moves(m):
    return any(not np.array_equal(m[t], m[0]) for t in range(1, len(m)))


@pytest.mark.parametrize("kind", KINDS)
def test_shape_dtype_values(kind):
    m = generate_masks(kind, 5, H, W, seed=1)
    assert m.shape == (5, H, W) and m.dtype == np.uint8
    assert set(np.unique(m)) <= {0, 1} and m.any()


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_for_a_seed(kind):
    a = generate_masks(kind, 6, H, W, seed=7, area=(0.2, 0.3))
    b = generate_masks(kind, 6, H, W, seed=7, area=(0.2, 0.3))
    c = generate_masks(kind, 6, H, W, seed=8, area=(0.2, 0.3))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bucket", AREA_BUCKETS)
def test_area_in_bucket(kind, bucket):
    ratios = [hole_ratio(generate_masks(kind, 6, H, W, seed=s, area=bucket)) for s in range(2)]
    lo, hi = bucket
    for r in ratios:
        assert lo - 0.03 <= r <= hi + 0.03, (kind, bucket, r)
        assert r > 0


def test_area_buckets_are_the_papers():
    assert AREA_BUCKETS[0] == (0.0, 0.1) and AREA_BUCKETS[-1] == (0.6, 0.7) and len(AREA_BUCKETS) == 7


def test_object_and_curve_move_stationary_does_not():
    for s in range(3):
        assert _moves(generate_masks("object", 8, H, W, seed=s))
        assert _moves(generate_masks("curve", 8, H, W, seed=s))
        st = generate_masks("stationary", 8, H, W, seed=s)
        assert not _moves(st)


def test_moving_override_and_training_probability():
    assert _moves(generate_masks("stationary", 10, H, W, seed=0, moving=True))
    assert not _moves(generate_masks("object", 10, H, W, seed=0, moving=False))
    moved = [_moves(generate_masks("stationary", 6, H, W, seed=s, moving=0.5)) for s in range(40)]
    assert 8 <= sum(moved) <= 32  # about half move (training augmentation, paper §4.2)


def test_curve_thinner_than_object():
    # at equal area, curve masks have much more boundary per hole pixel than object masks
    def boundary_per_pixel(m):
        edges = (np.diff(m.astype(int), axis=1) != 0).sum() + (np.diff(m.astype(int), axis=2) != 0).sum()
        return edges / max(m.sum(), 1)

    o = generate_masks("object", 4, H, W, seed=2, area=(0.2, 0.3))
    c = generate_masks("curve", 4, H, W, seed=2, area=(0.2, 0.3))
    assert boundary_per_pixel(c) > boundary_per_pixel(o)


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_masks("blob", 3, H, W, seed=0)
    with pytest.raises(ValueError):
        generate_masks("object", 3, H, W, seed=0, area=(0.5, 0.2))
    with pytest.raises(ValueError):
        generate_masks("object", 0, H, W, seed=0)


def test_clip_seed_is_stable():
    assert clip_seed("bmx-trees", 0, "object") == clip_seed("bmx-trees", 0, "object")
    assert clip_seed("bmx-trees", 0, "object") != clip_seed("bmx-trees", 1, "object")
    assert clip_seed("bmx-trees", 0, "object") != clip_seed("bmx-bumps", 0, "object")
    assert 0 <= clip_seed("x" * 100, 12345) < 2**31
