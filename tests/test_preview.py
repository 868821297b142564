"""``tsam preview`` and ``tsam inpaint --preview``: mask overlay, side-by-side and wipe comparisons."""

from fractions import Fraction

import numpy as np
import pytest
from conftest import moving_box_masks, read_video, translating_video, write_pngs, write_video

from tsam_cli.api import inpaint
from tsam_cli.cli.main import main
from tsam_cli.errors import InputError, OutputError, UsageError
from tsam_cli.masking.preview import (
    LOW_COLOUR,
    OVERLAY_COLOUR,
    PreviewOptions,
    mark_low,
    overlay,
    to_coded,
    to_display,
    wipe,
    wipe_position,
    write_preview,
)
from tsam_cli.masking.save import confidence_json, confidence_path
from tsam_cli.media import probe

T, H, W = 8, 64, 96


@pytest.fixture()
def clip(tmp_path):
    """An 8-frame 96x64 mp4 at 20 fps with AAC audio, and a moving-box mask folder."""
    video = write_video(tmp_path / "in.mp4", translating_video(T=T, h=H, w=W), fps=20, audio=True)
    masks = write_pngs(tmp_path / "masks", moving_box_masks(T, H, W))
    return video, masks


def audio_packets(path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.audio[0]) if p.size) if c.streams.audio else 0


# ---------------------------------------------------------------------------- drawing
def test_overlay_tints_inside_and_outlines_the_border_only():
    frame = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    out = overlay(frame, mask, opacity=0.5, outline=2)
    assert np.array_equal(out[~mask], frame[~mask])  # untouched outside
    assert (out[5, 10] == OVERLAY_COLOUR).all() and (out[6, 11] == OVERLAY_COLOUR).all()  # 2 px border
    centre = out[10, 15].astype(int)
    assert np.array_equal(centre, [178, 50, 178])  # 100 * 0.5 + colour * 0.5, rounded


def test_wipe_border_sweeps_across_and_back():
    pos = [wipe_position(i, 100, 10) for i in range(11)]
    assert pos[0] == 0 and pos[5] == 100 and pos[10] == 0 and pos[:6] == sorted(pos[:6])
    a, b = np.zeros((4, 10, 3), np.uint8), np.full((4, 10, 3), 50, np.uint8)
    w = wipe(a, b, 6, line=2)
    assert (w[:, :5] == 50).all() and (w[:, 5:7] == 255).all() and (w[:, 7:] == 0).all()


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_display_orientation_round_trips(rotation):
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(to_coded(to_display(img, rotation), rotation), img)


# ---------------------------------------------------------------------------- videos
def test_mask_overlay_keeps_count_fps_size_and_audio(clip, tmp_path):
    video, masks = clip
    out = tmp_path / "preview.mp4"
    rep = write_preview(video, out, PreviewOptions(mask=str(masks), dilate=0))
    info, src = probe(out), probe(video)
    assert (info.n_frames, info.width, info.height, info.fps) == (T, W, H, src.fps) and rep.n_frames == T
    assert info.has_audio and audio_packets(out) == audio_packets(video)
    got, orig = read_video(out).astype(int), read_video(video).astype(int)
    m = moving_box_masks(T, H, W) > 0
    inner = np.zeros_like(m)
    inner[:, 28:36, 24:36] = m[:, 28:36, 24:36]  # away from the outline
    inside = got[inner] - orig[inner]
    assert inside[:, 1].mean() < -20 and inside[:, 0].mean() > 20  # tinted towards magenta
    far = np.zeros_like(m)
    far[:, :, 80:] = True
    assert np.abs(got[far] - orig[far]).mean() < 10  # elsewhere: the input, up to H.264 crf 23 on noise


def test_side_by_side_is_double_width_input_left_result_right(clip, tmp_path):
    video, _ = clip
    result = write_video(tmp_path / "result.mp4", 255 - translating_video(T=T, h=H, w=W), fps=20)
    out = tmp_path / "sbs.mp4"
    write_preview(video, out, PreviewOptions(result=str(result)))
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (T, 2 * W, H) and info.has_audio
    got, src, res = read_video(out).astype(int), read_video(video), read_video(result)
    assert np.abs(got[:, :, :W] - src).mean() < 10 < np.abs(got[:, :, :W] - res).mean()  # crf 23 on noise
    assert np.abs(got[:, :, W:] - res).mean() < 10 < np.abs(got[:, :, W:] - src).mean()


def test_wipe_keeps_the_size(clip, tmp_path):
    video, _ = clip
    result = write_video(tmp_path / "result.mp4", np.zeros((T, H, W, 3), np.uint8), fps=20)
    out = tmp_path / "wipe.mkv"
    write_preview(video, out, PreviewOptions(result=str(result), wipe=True, wipe_period=4))
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (T, W, H)
    frames = read_video(out)
    assert frames[2, :, : W - 4].mean() < 10  # frame 2 of 4: the border at the right edge, all result


def test_inpaint_preview_writes_the_overlay_not_a_result(clip, tmp_path):
    video, masks = clip
    out = tmp_path / "p.mp4"
    rep = inpaint(video, masks, out, preview=True)
    assert rep.n_frames == T and probe(out).has_audio
    got, orig = read_video(out).astype(int), read_video(video).astype(int)
    m = moving_box_masks(T, H, W) > 0
    assert (got[m][:, 1] - orig[m][:, 1]).mean() < -20  # tinted, not filled


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw", [{}, {"wipe": True, "mask": "m"}, {"mask": "m", "result": "r"}, {"mask": "m", "opacity": 2.0}])
def test_bad_options(clip, tmp_path, kw):
    with pytest.raises(UsageError):
        write_preview(clip[0], tmp_path / "p.mp4", PreviewOptions(**kw))
    assert not (tmp_path / "p.mp4").exists()


def test_result_of_another_video_is_refused_and_nothing_written(clip, tmp_path):
    video, _ = clip
    short = write_video(tmp_path / "short.mp4", translating_video(T=T - 2, h=H, w=W), fps=20)
    small = write_video(tmp_path / "small.mp4", translating_video(T=T, h=H, w=W - 16), fps=20)
    for other in (short, small):
        with pytest.raises(InputError):
            write_preview(video, tmp_path / "p.mp4", PreviewOptions(result=str(other)))
    assert not (tmp_path / "p.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.mp4")]  # no temporary left


def test_never_overwrites_an_input(clip, tmp_path):
    video, masks = clip
    before = video.read_bytes()
    with pytest.raises(OutputError):
        write_preview(video, video, PreviewOptions(mask=str(masks), overwrite=True))
    assert video.read_bytes() == before


def test_cli_writes_and_errors_in_one_line(clip, tmp_path, capsys):
    video, masks = clip
    out = tmp_path / "frames"
    assert main(["preview", str(video), "--mask", str(masks), "-o", str(out), "-q"]) == 0
    assert len(list(out.glob("*.png"))) == T
    capsys.readouterr()
    code = main(["preview", str(video), "--wipe", "--mask", str(masks), "-o", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --wipe") and len(err.strip().splitlines()) == 1
    code = main(["preview", str(tmp_path / "missing.mp4"), "--mask", str(masks), "-o", str(tmp_path / "x.mp4")])
    assert code == 3 and not (tmp_path / "x.mp4").exists()


def test_folder_input_gets_the_given_fps(tmp_path):
    frames = write_pngs(tmp_path / "in", list(translating_video(T=4, h=H, w=W)))
    out = tmp_path / "p.mp4"
    write_preview(frames, out, PreviewOptions(box="10,10,20,20"), fps=12.5)
    assert probe(out).fps == Fraction(25, 2)


def _rotated_video(path, frames):
    """An mp4 whose frames are shown turned 90 degrees clockwise (a phone's portrait clip)."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=20)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {"crf": "10", "preset": "ultrafast"}
        vs.set_display_rotation(-90)  # PyAV: counter-clockwise degrees
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    return path


def test_side_by_side_of_a_rotated_clip_is_side_by_side_as_shown(tmp_path):
    v = translating_video(T=4, h=H, w=W)
    video = _rotated_video(tmp_path / "in.mp4", v)
    result = _rotated_video(tmp_path / "res.mp4", 255 - v)
    out = tmp_path / "sbs.mp4"
    write_preview(video, out, PreviewOptions(result=str(result)))
    info = probe(out)
    assert info.rotation == 90 and (info.width, info.height) == (W, 2 * H)  # twice as wide when shown
    def as_shown(path):
        return np.stack([to_display(f, 90) for f in read_video(path)])

    shown, src, res = as_shown(out), as_shown(video), as_shown(result)  # shown: (T, W, 2H, 3)
    left, right = shown[:, :, :H].astype(int), shown[:, :, H:].astype(int)
    assert np.abs(left - src).mean() < 10 < np.abs(left - res).mean()
    assert np.abs(right - res).mean() < 10 < np.abs(right - src).mean()


# ---------------------------------------------------------------------------- low-confidence marks
def test_mark_low_draws_a_red_border_and_text_only_near_the_edge():
    frame = np.full((64, 96, 3), 100, np.uint8)
    out = mark_low(frame, 0.3)
    assert (out[0] == LOW_COLOUR).all() and (out[:, -1] == LOW_COLOUR).all() and (out[-3:] == LOW_COLOUR).all()
    assert (out[30:-3, 10:-10] == 100).all() and (out[:20] != 100).any()  # the text is at the top left
    turned = mark_low(np.full((96, 64, 3), 100, np.uint8), 0.3, rotation=90)  # text as shown
    assert (turned[:, 0] == LOW_COLOUR).all() and turned.shape == (96, 64, 3)


def _frames(folder):
    return [p.read_bytes() for p in sorted(folder.glob("*.png"))]


def _sidecar(path, conf):
    path.write_text(confidence_json([(c, "agreement") for c in conf], [0], 0.5))
    return path


def test_preview_marks_exactly_the_low_frames_of_a_sidecar(clip, tmp_path, capsys):
    video, masks = clip
    plain = tmp_path / "plain"
    write_preview(video, plain, PreviewOptions(mask=str(masks)))
    conf = [1.0, 0.9, 0.2, 0.45, 0.8, 0.5, 0.0, 1.0]  # below 0.5: frames 2, 3, 6
    _sidecar(confidence_path(masks), conf)
    code = main(["preview", str(video), "--mask", str(masks), "-o", str(tmp_path / "marked")])
    assert code == 0 and "marked 3 frames of low confidence" in capsys.readouterr().err
    a, b = _frames(plain), _frames(tmp_path / "marked")
    assert [i for i in range(T) if a[i] != b[i]] == [2, 3, 6]
    marked = read_video(tmp_path / "marked")
    assert (marked[[2, 3, 6], 0] == LOW_COLOUR).all() and not (marked[[0, 1, 4, 5, 7], 0] == LOW_COLOUR).all()


def test_preview_without_low_frames_is_unchanged(clip, tmp_path):
    """No sidecar, or one with no frame below its threshold: the same PNG bytes as before."""
    video, masks = clip
    write_preview(video, tmp_path / "plain", PreviewOptions(mask=str(masks)))
    _sidecar(confidence_path(masks), [0.9] * T)
    write_preview(video, tmp_path / "high", PreviewOptions(mask=str(masks)))
    assert _frames(tmp_path / "plain") == _frames(tmp_path / "high")


def test_explicit_confidence_file_and_its_errors(clip, tmp_path, capsys):
    video, masks = clip
    other = _sidecar(tmp_path / "c.json", [0.1] * T)
    rep = write_preview(video, tmp_path / "a", PreviewOptions(mask=str(masks), confidence=str(other)))
    assert rep.n_low == T
    short = _sidecar(tmp_path / "short.json", [0.1] * 3)
    code = main(["preview", str(video), "--mask", str(masks), "--confidence", str(short), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 3 and "3 frames" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
    (tmp_path / "bad.json").write_text("[1, 2]")
    code = main(["preview", str(video), "--mask", str(masks), "--confidence", str(tmp_path / "bad.json"), "-o",
                 str(tmp_path / "b")])
    assert code == 3 and len(capsys.readouterr().err.strip().splitlines()) == 1
    _sidecar(confidence_path(masks), [0.1] * 3)  # a stale sidecar beside the mask: warned about, not used
    rep = write_preview(video, tmp_path / "c", PreviewOptions(mask=str(masks)))
    assert rep.n_low == 0
    with pytest.raises(UsageError):
        write_preview(video, tmp_path / "d.mp4", PreviewOptions(result=str(video), confidence=str(other)))
