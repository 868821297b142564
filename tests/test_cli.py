"""The command line: end-to-end runs and bad inputs (exit code, one-line message, no output left)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    ROOT,
    SHARED,
    moving_box_masks,
    needs_shared,
    read_video,
    translating_video,
    write_pngs,
    write_video,
)

from tsam_cli.cli.main import main


@pytest.fixture()
def clip(tmp_path):
    """A 10-frame 96x64 translating texture (mp4) + a moving-box mask folder."""
    v = translating_video(T=10, h=64, w=96)
    video = write_video(tmp_path / "in.mp4", v, fps=20)
    masks = write_pngs(tmp_path / "masks", moving_box_masks(10, 64, 96))
    return video, masks


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_version_are_fast():
    r = subprocess.run([sys.executable, "-m", "tsam_cli.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "inpaint" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import sys, tsam_cli.cli.main; print('torch' in sys.modules, 'cv2' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False False"
    r = subprocess.run([sys.executable, "-m", "tsam_cli.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("tsam ")


def test_inpaint_lossless_keeps_known_pixels(clip, tmp_path, capsys):
    video, masks = clip
    out = tmp_path / "out.mkv"
    code, _, err = run(["inpaint", video, "--mask", masks, "-o", out, "--lossless", "-q"], capsys)
    assert code == 0, err
    src, res = read_video(video), read_video(out)
    assert res.shape == src.shape
    from tsam_cli.media.masks import MaskSpec, MaskStream
    from tsam_cli.ui import NullReporter

    dilated = np.stack(list(MaskStream(MaskSpec(masks, dilate=4), 96, 64, 10, NullReporter())))
    assert np.array_equal(res[~dilated], src[~dilated])  # bit-exact outside the dilated mask
    assert not np.array_equal(res[dilated], src[dilated])  # and the hole did change


def test_inpaint_png_folder_output_and_box(clip, tmp_path, capsys):
    video, _ = clip
    out = tmp_path / "frames_out"
    code, _, err = run(["inpaint", video, "--box", "30,20,16,12", "-o", out, "-q"], capsys)
    assert code == 0, err
    assert len(list(out.glob("*.png"))) == 10


def test_inpaint_frame_folder_input(tmp_path, capsys):
    v = translating_video(T=8, h=48, w=64)
    frames = write_pngs(tmp_path / "frames", v)
    import cv2

    m = np.zeros((48, 64), np.uint8)
    m[10:20, 10:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), m)
    out = tmp_path / "o.mp4"
    code, _, err = run(["inpaint", frames, "--mask", tmp_path / "m.png", "-o", out, "--fps", "12", "-q"], capsys)
    assert code == 0, err
    from tsam_cli.media import probe

    info = probe(out)
    assert info.n_frames == 8 and float(info.fps) == pytest.approx(12)


def test_max_size_pastes_back_at_full_resolution(clip, tmp_path, capsys):
    video, masks = clip
    out = tmp_path / "o.mkv"
    code, _, err = run(["inpaint", video, "--mask", masks, "-o", out, "--max-size", "48", "--lossless", "-q"], capsys)
    assert code == 0, err
    res, src = read_video(out), read_video(video)
    assert res.shape == src.shape
    hole = moving_box_masks(10, 64, 96) > 0
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    dil = np.stack([cv2.dilate(h.astype(np.uint8), k) > 0 for h in hole])
    assert np.array_equal(res[~dil], src[~dil])


@needs_shared
def test_acceptance_schoolgirls(tmp_path, capsys):
    src = SHARED / "schoolgirls" / "schoolgirls.mp4"
    out = tmp_path / "sg.mp4"
    code, _, err = run(["inpaint", src, "--mask", SHARED / "schoolgirls" / "masks", "-o", out, "-q"], capsys)
    assert code == 0, err
    from tsam_cli.media import probe

    a, b = probe(src), probe(out)
    assert (b.n_frames, b.width, b.height, b.fps) == (a.n_frames, a.width, a.height, a.fps)


@needs_shared
def test_acceptance_running_car_keeps_audio(tmp_path, capsys):
    import av

    src = SHARED / "running_car" / "running_car.mp4"
    out = tmp_path / "car.mp4"
    # --max-size keeps the test quick; the output is still written at 972x540
    code, _, err = run(["inpaint", src, "--mask", SHARED / "running_car" / "mask_square.png", "-o", out,
                        "--max-size", "320", "-q"], capsys)
    assert code == 0, err
    assert "resized" in err  # the 432x240 mask is scaled to the video, with a warning
    from tsam_cli.media import probe

    a, b = probe(src), probe(out)
    assert (b.width, b.height, b.n_frames) == (972, 540, a.n_frames)
    assert b.has_audio and b.audio_codec == "aac"
    with av.open(str(src)) as c1, av.open(str(out)) as c2:
        d1 = float(c1.streams.video[0].duration * c1.streams.video[0].time_base)
        d2 = float(c2.streams.video[0].duration * c2.streams.video[0].time_base)
        assert abs(d1 - d2) <= 1 / float(a.fps)
        a1 = [bytes(p) for p in c1.demux(c1.streams.audio[0]) if p.size]
        a2 = [bytes(p) for p in c2.demux(c2.streams.audio[0]) if p.size]
        assert a1 == a2  # copied, not re-encoded


# ---------------------------------------------------------------------------------------
# bad inputs: (argv builder, exit code, message fragment)


def _corrupt_mp4(tmp_path, clip):
    data = clip[0].read_bytes()
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(data[: len(data) // 3])  # truncated: no moov atom
    return p


def _mux_silence(out):
    """Add a mono AAC stream with one packet of silence to an open PyAV output container."""
    import av

    s = out.add_stream("aac", rate=44100)
    s.layout = "mono"
    f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    f.sample_rate, f.pts = 44100, 0
    out.mux(s.encode(f))
    out.mux(s.encode(None))


def _audio_only(tmp_path, clip):
    import av

    p = tmp_path / "audio.m4a"
    with av.open(str(p), "w", format="mp4") as out:
        _mux_silence(out)
    return p


def _zero_frames(tmp_path, clip):
    import av

    p = tmp_path / "empty.mkv"  # a video stream with no frames (an audio packet forces the header)
    with av.open(str(p), "w", format="matroska") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "bgr0"
        _mux_silence(out)
    assert p.exists()
    return p


def _mixed_sizes(tmp_path, clip):
    v = translating_video(T=4, h=48, w=64)
    f = write_pngs(tmp_path / "mixed", v)
    import cv2

    cv2.imwrite(str(f / "00003.png"), np.zeros((50, 64, 3), np.uint8))
    return f


def _mask(tmp_path, name, arr):
    return write_pngs(tmp_path / name, arr)


BAD = {
    "missing input": (lambda t, c: [t / "nope.mp4", "--mask", c[1]], 3, "input not found"),
    "not a video": (lambda t, c: [(t / "n.mp4").write_text("hello") and t / "n.mp4", "--mask", c[1]], 3, "not a video"),
    "empty folder": (lambda t, c: [(t / "e").mkdir() or t / "e", "--mask", c[1]], 3, "no PNG/JPEG frames"),
    "corrupt mp4": (lambda t, c: [_corrupt_mp4(t, c), "--mask", c[1]], 3, "corrupt"),
    "zero frames": (lambda t, c: [_zero_frames(t, c), "--mask", c[1]], 3, "no video"),
    "audio only": (lambda t, c: [_audio_only(t, c), "--mask", c[1]], 3, "no video stream"),
    "mixed frame sizes": (lambda t, c: [_mixed_sizes(t, c), "--box", "1,1,5,5"], 3, "one size"),
    "missing mask": (lambda t, c: [c[0], "--mask", t / "nomask"], 4, "mask not found"),
    "mask too short": (lambda t, c: [c[0], "--mask", _mask(t, "ms", moving_box_masks(4, 64, 96))], 4, "has 4 frames but the video has 10"),
    "all-black mask": (lambda t, c: [c[0], "--mask", _mask(t, "mb", np.zeros((10, 64, 96), np.uint8))], 4, "empty"),
    "all-white mask": (lambda t, c: [c[0], "--mask", _mask(t, "mw", np.full((10, 64, 96), 255, np.uint8))], 4, "--invert-mask"),
    "corrupt mask image": (lambda t, c: [c[0], "--mask", (t / "bad.png").write_bytes(b"\x89PNGxx") and t / "bad.png"], 4, "cannot read mask"),
    "no mask": (lambda t, c: [c[0]], 2, "no mask given"),
    "bad box": (lambda t, c: [c[0], "--box", "10,10,20"], 2, "x,y,w,h"),
    "box outside": (lambda t, c: [c[0], "--box", "500,10,20,20"], 2, "outside"),
    "negative dilate": (lambda t, c: [c[0], "--mask", c[1], "--dilate", "-2"], 2, "--dilate"),
    "crf out of range": (lambda t, c: [c[0], "--mask", c[1], "--crf", "99"], 2, "--crf"),
    "fps on a video": (lambda t, c: [c[0], "--mask", c[1], "--fps", "30"], 2, "--fps"),
    "unknown device": (lambda t, c: [c[0], "--mask", c[1], "--device", "tpu"], 2, "--device"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input(name, clip, tmp_path, capsys):
    build, code_expected, fragment = BAD[name]
    argv = build(tmp_path, clip)
    out = tmp_path / "result.mp4"
    before = set(os.listdir(tmp_path))
    code, _, err = run(["inpaint", *argv, "-o", out], capsys)
    assert code == code_expected, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], err
    assert "Traceback" not in err
    assert not out.exists()
    assert set(os.listdir(tmp_path)) == before  # no temp files either


OUT_BAD = {
    "output is the input": (lambda t, c: c[0], "is the input"),
    "output exists": (lambda t, c: (t / "exists.mp4").write_bytes(b"keep me") and t / "exists.mp4", "--overwrite"),
    "output folder missing": (lambda t, c: t / "no" / "such" / "o.mp4", "does not exist"),
    "output parent is a file": (lambda t, c: (t / "afile").write_text("x") and t / "afile" / "o.mp4", "not a folder"),
    "unsupported extension": (lambda t, c: t / "o.gif", "cannot write"),
}


@pytest.mark.parametrize("name", sorted(OUT_BAD))
def test_bad_output(name, clip, tmp_path, capsys):
    build, fragment = OUT_BAD[name]
    out = build(tmp_path, clip)
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run(["inpaint", clip[0], "--mask", clip[1], "-o", out], capsys)
    assert code == 5, err
    assert err.startswith("error: ") and fragment in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot  # nothing touched


def test_debug_shows_traceback(clip, tmp_path):
    r = subprocess.run([sys.executable, "-m", "tsam_cli.cli", "--debug", "inpaint", str(tmp_path / "x.mp4"),
                        "--box", "1,1,2,2", "-o", str(tmp_path / "o.mp4")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "Traceback" in r.stderr and "InputError" in r.stderr


def test_overwrite_replaces_existing(clip, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    code, _, err = run(["inpaint", clip[0], "--mask", clip[1], "-o", out, "--overwrite", "-q"], capsys)
    assert code == 0, err
    assert out.read_bytes()[:3] != b"old" and read_video(out).shape[0] == 10


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_output_folder(clip, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run(["inpaint", clip[0], "--mask", clip[1], "-o", ro / "o.mp4"], capsys)
    finally:
        ro.chmod(0o755)
    assert code == 5 and "not writable" in err
    assert list(ro.iterdir()) == []


def test_full_res_propagation_is_sharper_on_known_motion(tmp_path, capsys):
    """Flows at half size, pixels propagated at full size: the hole is recovered better than by
    processing at half size and upscaling the fill."""
    T, h, w = 12, 96, 144
    v = translating_video(T=T, h=h, w=w, dx=2, dy=0, seed=3)
    frames = write_pngs(tmp_path / "f", v)
    masks = write_pngs(tmp_path / "m", moving_box_masks(T, h, w, size=(24, 20), step=2))
    hole = moving_box_masks(T, h, w, size=(24, 20), step=2) > 0
    scores = {}
    for name, extra in [("paste", []), ("full", ["--full-res"])]:
        out = tmp_path / name
        code = main([str(a) for a in ["inpaint", frames, "--mask", masks, "-o", out, "--max-size", "72",
                                      "--dilate", "0", "-q", *extra]])
        assert code == 0, capsys.readouterr().err
        res = read_video(out)
        assert np.array_equal(res[~hole], v[~hole])
        err = (res.astype(float) - v)[hole]
        scores[name] = 10 * np.log10(255**2 / np.mean(err**2))
    print(scores)
    assert scores["full"] > 30 and scores["full"] > scores["paste"] + 3, scores
