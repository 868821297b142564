"""Every mask form, polarity, threshold, resize, dilation and the mask checks."""

import numpy as np
import pytest
from conftest import SHARED, needs_shared, write_pngs, write_video

from tsam_cli.errors import MaskError, UsageError
from tsam_cli.media.masks import MaskSpec, MaskStream, parse_box
from tsam_cli.ui import NullReporter

H, W, T = 40, 64, 6


def box_masks(T=T, h=H, w=W):
    m = np.zeros((T, h, w), np.uint8)
    for t in range(T):
        m[t, 10:20, 10 + t : 30 + t] = 255
    return m


def stream(spec, n=T, h=H, w=W):
    rep = NullReporter()
    return list(MaskStream(spec, w, h, n, rep)), rep


def test_folder(tmp_path):
    m = box_masks()
    got, _ = stream(MaskSpec(write_pngs(tmp_path / "m", m), dilate=0))
    assert len(got) == T and got[0].dtype == bool
    assert np.array_equal(np.stack(got), m > 0)


def test_single_image_for_all_frames_and_invert(tmp_path):
    import cv2

    m = box_masks()[0]
    cv2.imwrite(str(tmp_path / "m.png"), m)
    got, _ = stream(MaskSpec(tmp_path / "m.png", dilate=0))
    assert len(got) == T and all(np.array_equal(g, m > 0) for g in got)
    inv, _ = stream(MaskSpec(tmp_path / "m.png", dilate=0, invert=True))
    assert np.array_equal(inv[0], m == 0)


def test_mask_video_threshold_ignores_compression_noise(tmp_path):
    m = box_masks()
    rgb = np.repeat(m[..., None], 3, axis=3)
    path = write_video(tmp_path / "m.mp4", rgb, fps=25)
    got, _ = stream(MaskSpec(path, dilate=0))
    agree = (np.stack(got) == (m > 0)).mean()
    assert agree > 0.99  # lossy video: edges may differ by a pixel, noise is not a hole


def test_box_and_union(tmp_path):
    got, _ = stream(MaskSpec(box=(5, 6, 7, 8), dilate=0))
    assert got[0].sum() == 56 and got[0][6:14, 5:12].all()
    img = np.zeros((H, W), np.uint8)
    img[30:35, 50:60] = 255
    import cv2

    cv2.imwrite(str(tmp_path / "m.png"), img)
    both, _ = stream(MaskSpec(tmp_path / "m.png", box=(5, 6, 7, 8), dilate=0))
    assert both[0].sum() == 56 + 50


def test_dilation_grows_by_n_pixels():
    got, _ = stream(MaskSpec(box=(30, 20, 1, 1), dilate=3))
    ys, xs = np.nonzero(got[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (27, 33, 17, 23)


def test_resize_warns(tmp_path):
    import cv2

    small = np.zeros((20, 32), np.uint8)
    small[5:10, 5:10] = 255
    cv2.imwrite(str(tmp_path / "m.png"), small)
    got, rep = stream(MaskSpec(tmp_path / "m.png", dilate=0))
    assert got[0].shape == (H, W) and got[0][10:20, 10:20].all()
    assert any("resized" in w for w in rep.warnings)


def test_large_mask_warns(tmp_path):
    got, rep = stream(MaskSpec(box=(0, 0, 60, 40), dilate=0))
    assert any("--invert-mask" in w for w in rep.warnings)


@needs_shared
def test_palette_pngs_nonzero_is_hole():
    import cv2

    folder = SHARED / "schoolgirls" / "masks"
    raw = cv2.imread(str(folder / "00000.png"))
    got, _ = stream(MaskSpec(folder, dilate=0), n=3, h=240, w=432)
    assert np.array_equal(got[0], raw.max(axis=2) > 0) and got[0].any()


def test_errors(tmp_path):
    with pytest.raises(MaskError, match="not found"):
        stream(MaskSpec(tmp_path / "nope.png"))
    write_pngs(tmp_path / "short", box_masks(T=3))
    with pytest.raises(MaskError, match="has 3 frames but the video has 6"):
        stream(MaskSpec(tmp_path / "short"))
    write_pngs(tmp_path / "black", np.zeros((T, H, W), np.uint8))
    with pytest.raises(MaskError, match="empty"):
        stream(MaskSpec(tmp_path / "black"))
    write_pngs(tmp_path / "white", np.full((T, H, W), 255, np.uint8))
    with pytest.raises(MaskError, match="every pixel"):
        stream(MaskSpec(tmp_path / "white"))
    with pytest.raises(UsageError, match="outside"):
        stream(MaskSpec(box=(100, 0, 5, 5)))
    with pytest.raises(UsageError, match="no mask"):
        stream(MaskSpec())
    for bad in ["1,2,3", "a,b,c,d"]:
        with pytest.raises(UsageError, match="x,y,w,h"):
            parse_box(bad)
    for bad in ["1,2,0,4", "1,2,3,-4"]:
        with pytest.raises(UsageError, match="at least 1 pixel"):
            parse_box(bad)
    assert parse_box(" 1, 2,3,4") == (1, 2, 3, 4)
    # off any edge, negative x/y included: clipped alike, with a warning that says to what
    for box, kept in [((-2, 3, 6, 4), (0, 3, 4, 4)), ((W - 3, 3, 6, 4), (W - 3, 3, 3, 4))]:
        rep = NullReporter()
        got = next(iter(MaskStream(MaskSpec(box=box, dilate=0), W, H, T, rep)))
        x, y, w, h = kept
        assert got.sum() == w * h and got[y:y + h, x:x + w].all(), box
        assert "clipped to " + ",".join(map(str, kept)) in rep.warnings[0]
    with pytest.raises(UsageError, match="entirely outside"):
        stream(MaskSpec(box=(-10, 0, 5, 5)))


def test_box_and_masks_are_in_display_orientation():
    """A video shown rotated 90 deg clockwise (coded 64x40, shown 40x64): --box and mask images
    are drawn as the user sees it and turned into coded orientation."""
    rep = NullReporter()
    # display[i, j] = coded[H - 1 - j, i] for a clockwise quarter turn
    got = next(iter(MaskStream(MaskSpec(box=(0, 0, 10, 5), dilate=0), W, H, 1, rep, rotation=90)))
    expect = np.zeros((H, W), bool)
    expect[H - 10 :, 0:5] = True
    assert np.array_equal(got, expect)
    shown = np.zeros((W, H), bool)  # what the user drew: display size 40 wide, 64 tall
    shown[:5, :10] = True
    assert np.array_equal(np.rot90(shown, k=1), expect)  # the same turn as a mask image
    with pytest.raises(UsageError, match="40x64"):
        MaskStream(MaskSpec(box=(45, 0, 4, 4), dilate=0), W, H, 1, rep, rotation=90)  # x beyond the shown width


def test_mask_image_drawn_on_the_rotated_view(tmp_path):
    shown = np.zeros((W, H), np.uint8)
    shown[:5, :10] = 255
    write_pngs(tmp_path / "m", [shown])
    rep = NullReporter()
    got = next(iter(MaskStream(MaskSpec(tmp_path / "m" / "00000.png", dilate=0), W, H, 1, rep, rotation=270)))
    assert np.array_equal(got, np.rot90(shown > 0, k=3)) and rep.warnings == []  # no resize: sizes match when turned
