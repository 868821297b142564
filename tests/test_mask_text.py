"""``tsam mask text`` and ``tsam inpaint --remove text``.

The detector-free parts (region, sparse detection with box carrying, tracks, gap bridging,
padding, DB post-processing on a made-up probability map, rotation) run without
onnxruntime; the tests that run the PP-OCR model skip when the ``text`` extra is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import write_video

from tsam_cli.cli.main import main
from tsam_cli.errors import UsageError
from tsam_cli.masking.boxes import (
    boxes_mask,
    detect_sparse,
    match,
    region_rect,
    same_text,
    smooth_tracks,
)
from tsam_cli.masking.options import TextMaskOptions, parse_region

HAS_TEXT_EXTRA = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("rapidocr") is not None
needs_extra = pytest.mark.skipif(not HAS_TEXT_EXTRA, reason='the text extra (pip install -e ".[text]") is not installed')


def B(*rows) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


# -- region and options ------------------------------------------------------------------

def test_region_rects():
    assert region_rect("all", 400, 200) == (0, 0, 400, 200)
    assert region_rect("bottom", 400, 200) == (0, 120, 400, 80)
    assert region_rect("top", 400, 200) == (0, 0, 400, 80)
    assert region_rect((390, 10, 50, 50), 400, 200) == (390, 10, 10, 50)  # clipped to the picture
    with pytest.raises(UsageError, match="outside"):
        region_rect((400, 0, 5, 5), 400, 200)


@pytest.mark.parametrize("bad", ["middle", "1,2,3", "0,0,0,5", "-1,0,4,4", ""])
def test_bad_region_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="--region"):
        parse_region(bad)


@pytest.mark.parametrize("field,value", [("every", 0), ("pad", -1), ("threshold", 1.5), ("min_frames", 0)])
def test_options_ranges(field, value):
    with pytest.raises(UsageError, match=field.replace("_", "-")):
        TextMaskOptions(**{field: value}).validate()


# -- boxes -------------------------------------------------------------------------------

def test_match_and_same_text():
    a = B([0, 0, 10, 10], [20, 0, 30, 10])
    b = B([21, 1, 31, 11], [0, 0, 10, 11])
    assert sorted(match(a, b, 0.5)) == [(0, 1), (1, 0)]
    assert same_text(a, b)
    assert not same_text(a, b[:1])
    assert not same_text(a, B([50, 0, 60, 10], [20, 0, 30, 10]))
    assert same_text(B(), B())


def _schedule(n: int, changes: dict[int, np.ndarray]) -> list[np.ndarray]:
    """Boxes per frame: each entry of ``changes`` holds from its frame on."""
    cur, out = B(), []
    for t in range(n):
        cur = changes.get(t, cur)
        out.append(cur)
    return out


def test_sparse_detection_finds_changes_at_the_exact_frame():
    truth = _schedule(40, {0: B(), 7: B([10, 50, 90, 62]), 23: B([30, 50, 70, 62]), 31: B()})
    calls = []

    def detect(t):
        calls.append(t)
        return truth[t]

    got = list(detect_sparse(range(40), detect, every=5))
    assert len(got) == 40
    assert all(same_text(g, t) for g, t in zip(got, truth, strict=True))
    assert len(calls) < 40 and len(set(calls)) == len(calls)  # fewer detections, none twice
    assert 39 in calls  # the last frame is always detected


def test_sparse_detection_every_frame_and_short_tail():
    truth = _schedule(7, {0: B([0, 0, 5, 5]), 6: B()})
    got = list(detect_sparse(range(7), lambda t: truth[t], every=1))
    assert all(same_text(g, t) for g, t in zip(got, truth, strict=True))
    got = list(detect_sparse(range(7), lambda t: truth[t], every=10))  # one interval: frame 0 and the last
    assert all(same_text(g, t) for g, t in zip(got, truth, strict=True))


def test_tracks_bridge_gaps_and_drop_blips():
    line = B([100, 200, 300, 220])
    per_frame = [B() for _ in range(60)]
    for t in range(10, 50):
        per_frame[t] = line + np.float32(t % 2)  # one pixel of jitter
    per_frame[20] = B()  # detector missed 1 frame
    per_frame[30] = per_frame[31] = B()  # and 2 frames
    per_frame[55] = B([10, 10, 40, 20])  # one-frame false detection
    out = smooth_tracks(per_frame, min_frames=3, max_gap=2)
    shown = [t for t, b in enumerate(out) if len(b)]
    assert shown == list(range(10, 50))  # exactly the frames of the line: no holes, no blip
    assert all(len(out[t]) == 1 for t in shown)
    assert np.allclose(out[25], line, atol=1)  # the running median keeps it in place
    gap_3 = [b.copy() for b in per_frame]
    gap_3[40] = gap_3[41] = gap_3[42] = B()
    out3 = smooth_tracks(gap_3, min_frames=3, max_gap=2)
    assert [t for t in (40, 41, 42) if len(out3[t])] == []  # a longer gap is a real pause


def test_boxes_mask_pads_and_clips():
    m = boxes_mask(B([2, 3, 6, 5], [18, 8, 40, 20]), 20, 10, pad=1)
    assert m.shape == (10, 20)
    assert m[2:6, 1:7].all() and m[7:, 17:].all() and m.sum() == 4 * 6 + 3 * 3  # padded, and clipped
    assert not boxes_mask(B(), 20, 10, pad=4).any()


def test_db_postprocessing_on_a_made_up_map():
    from tsam_cli.masking.text import UNCLIP_RATIO, prob_to_boxes

    prob = np.zeros((60, 200), np.float32)
    prob[20:30, 40:140] = 0.9  # a text line
    prob[22:28, 140:150] = 0.15  # its faint tail (trailing dots): joins the line's box
    prob[45:50, 10:20] = 0.35  # a weak region: mean below the box threshold
    boxes = prob_to_boxes(prob, 0.5)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    d = 110 * 10 * UNCLIP_RATIO / (2 * 120)  # DB's unclip offset of the grown region
    assert np.allclose([x0, y0, x1, y1], [40 - d, 20 - d, 150 + d, 30 + d], atol=0.01)
    assert len(prob_to_boxes(prob, 0.3)) == 2  # a lower --threshold takes the weak region too


def test_text_masks_are_turned_to_the_coded_orientation():
    from tsam_cli.masking.text import TextMasks
    from tsam_cli.media import VideoInfo

    info = VideoInfo(Path("v.mp4"), width=64, height=40, n_frames=2, fps=25, is_folder=False, rotation=90)
    boxes = [B([0, 60, 10, 64]), B()]  # shown 40x64: bottom-left corner
    masks = list(TextMasks(info, boxes, [0, 1], pad=0))
    m, pts = masks[0]
    assert m.shape == (40, 64) and pts == 0
    shown = np.rot90(m, k=-1)  # a player turns the coded frame 90 deg clockwise
    assert shown[60:64, 0:10].all() and shown.sum() == 40
    assert not masks[1][0].any()


# -- the extra ---------------------------------------------------------------------------

def test_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    import tsam_cli.masking.text as text

    real = importlib.util.find_spec
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    src = write_video(tmp_path / "in.mp4", np.zeros((4, 32, 48, 3), np.uint8))
    code = main(["mask", "text", str(src), "-o", str(tmp_path / "m.mp4"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == UsageError.exit_code
    assert len(err.splitlines()) == 1 and 'pip install -e ".[text]"' in err
    assert not (tmp_path / "m.mp4").exists()


# -- with the PP-OCR model ---------------------------------------------------------------

def _outline(height: int = 120, width: int = 216) -> np.ndarray:
    """``(height, width) uint8`` 0-255: the subtitle's black outline as drawn (anti-aliased),
    which holds its white letters: the footprint of the drawn text."""
    import cv2

    ink = np.zeros((height, width), np.uint8)
    cv2.putText(ink, "hello world", (40, 105), cv2.FONT_HERSHEY_DUPLEX, 0.6, 255, 3, cv2.LINE_AA)
    return ink


def _bbox(m: np.ndarray) -> np.ndarray:
    """``(1, 4) float32`` x0, y0, x1, y1 (exclusive) of the True pixels of ``m``."""
    ys, xs = np.nonzero(m)
    return B([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def _subtitled(tmp_path: Path, T: int = 30, on: tuple[int, int] = (8, 22)) -> tuple[Path, np.ndarray]:
    """A panning texture with a white, black-outlined subtitle in frames ``on[0] .. on[1]-1``;
    returns the video and the drawn text pixels (``(120, 216) bool``) of a frame that shows it."""
    import cv2
    from conftest import translating_video

    frames = translating_video(T, 120, 216, dx=2, dy=0, seed=3)
    ink = _outline(*frames.shape[1:3])
    for t in range(*on):
        cv2.putText(frames[t], "hello world", (40, 105), cv2.FONT_HERSHEY_DUPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frames[t], "hello world", (40, 105), cv2.FONT_HERSHEY_DUPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return write_video(tmp_path / "sub.mp4", frames, codec="libx264rgb", pix_fmt="rgb24"), ink > 64


@needs_extra
@pytest.mark.parametrize("every", [1, 5])
def test_mask_text_marks_exactly_the_subtitled_frames(tmp_path, every):
    from tsam_cli.media import iter_frames, probe

    src, ink = _subtitled(tmp_path)
    out = tmp_path / "mask.mkv"
    assert main(["mask", "text", str(src), "-o", str(out), "--every", str(every), "-q"]) == 0
    masks = [f.rgb.max(axis=2) > 127 for f in iter_frames(probe(out))]
    assert len(masks) == 30
    shown = [t for t, m in enumerate(masks) if m.any()]
    assert shown == list(range(8, 22))
    # The mask must be a box around the line: IoU with the truth the benchmark scores against
    # (benchmarks/mask_text.py: the tight box of the drawn outline, grown by the default --pad 4).
    # Measured (rapidocr 3.10.0's PP-OCRv6 det, onnxruntime 1.32.0): the detector's box (DB region
    # + unclip 0.8) overshoots the outline's box by 1-2 px a side, --pad adds 4, edges round
    # outward: 103-105 x 25 px against the truth's 102 x 22, IoU 0.840-0.871 (--every 1) and
    # 0.815-0.855 (--every 5, carried boxes). The old bound, mean < 0.1 (2592 px of this 216x120
    # frame), sat inside that 1-px jitter (2525-2704 px) and failed on it. 0.75 leaves about 1 px
    # on every side and still fails a box 2 px a side too large (0.71-0.74), padding applied
    # twice (--pad 8: 0.60-0.62), PaddleOCR's unclip 1.6 (0.65-0.68), a line across the whole
    # width (0.42) or the whole search band (0.22); a box too small fails the ink check.
    truth = boxes_mask(_bbox(_outline() > 0), 216, 120, pad=4)
    for t in shown:
        assert masks[t][ink].all()  # every drawn pixel is inside the mask
        iou = (masks[t] & truth).sum() / (masks[t] | truth).sum()
        assert iou >= 0.75, f"frame {t}: mask IoU {iou:.3f} with the drawn line's box + 4 px"


@needs_extra
def test_text_extra_brings_no_second_cv2():
    """rapidocr must not pull opencv-python (or -contrib) next to tsam's opencv-python-headless:
    two wheels writing one ``cv2`` package leave whichever was installed last (a GUI build
    that needs libGL on a server, or a broken mix of both)."""
    from importlib.metadata import PackageNotFoundError, version

    others = []
    for name in ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"):
        try:
            others.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    assert not others, f"installed beside opencv-python-headless: {others}"


@needs_extra
def test_inpaint_remove_text_cleans_up_its_temporary_mask(tmp_path, monkeypatch):
    import tempfile

    from tsam_cli.media import iter_frames, probe

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    src, ink = _subtitled(tmp_path, T=24, on=(4, 20))
    out = tmp_path / "clean.mp4"
    assert main(["inpaint", str(src), "--remove", "text", "-o", str(out), "-q", "--model", "classical"]) == 0
    frames = [f.rgb for f in iter_frames(probe(out))]
    assert len(frames) == 24
    white = (frames[10].min(axis=2) > 235) & ink  # the white letters are gone
    assert white.sum() < 0.02 * ink.sum()
    assert not list((tmp_path / "tmp").iterdir())  # the temporary mask folder was removed


def test_inpaint_remove_rejects_unknown_kind(tmp_path, capsys):
    src = write_video(tmp_path / "in.mp4", np.zeros((4, 32, 48, 3), np.uint8))
    code = main(["inpaint", str(src), "--remove", "faces", "-o", str(tmp_path / "o.mp4")])
    assert code == UsageError.exit_code
    assert "--remove 'faces' is not known" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


@needs_extra
def test_inpaint_remove_text_without_text_says_so(tmp_path, capsys):
    from conftest import translating_video

    src = write_video(tmp_path / "plain.mp4", translating_video(12, 120, 216, dx=2, dy=0, seed=3))
    code = main(["inpaint", str(src), "--remove", "text", "-o", str(tmp_path / "o.mp4"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "--remove text found nothing to remove" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()
