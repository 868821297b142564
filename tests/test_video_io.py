"""Video/frame-folder reading and writing: formats, timing, audio, lossless, odd sizes, atomicity."""

from fractions import Fraction

import numpy as np
import pytest
from conftest import read_video, translating_video, write_pngs, write_video

from tsam_cli.errors import InputError, OutputError
from tsam_cli.media import check_output_path, create_video, iter_frames, natural_key, probe


@pytest.mark.parametrize(
    "suffix,codec,pix",
    [(".mp4", "libx264", "yuv420p"), (".mov", "libx264", "yuv420p"), (".mkv", "ffv1", "bgr0"),
     (".avi", "mpeg4", "yuv420p"), (".webm", "libvpx-vp9", "yuv420p")],
)
def test_probe_and_decode_containers(tmp_path, suffix, codec, pix):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this PyAV build")
    v = translating_video(T=6, h=48, w=64)
    path = write_video(tmp_path / f"v{suffix}", v, fps=24, codec=codec, pix_fmt=pix)
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (64, 48, 6)
    assert float(info.fps) == pytest.approx(24, rel=1e-3)
    frames = [f.rgb for f in iter_frames(info)]
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    if codec == "ffv1":
        assert np.array_equal(np.stack(frames), v)


def test_frame_folder_natural_order(tmp_path):
    v = translating_video(T=12, h=32, w=40)
    folder = write_pngs(tmp_path / "f", v, name="frame{}.png")  # frame2 < frame10
    info = probe(folder, fps=12.5)
    assert info.n_frames == 12 and float(info.fps) == 12.5 and info.is_folder
    assert np.array_equal(np.stack([f.rgb for f in iter_frames(info)]), v)
    assert sorted(["a10", "a2", "a1"], key=natural_key) == ["a1", "a2", "a10"]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ""])
def test_lossless_outputs_are_bit_exact(tmp_path, suffix):
    v = translating_video(T=5, h=36, w=52)
    out = tmp_path / f"out{suffix}"
    with create_video(out, 52, 36, Fraction(25), lossless=True) as w:
        for f in v:
            w.write(f)
    assert np.array_equal(read_video(out), v)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_odd_size_kept_with_note(tmp_path):
    v = translating_video(T=3, h=35, w=51)
    with create_video(tmp_path / "o.mp4", 51, 35, Fraction(25)) as w:
        for f in v:
            w.write(f)
    info = probe(tmp_path / "o.mp4")
    assert (info.width, info.height) == (51, 35)
    assert any("odd size" in n for n in w.notes)


def test_variable_frame_rate_timestamps_survive(tmp_path):
    v = translating_video(T=6, h=32, w=48)
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 240, 400]  # irregular spacing (VFR)
    src = write_video(tmp_path / "vfr.mkv", v, fps=25, codec="ffv1", pix_fmt="bgr0", pts=pts, time_base=tb)
    info = probe(src)
    frames = list(iter_frames(info))
    times_in = [float(f.pts * f.time_base) for f in frames]
    with create_video(tmp_path / "out.mp4", 48, 32, info.fps, time_base=info.time_base) as w:
        for f in frames:
            w.write(f.rgb, f.pts)
    times_out = [float(f.pts * f.time_base) for f in iter_frames(probe(tmp_path / "out.mp4"))]
    assert times_in == pytest.approx([p / 1000 for p in pts])
    assert times_out == pytest.approx(times_in, abs=1e-3)


def test_audio_is_copied_not_reencoded(tmp_path):
    import av

    v = translating_video(T=25, h=32, w=48)
    src = write_video(tmp_path / "a.mp4", v, fps=25, audio=True)
    info = probe(src)
    assert info.has_audio and info.audio_codec == "aac"
    out = tmp_path / "out.mp4"
    with create_video(out, 48, 32, info.fps, time_base=info.time_base, audio_from=src) as w:
        for f in iter_frames(info):
            w.write(f.rgb, f.pts)

    def packets(path):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert packets(out) == packets(src)  # stream copy: identical AAC packets
    assert w.notes == []


def test_writer_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with create_video(out, 32, 32, Fraction(25)) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no PNG/JPEG"):
        probe(tmp_path / "empty")
    (tmp_path / "x.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match="corrupt or not a video"):
        probe(tmp_path / "x.mp4")


def test_check_output_path(tmp_path):
    inp = tmp_path / "in.mp4"
    inp.write_bytes(b"x")
    with pytest.raises(OutputError, match="is the input"):
        check_output_path(inp, [("the input", inp)], overwrite=True)
    existing = tmp_path / "o.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output_path(existing, [inp], overwrite=False)
    assert check_output_path(existing, [inp], overwrite=True) == "file"
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "o.mp4", [inp], overwrite=False)
    with pytest.raises(OutputError, match="cannot write"):
        check_output_path(tmp_path / "o.gif", [inp], overwrite=False)
