"""Hostile and unusual media through the media layer: damaged containers, RGBA mask videos,
numbered mask folders with gaps, NaN in float images, one-frame masks, RGB-coded inputs,
mask videos at another frame rate.

Every input is written here with PyAV / OpenCV; the damaged ones by cutting or overwriting
bytes of a healthy file.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import translating_video, write_pngs, write_rgba_video, write_video

from tsam_cli.errors import InputError, MaskError
from tsam_cli.media import iter_frames, probe
from tsam_cli.media.images import ImageReadError, read_image
from tsam_cli.media.masks import MaskSpec, MaskStream
from tsam_cli.ui import NullReporter

H, W, T = 48, 64, 40
MUXERS = {".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov", ".mp4": "mp4"}


def _encode(path: Path, n: int = 12, fps=25, codec: str = "libx264", options: dict | None = None,
            audio_extra: float | None = None, pts_ms: list[int] | None = None) -> Path:
    """``n`` moving frames into ``path``; ``audio_extra`` seconds of audio past the video's end
    (None: no audio); ``pts_ms``: variable frame rate, timestamps in milliseconds."""
    import av

    frames = translating_video(n, H, W)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format=MUXERS[path.suffix]) as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuvj420p" if codec == "mjpeg" else "yuv420p"
        tb = Fraction(1, 1000) if pts_ms else 1 / rate
        vs.codec_context.time_base = tb
        vs.options = options if options is not None else ({"preset": "ultrafast"} if codec == "libx264" else {})
        aus = None
        if audio_extra is not None:
            aus = out.add_stream("libopus" if path.suffix == ".webm" else "aac", rate=48000)
            aus.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts, vf.time_base = (pts_ms[i] if pts_ms else i), tb
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if aus is not None:
            end = (pts_ms[-1] / 1000 + 0.04) if pts_ms else n / float(rate)
            _encode_tone(out, aus, end + audio_extra, path.suffix == ".webm")
    return path


def _encode_tone(out, aus, seconds: float, packed: bool) -> None:
    import av

    count = int(48000 * seconds) // 960 * 960
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(count) / 48000)).astype(np.float32)[None]
    for s in range(0, count, 960):
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, s : s + 960]), format="flt" if packed else "fltp",
                                        layout="mono")
        af.sample_rate, af.pts = 48000, s
        out.mux(aus.encode(af))
    out.mux(aus.encode(None))


def _decoded(path: Path) -> tuple[int, int]:
    """(frames announced by probe, frames decoded)."""
    info = probe(path)
    return info.n_frames, sum(1 for _ in iter_frames(info))


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * fraction)])
    return dst


def _overwrite(src: Path, dst: Path, at: float, size: int = 2000, seed: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


# -- 1. damaged containers: the frames the container announces -----------------------------
@pytest.mark.parametrize("suffix,audio", [(".mkv", None), (".mkv", 0.5), (".webm", None), (".avi", None), (".avi", 0.5)])
def test_truncated_or_overwritten_file_announces_its_full_length(tmp_path, suffix, audio):
    """Cut at 50 % or 2000 random bytes at 50 %: fewer frames decode than probe announces
    (the caller's check then stops with exit 3); before, mkv/webm announced only what was left."""
    codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    full = _encode(tmp_path / f"full{suffix}", T, codec=codec, options={"deadline": "realtime"} if codec != "libx264" else None,
                   audio_extra=audio)
    assert _decoded(full) == (T, T)
    for damaged in (_cut(full, tmp_path / f"cut{suffix}", 0.5), _overwrite(full, tmp_path / f"rnd{suffix}", 0.5)):
        announced, decoded = _decoded(damaged)
        assert announced >= T - 1 and decoded < announced, (damaged.name, announced, decoded)


def test_avi_with_audio_is_not_flagged(tmp_path):
    """FFmpeg's AVI muxer puts an empty "dropped frame" chunk before the first video frame when
    audio is interleaved: the header counts it (nb_frames 41 for 40 frames), the demuxer skips it."""
    path = write_video(tmp_path / "a.avi", translating_video(T, H, W), audio=True)
    assert _decoded(path) == (T, T)


HEALTHY = [
    (".mkv", 25, "libx264", None), (".mkv", 30000 / 1001, "libx264", 0.7), (".mkv", 60, "ffv1", 0.7),
    (".webm", 24, "libvpx", None), (".webm", 30000 / 1001, "libvpx-vp9", 0.7),
    (".avi", 30000 / 1001, "libx264", None), (".avi", 25, "mpeg4", 0.7), (".avi", 12.5, "mjpeg", None),
    (".mov", 30000 / 1001, "libx264", 0.7), (".mov", 24, "mpeg4", None),
    (".mp4", 25, "libx264", 0.7), (".mp4", 60, "libx264", None),
]


@pytest.mark.parametrize("suffix,fps,codec,audio", HEALTHY)
def test_healthy_files_are_not_flagged(tmp_path, suffix, fps, codec, audio):
    """Every frame decodes and exactly as many are announced: B-frames (x264 medium), NTSC
    rates, audio longer than the video."""
    options = {"preset": "medium", "bframes": "3"} if codec == "libx264" else ({"bf": "2"} if codec == "mpeg4" else {})
    if codec.startswith("libvpx"):
        options = {"deadline": "realtime"}
    path = _encode(tmp_path / f"h{suffix}", 15, fps, codec, options, audio_extra=audio)
    assert _decoded(path) == (15, 15)


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mov", ".mp4"])
def test_variable_frame_rate_is_not_flagged_and_a_cut_one_is(tmp_path, suffix):
    pts = list(np.cumsum([0] + [40, 40, 120, 33, 67, 500] * 4)[:T // 2])
    codec = "libvpx" if suffix == ".webm" else "libx264"
    path = _encode(tmp_path / f"v{suffix}", len(pts), codec=codec, pts_ms=[int(p) for p in pts],
                   options={"deadline": "realtime"} if codec == "libvpx" else None, audio_extra=0.3)
    assert _decoded(path) == (len(pts), len(pts))
    if suffix in (".mkv", ".webm"):  # mp4/mov lose their index at the end: "moov atom not found"
        announced, decoded = _decoded(_cut(path, tmp_path / f"cut{suffix}", 0.5))
        assert decoded < announced


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_edit_list_trimming_the_start_is_not_flagged(tmp_path, suffix):
    """Frames before an edit list's start (a cut made without re-encoding) are decoded for
    reference but never shown: FFmpeg marks them discarded, they are not missing frames."""
    import av

    frames = translating_video(20, H, W)
    path = tmp_path / f"trimmed{suffix}"
    with av.open(str(path), "w", format=MUXERS[suffix]) as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt, vs.options = W, H, "yuv420p", {"preset": "medium"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i - 5  # the first 5 frames before time 0: the muxer writes an edit list
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    assert _decoded(path) == (15, 15)  # before: 20 announced, 15 decoded


def test_matroska_without_track_duration_uses_the_segment_duration(tmp_path, monkeypatch):
    """Matroska from writers without a DURATION tag: the Segment duration (the longest stream's
    end) is compared with every stream's last packet, so longer audio is no false alarm."""
    from tsam_cli.media import reader

    monkeypatch.setattr(reader, "_matroska_duration", lambda vs: None)
    full = _encode(tmp_path / "s.mkv", T, audio_extra=0.7)
    assert _decoded(full) == (T, T)
    announced, decoded = _decoded(_cut(full, tmp_path / "cut.mkv", 0.5))
    assert decoded < announced


def _cli(capfd, args) -> tuple[int, str]:
    from tsam_cli.cli.main import main

    capfd.readouterr()
    saved = logging.root.handlers[:]
    logging.root.handlers.clear()  # as in the CLI: warnings reach stderr
    try:
        code = main(args)
    finally:
        logging.root.handlers[:] = saved
    return code, capfd.readouterr().err


def test_truncated_mkv_exits_3_unless_allow_partial(tmp_path, capfd):
    full = _encode(tmp_path / "full.mkv", T)
    cut = _cut(full, tmp_path / "cut.mkv", 0.5)
    n_left = sum(1 for _ in iter_frames(probe(cut)))
    out = tmp_path / "o.mp4"
    code, err = _cli(capfd, ["inpaint", str(cut), "--box", "2,2,8,8", "-o", str(out), "-q"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 3 and len(lines) == 1, err
    assert f"announced {T} frames but only {n_left} could be decoded" in lines[0] and "--allow-partial" in lines[0]
    assert not out.exists()
    code, err = _cli(capfd, ["inpaint", str(cut), "--box", "2,2,8,8", "-o", str(out), "-q", "--allow-partial"])
    assert code == 0 and f"the output has {n_left} frames" in err
    assert probe(out).n_frames == n_left


def _write_concealed(path: Path, n: int = 20, bad: int = 10) -> Path:
    """An H.264 mkv whose packet ``bad`` has its second half scrambled: the container is intact
    and the decoder conceals the damage instead of failing."""
    import av

    frames = translating_video(n, H, W)
    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt, vs.options = W, H, "yuv420p", {"preset": "ultrafast", "crf": "10"}
        k = 0
        for i in range(n + 1):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(frames[i], format="rgb24") if i < n else None):
                if k == bad:
                    data = bytearray(bytes(pkt))
                    data[len(data) // 2 :] = bytes((b * 7 + 13) & 255 for b in data[len(data) // 2 :])
                    forged = av.Packet(bytes(data))
                    forged.pts, forged.dts, forged.time_base = pkt.pts, pkt.dts, pkt.time_base
                    forged.stream, forged.is_keyframe, pkt = vs, pkt.is_keyframe, forged
                out.mux(pkt)
                k += 1
    return path


def test_frames_decoded_with_errors_are_counted(tmp_path):
    info = probe(_write_concealed(tmp_path / "c.mkv"))
    assert sum(1 for _ in iter_frames(info)) == 20  # kept: later masks stay on their frames
    notes = [n for n in info.notes if "decoded with errors" in n]
    assert len(notes) == 1 and notes[0].startswith("1 frame of c.mkv") and "frame 10" in notes[0]


# -- 2. RGBA mask videos: the alpha rule of mask images ---------------------------------------


def _stream(spec: MaskSpec, n: int = 4, fps=None) -> tuple[list[np.ndarray], NullReporter]:
    rep = NullReporter()
    return list(MaskStream(spec, W, H, n, rep, fps=fps)), rep


@pytest.mark.parametrize("codec,pix", [("png", "rgba"), ("qtrle", "argb"), ("prores_ks", "yuva444p10le")])
@pytest.mark.parametrize("drawn", ["alpha only", "colour on transparent"])
def test_rgba_mask_video_uses_its_alpha(tmp_path, codec, pix, drawn):
    """Alpha-only (black colour, the region in alpha) and white colour everywhere with only the
    region opaque both give the region; before, "empty" and "covers every pixel"."""
    frames = np.zeros((4, H, W, 4), np.uint8)
    if drawn == "colour on transparent":
        frames[..., :3] = 255
    for t in range(4):
        frames[t, 10:20, 10 + t : 30 + t, 3] = 255
    got, _ = _stream(MaskSpec(write_rgba_video(tmp_path / "m.mov", frames, codec, pix), dilate=0))
    assert np.array_equal(np.stack(got), frames[..., 3] > 0)


# -- 3. numbered mask folders -----------------------------------------------------------------
def _box_masks(n: int) -> np.ndarray:
    m = np.zeros((n, H, W), np.uint8)
    for t in range(n):
        m[t, 10:20, 10 + t : 30 + t] = 255
    return m


def test_gap_in_mask_numbering_is_an_error(tmp_path):
    folder = write_pngs(tmp_path / "m", _box_masks(8))
    (folder / "00005.png").unlink()
    with pytest.raises(MaskError, match=r"no 00005\.png \(the mask of frame 5"):
        _stream(MaskSpec(folder, dilate=0), n=7)


def test_numbered_masks_from_one_and_unnumbered_names(tmp_path):
    m = _box_masks(4)
    got, _ = _stream(MaskSpec(write_pngs(tmp_path / "a", m, name="mask_{:d}.png"), dilate=0))
    assert np.array_equal(np.stack(got), m > 0)  # mask_0..mask_3: consecutive
    folder = tmp_path / "b"
    write_pngs(folder, m[:3], name="mask{:d}.png")
    (folder / "mask2.png").rename(folder / "mask3.png")  # 0, 1, 3: frame 2 has none
    write_pngs(folder, m[3:], name="mask4.png")
    with pytest.raises(MaskError, match=r"no mask2\.png \(the mask of frame 2"):
        _stream(MaskSpec(folder, dilate=0))
    names = tmp_path / "c"  # not one pattern around a number: natural order, as before
    for name, img in zip(["first.png", "second.png", "third.png", "zlast.png"], m, strict=True):
        write_pngs(names, [img], name=name)
    got, _ = _stream(MaskSpec(names, dilate=0))
    assert np.array_equal(np.stack(got), m > 0)


def test_two_masks_with_one_number_is_an_error(tmp_path):
    folder = write_pngs(tmp_path / "m", _box_masks(4), name="{:d}.png")
    write_pngs(folder, _box_masks(1), name="002.png")
    with pytest.raises(MaskError, match=r"two masks numbered alike"):
        _stream(MaskSpec(folder, dilate=0))


def test_gap_in_input_frame_numbering_is_a_note(tmp_path):
    folder = write_pngs(tmp_path / "f", translating_video(6, H, W))
    (folder / "00003.png").unlink()
    info = probe(folder)
    assert info.n_frames == 5 and any("00003.png is missing" in n for n in info.notes)
    assert probe(write_pngs(tmp_path / "ok", translating_video(3, H, W))).notes == []


# -- 4. NaN / inf in float images -------------------------------------------------------------
def _float_tiff(path: Path, shape=(H, W), channels: int = 1) -> Path:
    import cv2

    img = np.zeros((*shape, channels) if channels > 1 else shape, np.float32)
    img[10:20, 10:20] = 1.0
    img[3, 3], img[4, 4] = np.nan, np.inf
    assert cv2.imwrite(str(path), img)
    return path


def test_nan_in_float_images_is_refused(tmp_path):
    tif = _float_tiff(tmp_path / "m.tif")
    with pytest.raises(ImageReadError, match=r"2 pixels of 3072 NaN or infinite"):
        read_image(tif, keep_depth=True)
    with pytest.raises(MaskError, match=r"m\.tif.*2 pixels of 3072 NaN or infinite.*replace those values"):
        _stream(MaskSpec(tif, dilate=0))
    frames = tmp_path / "frames"
    frames.mkdir()
    _float_tiff(frames / "00000.tif", channels=3)
    with pytest.raises(InputError, match=r"00000\.tif"):
        probe(frames)


# -- 5. one-frame masks, plurals --------------------------------------------------------------
def test_one_frame_gif_or_video_mask_is_used_for_every_frame(tmp_path):
    import av

    img = np.zeros((H, W, 3), np.uint8)
    img[5:15, 5:25] = 255
    gif = tmp_path / "one.gif"
    with av.open(str(gif), "w", format="gif") as out:
        vs = out.add_stream("gif", rate=10)
        vs.width, vs.height, vs.pix_fmt = W, H, "rgb8"
        out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="rgb8")))
        out.mux(vs.encode(None))
    mkv = write_video(tmp_path / "one.mkv", img[None], codec="ffv1", pix_fmt="bgr0")
    for path in (gif, mkv):
        got, _ = _stream(MaskSpec(path, dilate=0), n=5)
        assert len(got) == 5 and all(np.array_equal(g, img[..., 0] > 0) for g in got), path


def test_animated_png_mask_is_read_frame_by_frame_and_animated_webp_refused(tmp_path):
    import av
    import cv2

    m = _box_masks(4)
    apng = tmp_path / "m.png"
    with av.open(str(apng), "w", format="apng") as out:
        vs = out.add_stream("apng", rate=10)
        vs.width, vs.height, vs.pix_fmt = W, H, "gray"
        for img in m:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="gray")))
        out.mux(vs.encode(None))
    got, _ = _stream(MaskSpec(apng, dilate=0))  # before: the first frame for every frame
    assert np.array_equal(np.stack(got), m > 0)
    if not hasattr(cv2, "imwriteanimation"):
        pytest.skip("this OpenCV writes no animated WebP")
    anim = cv2.Animation()
    anim.frames, anim.durations = [cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) for img in m], [100] * 4
    assert cv2.imwriteanimation(str(tmp_path / "m.webp"), anim)
    with pytest.raises(MaskError, match="animated WebP"):
        _stream(MaskSpec(tmp_path / "m.webp", dilate=0))


def test_counts_in_messages_use_singular(tmp_path):
    from tsam_cli.media.images import plural

    assert (plural(1, "frame"), plural(0, "frame"), plural(3, "frame")) == ("1 frame", "0 frames", "3 frames")
    folder = write_pngs(tmp_path / "m", _box_masks(1))
    with pytest.raises(MaskError, match=r"has 1 frame but the video has 3 frames"):
        _stream(MaskSpec(folder, dilate=0), n=3)


# -- 6. RGB-coded inputs have no colour matrix to lose ----------------------------------------
@pytest.mark.parametrize("source", ["png video", "png folder"])
def test_rgb_coded_input_to_mp4_has_no_colour_matrix_note(tmp_path, source):
    from tsam_cli.media import create_video

    frames = np.empty((4, H, W, 3), np.uint8)  # flat saturated colours: where BT.601 and BT.709 differ most
    frames[:, : H // 2, : W // 2], frames[:, : H // 2, W // 2 :] = (214, 101, 41), (40, 180, 90)
    frames[:, H // 2 :, : W // 2], frames[:, H // 2 :, W // 2 :] = (60, 70, 200), (230, 220, 40)
    if source == "png video":
        src = write_video(tmp_path / "p.mov", frames, codec="png", pix_fmt="rgb24")
    else:
        src = write_pngs(tmp_path / "p", frames)
    info = probe(src)
    out = tmp_path / "o.mp4"
    with create_video(out, W, H, info.fps, meta=info) as writer:
        for f in iter_frames(info):
            writer.write(f.rgb)
    assert not [n for n in writer.notes if "colour matrix" in n], writer.notes
    back = np.stack([f.rgb for f in iter_frames(probe(out))]).astype(int)
    assert np.abs(back - frames).mean() < 3  # converted with the matrix it is read back with


# -- 7. mask video at another frame rate --------------------------------------------------------
def test_mask_video_at_another_rate_is_warned_once(tmp_path):
    m = _box_masks(8)
    rgb = np.repeat(m[..., None], 3, axis=3)
    fast = write_video(tmp_path / "m50.mkv", rgb, fps=50, codec="ffv1", pix_fmt="bgr0")
    _, rep = _stream(MaskSpec(fast, dilate=0), n=8, fps=25)
    rate = [w for w in rep.warnings if "fps" in w]
    assert len(rate) == 1 and "50 fps" in rate[0] and "25 fps" in rate[0] and "frame index" in rate[0]
    same = write_video(tmp_path / "m25.mkv", rgb, fps=25.1, codec="ffv1", pix_fmt="bgr0")
    _, rep = _stream(MaskSpec(same, dilate=0), n=8, fps=25)  # 0.4 %: no warning
    assert not [w for w in rep.warnings if "fps" in w]


@pytest.mark.parametrize("command", [["mask", "static"], ["mask", "track", "--box", "20,10,16,16", "--net-steps", "0"],
                                     ["preview", "--box", "2,2,8,8"]])
def test_every_command_stops_on_a_truncated_input(tmp_path, capfd, command):
    """Not only inpaint: mask makers and preview read a cut file and stop instead of a short output."""
    cut = _cut(_encode(tmp_path / "full.mkv", T), tmp_path / "cut.mkv", 0.5)
    head, rest = (command[:2], command[2:]) if command[0] == "mask" else (command[:1], command[1:])
    code, err = _cli(capfd, [*head, str(cut), *rest, "-o", str(tmp_path / "o.mkv"), "-q"])
    assert code == 3 and "announced 40 frames" in err and "Traceback" not in err, err
    assert not (tmp_path / "o.mkv").exists()


def test_eval_stops_on_a_truncated_clip(tmp_path, capfd):
    root = tmp_path / "ds"
    root.mkdir()
    _cut(_encode(tmp_path / "full.mkv", T), root / "a.mkv", 0.5)
    _encode(root / "b.mkv", T)
    code, err = _cli(capfd, ["eval", "--dataset", "folder", "--root", str(root), "--metrics", "psnr", "--size", "64x48",
                             "--results", str(root), "-q"])
    assert code == 7 and "announced 40 frames" in err, err
