"""``tsam mask static``, ``tsam inpaint --remove static`` and :func:`save_masks` (mask videos
and PNG folders that ``tsam inpaint --mask`` reads back exactly)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import translating_video, write_video

from tsam_cli.cli.main import main
from tsam_cli.errors import InputError, MaskError, OutputError
from tsam_cli.masking.options import StaticMaskOptions
from tsam_cli.masking.save import save_masks
from tsam_cli.masking.static import overlay_mask, solve_poisson
from tsam_cli.media import iter_frames, probe
from tsam_cli.media.masks import MaskSpec, MaskStream
from tsam_cli.ui import NullReporter


def _video(tmp_path: Path, name: str = "in.mp4", rotation: int = 0, T: int = 6, h: int = 40, w: int = 64) -> Path:
    """A small H.264 video with irregular timestamps (time base 1/12800), optionally rotated."""
    import av

    path = tmp_path / name
    frames = translating_video(T, h, w)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 12800)
        if rotation:
            vs.set_display_rotation(-rotation)  # PyAV: counter-clockwise degrees
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i * 512 + (100 if i > 2 else 0), Fraction(1, 12800)
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    return path


def _random_masks(info, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((info.height, info.width)) > 0.7 for _ in range(info.n_frames)]


# -- save_masks --------------------------------------------------------------------------

@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("out_name", ["m.mp4", "m.mkv", "m.mov", "mdir"])
def test_saved_masks_round_trip_exactly_through_inpaint_mask(tmp_path, rotation, out_name):
    info = probe(_video(tmp_path, rotation=rotation))
    masks = _random_masks(info)
    pts = [f.pts for f in iter_frames(info)]
    out = tmp_path / out_name
    assert save_masks(list(zip(masks, pts, strict=True)), out, info, overwrite=False, protected=[]) == info.n_frames
    stream = MaskStream(MaskSpec(out, None, False, 0, None), info.width, info.height, info.n_frames, NullReporter(),
                        rotation=info.rotation)
    got = list(stream)
    assert len(got) == len(masks) and all((g == m).all() for g, m in zip(got, masks, strict=True))
    if out.is_file():  # a mask video keeps the input's timestamps and rotation
        mi = probe(out)
        times = [float(f.pts * f.time_base) for f in iter_frames(mi)]
        assert np.allclose(times, [float(p * info.time_base) for p in pts], atol=0.0006)  # .mkv counts in ms
        assert mi.rotation == rotation
    else:  # PNGs carry no rotation: they are written as the video is shown
        assert sorted(p.name for p in out.glob("*.png"))[0] == "00000.png"


def test_save_masks_protects_the_input_and_existing_outputs(tmp_path):
    src = _video(tmp_path)
    info = probe(src)
    with pytest.raises(OutputError, match="the input"):
        save_masks(_random_masks(info), src, info, overwrite=True, protected=[])
    before = src.read_bytes()
    (tmp_path / "m.mp4").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        save_masks(_random_masks(info), tmp_path / "m.mp4", info, overwrite=False, protected=[])
    assert src.read_bytes() == before and (tmp_path / "m.mp4").read_bytes() == b"old"


def test_save_masks_leaves_nothing_when_the_masks_fail_half_way(tmp_path):
    info = probe(_video(tmp_path))

    def failing():
        yield np.zeros((info.height, info.width), bool)
        raise MaskError("detector failed")

    with pytest.raises(MaskError):
        save_masks(failing(), tmp_path / "m.mp4", info, overwrite=False, protected=[])
    with pytest.raises(InputError, match="no frame"):
        save_masks([], tmp_path / "m.mp4", info, overwrite=False, protected=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no output, no temporary, no lock


# -- the detector ------------------------------------------------------------------------

def test_poisson_solver_inverts_the_laplacian():
    rng = np.random.default_rng(1)
    W = np.zeros((30, 44))
    W[5:20, 8:30] = rng.random((15, 22)) * 50
    P = np.pad(W, 1)
    lap = P[:-2, 1:-1] + P[2:, 1:-1] + P[1:-1, :-2] + P[1:-1, 2:] - 4 * W
    assert np.abs(solve_poisson(lap) - W).max() < 1e-9


def _logo(h: int, w: int) -> np.ndarray:
    """``(h, w) bool`` logo: a filled box with a ring next to it (top right)."""
    import cv2

    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (w - 46, 6), (w - 26, 20), 1, -1)
    cv2.circle(m, (w - 14, 13), 7, 1, 2)
    return m > 0


def _logo_clip(T: int = 40, h: int = 96, w: int = 160, opacity: float = 1.0, static_scene: bool = False):
    """Panning texture (or a still one) with a white logo blended at ``opacity``."""
    frames = translating_video(T, h, w, dx=0 if static_scene else 3, dy=0 if static_scene else 1, seed=5)
    logo = _logo(h, w)
    out = frames.astype(np.float32)
    out[:, logo] = out[:, logo] * (1 - opacity) + 255 * opacity
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), logo


@pytest.mark.parametrize("opacity", [1.0, 0.6])
def test_static_overlay_found_on_a_moving_picture(opacity):
    frames, logo = _logo_clip(opacity=opacity)
    mask = overlay_mask(frames, StaticMaskOptions(pad=0))
    iou = (mask & logo).sum() / (mask | logo).sum()
    assert iou >= 0.85


def test_static_scene_cannot_be_decided():
    frames, _ = _logo_clip(static_scene=True)
    with pytest.raises(MaskError, match="cannot be told from the scene.*--box"):
        overlay_mask(frames, StaticMaskOptions())


def test_moving_picture_without_overlay_finds_nothing():
    frames = translating_video(40, 96, 160, dx=3, dy=1, seed=5)
    with pytest.raises(MaskError, match="no static overlay found"):
        overlay_mask(frames, StaticMaskOptions())


# -- commands ----------------------------------------------------------------------------

def test_mask_static_command_writes_a_mask_inpaint_reads(tmp_path):
    frames, logo = _logo_clip()
    src = write_video(tmp_path / "logo.mp4", frames, codec="libx264rgb", pix_fmt="rgb24")
    out = tmp_path / "logo_mask.mp4"
    assert main(["mask", "static", str(src), "-o", str(out), "--pad", "0", "-q"]) == 0
    info = probe(src)
    got = list(MaskStream(MaskSpec(out, None, False, 0, None), info.width, info.height, info.n_frames, NullReporter()))
    assert len(got) == 40
    assert all((g == got[0]).all() for g in got)  # one mask for every frame
    assert (got[0] & logo).sum() / (got[0] | logo).sum() >= 0.85


def test_mask_static_on_a_static_scene_is_one_line_and_writes_nothing(tmp_path, capsys):
    frames, _ = _logo_clip(static_scene=True)
    src = write_video(tmp_path / "still.mp4", frames)
    code = main(["mask", "static", str(src), "-o", str(tmp_path / "m.mp4"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == MaskError.exit_code and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.mp4"]


def test_mask_command_refuses_bad_output_before_detecting(tmp_path, capsys):
    frames, _ = _logo_clip(T=10)
    src = write_video(tmp_path / "logo.mp4", frames)
    assert main(["mask", "static", str(src), "-o", str(src), "--overwrite"]) == OutputError.exit_code
    assert "the input" in capsys.readouterr().err
    assert main(["mask", "static", str(src), "-o", str(tmp_path / "m.txt")]) == OutputError.exit_code


def test_inpaint_remove_static_unites_with_box_and_cleans_up(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    frames, logo = _logo_clip(T=24)
    src = write_video(tmp_path / "logo.mp4", frames, codec="libx264rgb", pix_fmt="rgb24")
    out = tmp_path / "clean.mp4"
    code = main(["inpaint", str(src), "--remove", "static", "--box", "0,0,8,8", "-o", str(out), "-q",
                 "--model", "classical", "--lossless"])
    assert code == 0
    res = np.stack([f.rgb for f in iter_frames(probe(out))])
    frames = np.stack([f.rgb for f in iter_frames(probe(src))])  # as decoded (the encoder is lossy)
    assert res.shape == frames.shape
    assert (res[:, logo].min(axis=-1) > 250).mean() < 0.05  # the white logo is gone
    keep = ~_grown(logo | _box(frames.shape[1:3]), 8)
    assert np.abs(res[:, keep].astype(int) - frames[:, keep]).max() <= 2  # the rest is the input
    assert not list((tmp_path / "tmp").iterdir())  # the temporary mask is gone


def _box(shape) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[:8, :8] = True
    return m


def _grown(m: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.dilate(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def test_inpaint_remove_static_that_fails_leaves_nothing(tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    frames, _ = _logo_clip(T=12, static_scene=True)
    src = write_video(tmp_path / "still.mp4", frames)
    code = main(["inpaint", str(src), "--remove", "static", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert code == MaskError.exit_code and "cannot be told from the scene" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists() and not list((tmp_path / "tmp").iterdir())


def test_sigterm_during_inpaint_remove_removes_the_temporary_mask(tmp_path):
    """A real child stopped at the 'writing' pause point (the temporary mask exists then)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    frames, _ = _logo_clip(T=16)
    src = write_video(tmp_path / "logo.mp4", frames)
    pause, tmp = tmp_path / "pause", tmp_path / "tmp"
    pause.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TSAM_TEST_PAUSE_AT": "writing", "TSAM_TEST_PAUSE_DIR": str(pause), "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "tsam_cli.entry", "inpaint", str(src), "--remove", "static", "-o",
           str(tmp_path / "o.mp4"), "-q", "--model", "classical"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (pause / "writing.paused").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [p.name for p in tmp.iterdir()][0].startswith("tsam-remove-")  # the mask is there now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().startswith("error: interrupted")
    assert not list(tmp.iterdir()) and not (tmp_path / "o.mp4").exists()
