"""``tsam outpaint``: canvas geometry, originals bit-exact, the new area filled from other frames,
bad sizes refused in one line, metadata kept, frame folders, --mask together, preview."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from cli_helpers import one_error_line, run
from conftest import read_video, texture, translating_video, write_pngs, write_video

import tsam_cli as tsam
from tsam_cli.core.canvas import Canvas, _rotate_pads, detect_borders, plan_canvas
from tsam_cli.errors import UsageError
from tsam_cli.media import probe
from tsam_cli.options import OutpaintOptions

T, H, W = 10, 64, 96


def _info(w=W, h=H, rotation=0, sar=None):
    return SimpleNamespace(width=w, height=h, rotation=rotation, sample_aspect_ratio=sar)


def _pan(T=16, h=H, w=128, dx=4, seed=3):
    """A camera pan: a window sliding right over a wide texture by ``dx`` px per frame."""
    return translating_video(T=T, h=h, w=w, dx=dx, dy=0, seed=seed)


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("kw,size,offset", [
    ({"aspect": "16:9"}, (114, 64), (9, 0)),  # 64 * 16 / 9 = 113.8 -> 114
    ({"aspect": "16:9", "anchor": "left"}, (114, 64), (0, 0)),
    ({"aspect": "16:9", "anchor": "right"}, (114, 64), (18, 0)),
    ({"aspect": "1:1"}, (96, 96), (0, 16)),
    ({"aspect": "1:1", "anchor": "top"}, (96, 96), (0, 0)),
    ({"aspect": "1.5"}, (96, 64), (0, 0)),  # already 3:2 with a mask: nothing added
    ({"size": "128x80"}, (128, 80), (16, 8)),
    ({"size": "128x80", "anchor": "0.25,1"}, (128, 80), (8, 16)),
    ({"pad": "10,2,30,4"}, (136, 70), (10, 2)),
])
def test_canvas_sizes_and_offsets(kw, size, offset):
    c = plan_canvas(_info(), OutpaintOptions(box="1,1,2,2", **kw))
    assert c.size == size and c.offset == offset


def test_aspect_is_the_display_aspect_with_sar_and_rounded_even_for_420():
    c = plan_canvas(_info(sar=Fraction(2, 1)), OutpaintOptions(aspect="16:9"))  # displayed 192x64 = 3:1
    assert c.size == (96, 108)  # 96 * 2 / 108 = 16 / 9
    c = plan_canvas(_info(w=95, h=64), OutpaintOptions(aspect="16:9"), even=True)
    assert c.size == (114, 64) and c.notes == ()  # 113.8 -> 114, already even
    c = plan_canvas(_info(w=96, h=63), OutpaintOptions(aspect="16:9"), even=True)
    assert c.size == (112 + 0, 64) and c.notes  # 63 * 16 / 9 = 112 -> height 63 rounded to 64, a note
    assert plan_canvas(_info(w=96, h=63), OutpaintOptions(aspect="16:9")).size == (112, 63)


def test_rotation_maps_display_pads_to_the_coded_frame():
    # the coded frame is shown turned 90 degrees clockwise: a marker on display-left is coded-bottom
    disp = np.zeros((5, 7), bool)
    disp[:, 0] = True  # display left column
    coded = np.rot90(disp, k=1)  # as MaskStream turns display masks into coded ones
    assert coded[-1].all()  # ... the coded bottom row
    assert _rotate_pads((1, 2, 3, 4), 90) == (2, 3, 4, 1)  # coded left = display top, ..., coded bottom = display left
    c = plan_canvas(_info(w=64, h=96, rotation=90), OutpaintOptions(pad="10,0,0,0"))
    assert c.size == (64, 106) and c.offset == (0, 0)  # display left 10 = coded bottom 10
    c = plan_canvas(_info(w=64, h=96, rotation=90), OutpaintOptions(aspect="16:9"))
    assert c.size == (64, 114)  # shown 96x64 -> 114x64


def test_place_keeps_the_input_and_marks_the_new_area():
    frame = texture(H, W, seed=1)
    c = Canvas((W, H), (W + 12, H + 6), (4, 2))
    placed, hole = c.place(frame), c.holes(frame, None)
    assert placed.shape == (H + 6, W + 12, 3) and hole.shape == (H + 6, W + 12)
    assert np.array_equal(placed[2:2 + H, 4:4 + W], frame) and not hole[2:2 + H, 4:4 + W].any()
    assert hole.sum() == (H + 6) * (W + 12) - H * W
    assert np.array_equal(placed[0, 0], frame[0, 0])  # edge replicated, no black edge
    mask = np.zeros((H, W), bool)
    mask[10:20, 30:40] = True
    assert c.holes(frame, mask)[12:22, 34:44].all()


def test_borders_detected_only_where_black_touches_the_edge():
    frame = texture(H, W, seed=2) // 2 + 64
    frame[:8] = 0
    frame[30:34, 40:44] = 0  # a black speck inside the picture is content
    b = detect_borders(frame)
    assert b[:8].all() and b[8:10].all() and not b[30:34, 40:44].any() and not b[20:].any()


# ---------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("args,word", [
    (["--aspect", "0"], "--aspect"), (["--aspect", "-16:9"], "--aspect"), (["--aspect", "nan"], "--aspect"),
    (["--aspect", "inf:1"], "--aspect"), (["--aspect", "100:1"], "--aspect"), (["--aspect", "16:"], "--aspect"),
    (["--size", "0x0"], "--size"), (["--size", "64x32"], "smaller"), (["--size", "-5x100"], "--size"),
    (["--size", "nanx100"], "--size"), (["--size", "99999x99999"], "--size"), (["--size", "16000x64"], "at most"),
    (["--pad", "-1,0,0,0"], "--pad"), (["--pad", "0,0,0,0"], "--pad"), (["--pad", "1,2,3"], "--pad"),
    (["--aspect", "16:9", "--size", "200x100"], "only one"), (["--pad", "8,0,8,0", "--anchor", "left"], "--anchor"),
    (["--aspect", "16:9", "--anchor", "middle"], "--anchor"), (["--aspect", "16:9", "--anchor", "2,0"], "--anchor"),
    ([], "nothing to outpaint"), (["--fill-borders", "100,0,0,0"], "--fill-borders"),
    (["--aspect", "3:2"], "adds nothing"),
])
def test_bad_values_are_one_line_and_exit_2(tmp_path, capsys, args, word):
    video = write_video(tmp_path / "in.mp4", translating_video(T=3, h=H, w=W))
    code, err = run(["outpaint", video, "-o", tmp_path / "out.mp4", *args], capsys)
    assert code == 2 and one_error_line(err) and word in err, err
    assert not (tmp_path / "out.mp4").exists()


def test_output_onto_the_input_is_refused(tmp_path, capsys):
    video = write_video(tmp_path / "in.mp4", translating_video(T=3, h=H, w=W))
    before = video.read_bytes()
    code, err = run(["outpaint", video, "-o", video, "--aspect", "16:9", "--overwrite"], capsys)
    assert code == 5 and one_error_line(err) and video.read_bytes() == before


# ---------------------------------------------------------------------------- results
def test_cli_lossless_keeps_originals_bit_exact_metadata_and_audio(tmp_path, capsys):
    clip = _pan(T=T, w=W)
    video = write_video(tmp_path / "in.mp4", clip, fps=20, audio=True)
    src = read_video(video)
    out = tmp_path / "wide.mp4"
    code, err = run(["outpaint", video, "-o", out, "--aspect", "16:9", "--lossless", "-q"], capsys)
    assert code == 0, err
    info, res = probe(out), read_video(out)
    assert (info.width, info.height, info.n_frames, float(info.fps)) == (114, 64, T, 20.0) and info.has_audio
    assert np.array_equal(res[:, :, 9:9 + W], src)  # the original, bit-exact where it is placed
    new = np.ones((64, 114), bool)
    new[:, 9:9 + W] = False
    assert res[:, new].min(axis=-1).mean() > 20  # filled, not black
    assert all(abs(probe(out).duration - probe(video).duration) < 0.1 for _ in [0])


def test_pan_fills_the_new_area_with_the_true_pixels(tmp_path):
    """Crop the centre of a camera pan, outpaint back: frames that see the lost sides elsewhere
    get them back (the first frame's left and the last frame's right are never seen)."""
    clip = _pan(T=16, w=128, dx=4)
    crop = clip[:, :, 16:112]
    out = tsam.outpaint(crop, size="128x64")
    assert out.shape == clip.shape and np.array_equal(out[:, :, 16:112], crop)
    for t in range(4, 11):  # 4 frames on each side show the 16 px; the last one's edge column only just
        assert psnr(out[t][:, :16], clip[t][:, :16]) > 30, t
        assert psnr(out[t][:, 112:], clip[t][:, 112:]) > 30, t


def test_frame_folders_and_a_mask_in_the_same_run(tmp_path):
    clip = _pan(T=T, w=W)
    folder = write_pngs(tmp_path / "frames", clip)
    out = tmp_path / "out"
    report = tsam.outpaint(folder, out, pad="8,4,8,4", box="40,20,16,16", dilate=0)
    res = read_video(out)
    assert report.size == (112, 72) and res.shape == (T, 72, 112, 3)
    inner = res[:, 4:68, 8:104]
    keep = np.ones((H, W), bool)
    keep[20:36, 40:56] = False
    assert np.array_equal(inner[:, keep], clip[:, keep])  # originals exact outside the box
    assert inner[:, ~keep].min(axis=-1).mean() > 20  # the box refilled too
    assert res[:, :4].min(axis=-1).mean() > 20 and res[:, :, :8].min(axis=-1).mean() > 20


def test_fill_borders_in_place(tmp_path):
    clip = _pan(T=T, w=W)
    barred = clip.copy()
    barred[:, :6] = 0
    barred[:, -6:] = 0
    for kind in ("auto", "0,6,0,6"):
        out = tsam.outpaint(barred, fill_borders=kind, dilate=0)
        assert out.shape == clip.shape
        assert out[:, 8:-8].tolist() == barred[:, 8:-8].tolist()  # untouched beyond the bars (+2 px grown)
        assert out[:, :6].min(axis=-1).mean() > 20 and out[:, -6:].min(axis=-1).mean() > 20


# ---------------------------------------------------------------------------- preview
def test_preview_tints_the_new_area_and_compares_side_by_side(tmp_path, capsys):
    clip = _pan(T=6, w=W)
    video = write_video(tmp_path / "in.mp4", clip, fps=20, audio=True)
    prev = tmp_path / "prev.mp4"
    code, err = run(["outpaint", video, "-o", prev, "--pad", "16,0,16,0", "--preview"], capsys)
    assert code == 0, err
    frames = read_video(prev)
    assert frames.shape == (6, H, W + 32, 3)
    assert frames[:, :, 4:12, 1].mean() < frames[:, :, 4:12, 0].mean() - 30  # magenta tint: red over green
    out = tmp_path / "wide.mp4"
    assert run(["outpaint", video, "-o", out, "--pad", "16,0,16,0", "-q"], capsys)[0] == 0
    both = tmp_path / "both.mp4"
    code, err = run(["preview", video, "--result", out, "-o", both], capsys)
    assert code == 0, err
    side = read_video(both)
    assert side.shape == (6, H, 2 * (W + 32), 3) and probe(both).has_audio
    src = read_video(video).astype(int)
    err = [np.abs(side[:, :, x:x + W].astype(int) - src).mean() for x in (16, 0, 32)]
    assert err[0] < min(err[1:]) / 2  # the input where it sits in the result (both halves lossy H.264)


def test_options_validate_on_the_api(tmp_path):
    with pytest.raises(UsageError):
        tsam.outpaint(_pan(T=3, w=W), aspect="0:1")


def test_batch_widens_every_input_into_a_folder_and_resumes(tmp_path, capsys):
    """Several inputs: one output per input in -o (no mask needed: the new area is the hole);
    an output already there is skipped, as for inpaint's batches."""
    a = write_video(tmp_path / "a.mp4", _pan(T=4, w=W, seed=1))
    b = write_pngs(tmp_path / "b", _pan(T=4, w=W, seed=2))
    out = tmp_path / "wide"
    code, err = run(["outpaint", a, b, "-o", out, "--pad", "8,0,8,0", "-q"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]
    assert all((probe(out / n).width, probe(out / n).n_frames) == (W + 16, 4) for n in ("a.mp4", "b.mp4"))
    stamp = (out / "a.mp4").stat().st_mtime_ns
    code, err = run(["outpaint", a, b, "-o", out, "--pad", "8,0,8,0"], capsys)
    assert code == 0 and (out / "a.mp4").stat().st_mtime_ns == stamp and "skipped" in err + capsys.readouterr().out


def test_an_interrupted_outpaint_leaves_nothing(tmp_path):
    """SIGINT while the output is being written: exit 130, one line, no output and no temporaries."""
    import signal

    from cli_helpers import interrupt_at, leftovers

    video = write_video(tmp_path / "in.mp4", _pan(T=6, w=W))
    out = tmp_path / "wide.mp4"
    code, err = interrupt_at("writing", signal.SIGINT, ["outpaint", video, "-o", out, "--aspect", "16:9"], tmp_path)
    assert code == 130 and one_error_line(err) and "interrupted" in err
    assert not out.exists() and leftovers(tmp_path) == []
