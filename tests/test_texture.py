"""PatchFiller (tsam_cli/core/texture.py): exemplar fill on small synthetic textures."""

from __future__ import annotations

import numpy as np
import pytest

from tsam_cli.core.propagate import TeleaFiller
from tsam_cli.core.texture import Level, PatchFiller, PatchSettings, usable_sources


def stripes(h: int = 96, w: int = 96, period: int = 8) -> np.ndarray:
    """``(h, w, 3) uint8``: diagonal colour stripes, a texture Telea can only blur."""
    y, x = np.mgrid[0:h, 0:w]
    phase = ((x + y) % period) < period // 2
    img = np.where(phase[..., None], np.array([200, 60, 40]), np.array([30, 90, 210]))
    return img.astype(np.uint8)


def checker(h: int = 96, w: int = 96, cell: int = 6) -> np.ndarray:
    """``(h, w, 3) uint8``: a black-and-white checkerboard."""
    y, x = np.mgrid[0:h, 0:w]
    return np.repeat((((y // cell + x // cell) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def disc(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def hole_mse(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    return float(np.mean((out.astype(np.float64) - truth)[hole] ** 2))


@pytest.mark.parametrize("make", [stripes, checker])
def test_continues_texture_better_than_telea(make):
    img = make()
    hole = disc(96, 96, 48, 48, 14)
    damaged = img.copy()
    damaged[hole] = 0
    telea = TeleaFiller()(damaged, hole)
    patch = PatchFiller()(damaged, hole)
    raw = PatchFiller(PatchSettings(mix=1.0, detail=0.0))(damaged, hole)  # the exemplar fill alone
    assert hole_mse(raw, img, hole) < 0.05 * hole_mse(telea, img, hole)
    assert hole_mse(patch, img, hole) < 0.25 * hole_mse(telea, img, hole)


def test_known_pixels_unchanged_and_hole_filled():
    img = stripes()
    hole = disc(96, 96, 40, 50, 12)
    damaged = img.copy()
    damaged[hole] = 255
    out = PatchFiller()(damaged, hole)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], damaged[~hole])
    assert not np.all(out[hole] == 255)  # the placeholder colour is gone


def test_deterministic():
    rng = np.random.default_rng(3)
    img = np.clip(stripes().astype(np.int16) + rng.integers(-20, 21, (96, 96, 3)), 0, 255).astype(np.uint8)
    hole = disc(96, 96, 50, 45, 15)
    a, b = PatchFiller()(img, hole), PatchFiller()(img, hole)
    np.testing.assert_array_equal(a, b)


def test_tiny_hole():
    img = stripes()
    hole = np.zeros((96, 96), bool)
    hole[30, 41] = True
    out = PatchFiller()(img, hole)
    np.testing.assert_array_equal(out[~hole], img[~hole])
    assert np.abs(out[30, 41].astype(int) - img[30, 41]).max() <= 60  # one pixel of a 2-colour texture


def test_empty_hole_returns_the_image():
    img = stripes()
    out = PatchFiller()(img, np.zeros((96, 96), bool))
    np.testing.assert_array_equal(out, img)
    assert out is not img


def test_hole_touching_the_border():
    img = checker()
    hole = np.zeros((96, 96), bool)
    hole[:20, 30:60] = True  # touches the top edge
    hole[70:, 80:] = True  # and a corner
    damaged = img.copy()
    damaged[hole] = 128
    out = PatchFiller()(damaged, hole)
    np.testing.assert_array_equal(out[~hole], img[~hole])
    assert hole_mse(out, img, hole) < hole_mse(TeleaFiller()(damaged, hole), img, hole)


def test_no_known_pixels_gives_teleas_result():
    img = stripes(32, 32)
    hole = np.ones((32, 32), bool)
    np.testing.assert_array_equal(PatchFiller()(img, hole), TeleaFiller()(img, hole))


def test_no_whole_known_patch_gives_teleas_result():
    img = stripes(40, 40)
    hole = np.ones((40, 40), bool)
    hole[::5] = False  # known rows, but no 7x7 window of known pixels
    np.testing.assert_array_equal(PatchFiller()(img, hole), TeleaFiller()(img, hole))


def test_patchmatch_finds_exact_copies():
    """With the true pixels in the hole, every target window has an exact copy among the sources
    (the stripes repeat), so the vectorised PatchMatch must reach distance ~0 almost everywhere."""
    img = stripes(64, 64).astype(np.float32)
    hole = disc(64, 64, 32, 32, 9)
    feats = np.concatenate([img, np.zeros((64, 64, 2), np.float32)], axis=-1)
    level = Level(feats, hole, 7, 1.3)
    rng = np.random.default_rng(0)
    _, best = level.match(feats, level.random_field(rng), 2, rng)  # a random field alone: ~10 %
    assert np.mean(best < 1e-3) > 0.95


def test_sources_are_whole_known_windows_inside_the_crop():
    hole = np.zeros((20, 20), bool)
    hole[10, 10] = True
    ok = usable_sources(hole, 5)
    assert not ok[:2].any() and not ok[-2:].any() and not ok[:, :2].any() and not ok[:, -2:].any()
    assert not ok[8:13, 8:13].any() and ok[7, 7] and ok[13, 13]


@pytest.mark.parametrize("bad", [dict(patch=4), dict(patch=1), dict(mix=1.5), dict(finest_vote="x"), dict(em_iters=())])
def test_bad_settings(bad):
    with pytest.raises(ValueError):
        PatchSettings(**bad)


def test_import_stays_light():
    """Importing the module must not pull OpenCV (heavy imports live inside functions)."""
    import subprocess
    import sys

    code = "import sys, tsam_cli.core.texture; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_fill(monkeypatch, threads):
    """The patch rows and the vote's image rows split over threads add up to the one-thread
    result bit for bit (small ranges forced, so every level's gathers, distances and votes split)."""
    import tsam_cli.core.rows as rows

    rng = np.random.default_rng(5)
    img = np.clip(checker(80, 120).astype(np.int16) + rng.integers(-30, 31, (80, 120, 3)), 0, 255).astype(np.uint8)
    hole = disc(80, 120, 40, 30, 14) | disc(80, 120, 35, 95, 10)  # two parts: one crop spanning both
    one = PatchFiller(threads=1)(img, hole)
    monkeypatch.setattr(rows, "MIN_ROWS", 7)
    split = rows.RowThreads(threads)
    with split:
        assert len(split._run(lambda a, b: (a, b), 100, split.min_rows)) == threads  # it does split
    np.testing.assert_array_equal(PatchFiller(threads=threads)(img, hole), one)


def test_row_threads_join_in_order():
    from tsam_cli.core.rows import MAX_ROWS, RowThreads

    seen = []
    with RowThreads(4, min_rows=3) as rows:
        out = rows(lambda a, b: np.arange(a, b) * 2, 50)
        rows.each(lambda a, b: seen.append((a, b)), 10, min_rows=4)  # 10 // 4: two ranges
    np.testing.assert_array_equal(out, np.arange(50) * 2)
    assert sorted(seen) == [(0, 5), (5, 10)]
    with RowThreads(1) as rows:  # one thread: no pool, a single call
        assert rows(lambda a, b: np.array([a, b]), 10).tolist() == [0, 10]
        calls = []  # ... unless the rows are many: then calls of at most MAX_ROWS, joined in order
        n = 3 * MAX_ROWS + 5
        out = rows(lambda a, b: calls.append(b - a) or np.arange(a, b), n)
        np.testing.assert_array_equal(out, np.arange(n))
        assert len(calls) == 4 and max(calls) <= MAX_ROWS
