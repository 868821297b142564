"""Media metadata and damaged inputs through the whole pipeline: what the output keeps, repairs or reports.

Each test writes a real input with PyAV, runs ``inpaint`` (or the CLI) and reads the
OUTPUT back with PyAV: rotation, sample aspect ratio, colour tags and values, extra audio
and subtitle streams, timestamps, resolution changes, truncation, FFmpeg's log, FIFOs.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tsam_cli.core.pipeline import InpaintOptions, inpaint
from tsam_cli.errors import InputError
from tsam_cli.media import iter_frames, probe

W, H = 64, 48
BOX = (2, 2, 8, 8)
MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts"}
SRT = "1\n00:00:00,000 --> 00:00:00,300\nhello\n\n2\n00:00:00,400 --> 00:00:00,700\nworld\n\n"


def _rgb(t: int, w: int = W, h: int = H) -> np.ndarray:
    """A textured frame that changes with ``t`` (something for the encoder and the filler)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 4 + t * 9) % 256, (y * 5 + t * 3) % 256, ((x + y) * 3) % 256], -1)
    return img.astype(np.uint8)


def _patches(t: int, w: int = W, h: int = H) -> np.ndarray:
    """Flat saturated colour quadrants: where BT.601 and BT.709 differ most, compression least."""
    img = np.empty((h, w, 3), np.uint8)
    img[: h // 2, : w // 2], img[: h // 2, w // 2 :] = (214, 101, 41), (40, 180, 90)
    img[h // 2 :, : w // 2], img[h // 2 :, w // 2 :] = (60, 70, 200), (230, 220, 40)
    return img


def _encode_video(out, n: int = 8, w: int = W, h: int = H, setup=None, frame_fn=None, codec="libx264", pix="yuv420p",
                  image=_rgb):
    """Add a video stream to the open container ``out`` and encode ``n`` frames into it."""
    import av

    vs = out.add_stream(codec, rate=25)
    vs.width, vs.height, vs.pix_fmt = w, h, pix
    if codec == "libx264":
        vs.options = {"crf": "12", "preset": "ultrafast"}
    if setup is not None:
        setup(vs)
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(image(i, w, h), format="rgb24")
        frame = frame_fn(frame) if frame_fn is not None else frame
        frame.pts = i
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    return vs


def _write(path: Path, n: int = 8, setup=None, frame_fn=None, **kw) -> Path:
    import av

    with av.open(str(path), "w", format=MUXERS[path.suffix]) as out:
        _encode_video(out, n, setup=setup, frame_fn=frame_fn, **kw)
    return path


def _tone_stream(out, codec: str, rate: int, language: str):
    st = out.add_stream(codec, rate=rate)
    st.layout = "stereo"
    st.metadata["language"] = language
    return st


def _encode_tone(out, st, seconds: float = 0.32) -> None:
    """A stereo 440 Hz tone into the audio stream ``st``."""
    import av

    rate = st.codec_context.sample_rate
    size = st.codec_context.frame_size or 1024
    n = int(rate * seconds)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
    both = np.stack([tone, tone])
    for s in range(0, n, size):
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(both[:, s : s + size]), format="fltp", layout="stereo")
        af.sample_rate, af.pts = rate, s
        out.mux(st.encode(af))
    out.mux(st.encode(None))


def _write_av(path: Path, audio: list[tuple[str, int]], subtitles: bool = False, tmp: Path | None = None) -> Path:
    """Video, audio streams ``[(codec, rate), ...]`` tagged ger, eng, ... (+ French SRT subtitles from a .srt file)."""
    import av

    srt = None
    if subtitles:
        (tmp / "s.srt").write_text(SRT)
        srt = av.open(str(tmp / "s.srt"))
    with av.open(str(path), "w", format=MUXERS[path.suffix]) as out:
        vs = out.add_stream("libx264", rate=25)  # every stream before the first packet (the header)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        tones = [_tone_stream(out, codec, rate, ["ger", "eng", "spa"][k]) for k, (codec, rate) in enumerate(audio)]
        sub = out.add_stream_from_template(srt.streams[0]) if srt else None
        if sub is not None:
            sub.metadata["language"] = "fra"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(_rgb(i), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        for st in tones:
            _encode_tone(out, st)
        if srt is not None:
            for pkt in srt.demux(srt.streams[0]):
                if pkt.dts is not None:
                    pkt.stream = sub
                    out.mux(pkt)
    if srt is not None:
        srt.close()
    return path


def _run(inp: Path, out: Path) -> list[str]:
    """Inpaint a small box; returns the notes (warnings) of the run."""
    report = inpaint(inp, out, InpaintOptions(box=BOX, quiet=True))
    return report.notes


def _streams(path: Path) -> list[tuple[str, str, int | None, str | None]]:
    """(type, codec, sample rate, language) of every stream of ``path``."""
    import av

    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context else "", getattr(s.codec_context, "sample_rate", None),
                 s.metadata.get("language")) for s in c.streams]


# -- 1. rotation ------------------------------------------------------------------------
@pytest.mark.parametrize("pyav_ccw,clockwise", [(-90, 90), (90, 270), (180, 180), (0, 0)])
def test_probe_rotation_is_clockwise_display_degrees(tmp_path, pyav_ccw, clockwise):
    # PyAV's set_display_rotation takes counter-clockwise degrees (as VideoFrame.rotation reads)
    src = _write(tmp_path / "in.mp4", setup=lambda vs: vs.set_display_rotation(pyav_ccw) if pyav_ccw else None)
    assert probe(src).rotation == clockwise


class _SideData(dict):
    """A frame's side data as PyAV 18.1.1 gives it (iterating yields the types) or, with
    ``entries``, as PyAV up to 18.1.0 did (iterating yields the entries); both look up by name."""

    def __init__(self, items: dict, entries: bool) -> None:
        super().__init__(items)
        self.entries = entries

    def __iter__(self):
        return iter(self.values() if self.entries else self.keys())


@pytest.mark.parametrize("entries", [True, False])
def test_display_matrix_is_read_whatever_iterating_side_data_yields(entries):
    import struct
    from types import SimpleNamespace

    from tsam_cli.media.reader import _display_matrix

    matrix = (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # 90 degrees
    with_it = SimpleNamespace(side_data=_SideData({"DISPLAYMATRIX": struct.pack("=9i", *matrix)}, entries))
    assert _display_matrix(with_it) == matrix
    assert _display_matrix(SimpleNamespace(side_data=_SideData({}, entries))) is None


@pytest.mark.parametrize("in_suffix,out_suffix", [(".mp4", ".mp4"), (".mov", ".mov"), (".mkv", ".mkv"), (".mp4", ".mkv"), (".mkv", ".mov")])
def test_rotation_survives_inpaint(tmp_path, in_suffix, out_suffix):
    import av

    src = _write(tmp_path / f"in{in_suffix}", setup=lambda vs: vs.set_display_rotation(-90))  # phone portrait
    out = tmp_path / f"out{out_suffix}"
    _run(src, out)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation == -90  # PyAV: counter-clockwise
    assert probe(out).rotation == 90 == probe(src).rotation
    assert probe(out).display_matrix == probe(src).display_matrix


# -- 2. sample aspect ratio, colour tags, colour values -----------------------------------
def _tag_bt709(vs, full: bool = False):
    cc = vs.codec_context
    cc.sample_aspect_ratio = Fraction(2, 1)
    cc.color_primaries, cc.color_trc, cc.colorspace = 1, 1, 1  # BT.709 (libavutil/pixfmt.h)
    cc.color_range = 2 if full else 1  # AVCOL_RANGE_JPEG / MPEG


def _to_bt709(full: bool):
    def convert(frame):
        yuv = frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range="JPEG" if full else "MPEG")
        yuv.color_primaries, yuv.color_trc = 1, 1
        return yuv
    return convert


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_sar_and_colour_tags_survive(tmp_path, suffix):
    src = _write(tmp_path / f"in{suffix}", setup=_tag_bt709, frame_fn=_to_bt709(False))
    out = tmp_path / f"out{suffix}"
    _run(src, out)
    a, b = probe(src), probe(out)
    assert a.sample_aspect_ratio == b.sample_aspect_ratio == Fraction(2, 1)
    tags = lambda i: (i.color_primaries, i.color_trc, i.colorspace, i.color_range)
    assert tags(a) == tags(b) == (1, 1, 1, 1)


@pytest.mark.parametrize("full", [False, True])
def test_bt709_colours_do_not_shift(tmp_path, full):
    """RGB -> YUV in the writer uses the matrix/range the reader decoded with (BT.709 here, not BT.601)."""
    import av

    src = _write(tmp_path / "in.mkv", setup=lambda vs: _tag_bt709(vs, full), frame_fn=_to_bt709(full), image=_patches)
    out = tmp_path / "out.mkv"
    _run(src, out)
    info = probe(out)
    assert (info.colorspace, info.color_range) == (1, 2 if full else 1)
    a = np.stack([f.rgb for f in iter_frames(probe(src))]).astype(int)
    b = np.stack([f.rgb for f in iter_frames(info)]).astype(int)
    x, y, w, h = BOX
    outside = np.ones(a.shape[1:3], bool)
    outside[: y + h + 8, : x + w + 8] = False  # the fill and its dilation
    outside[H // 2 - 4 : H // 2 + 4], outside[:, W // 2 - 4 : W // 2 + 4] = False, False  # chroma edges
    diff = np.abs(a - b)[:, outside].mean(axis=(0, 1))
    with av.open(str(out)) as c:  # the same output decoded with the wrong (BT.601) matrix, for scale
        wrong = next(c.decode(video=0)).to_ndarray(format="rgb24", src_colorspace="itu601").astype(int)
    assert np.abs(wrong - b[0])[outside].mean(axis=0).max() > 6
    assert diff.max() < 1.5, diff


# -- 3. streams, alpha/bit depth, QuickTime ---------------------------------------------
def test_every_audio_and_subtitle_stream_copied_into_mkv(tmp_path):
    import av

    src = _write_av(tmp_path / "in.mkv", [("aac", 44100), ("pcm_s16le", 48000)], subtitles=True, tmp=tmp_path)
    out = tmp_path / "out.mkv"
    notes = _run(src, out)
    kinds = [s[:3] for s in _streams(out) if s[0] != "video"]
    assert sorted(kinds) == sorted(s[:3] for s in _streams(src) if s[0] != "video")
    assert {s[3] for s in _streams(out) if s[0] != "video"} == {"ger", "eng", "fra"}
    assert notes == []

    def packets(path, kind):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(getattr(c.streams, kind)[0]) if p.size]

    assert packets(out, "audio") == packets(src, "audio")  # stream copy
    assert packets(out, "subtitles") == [b"hello", b"world"]


@pytest.mark.parametrize("suffix,codecs,n_reencoded", [(".mp4", ["aac", "aac"], 1), (".mov", ["aac", "pcm_s16le"], 0)])
def test_streams_a_container_cannot_hold_are_reported(tmp_path, suffix, codecs, n_reencoded):
    """.mp4: PCM is re-encoded to AAC; .mov holds PCM; neither holds SRT subtitles: dropped, one note."""
    src = _write_av(tmp_path / "in.mkv", [("aac", 44100), ("pcm_s16le", 48000)], subtitles=True, tmp=tmp_path)
    out = tmp_path / f"out{suffix}"
    notes = _run(src, out)
    audio = [s for s in _streams(out) if s[0] == "audio"]
    assert [s[1] for s in audio] == codecs
    assert [s[3] for s in audio] == ["ger", "eng"]  # languages kept, re-encoded stream included
    assert not [s for s in _streams(out) if s[0] == "subtitle"]
    assert sum("subtitle stream #" in n and "dropped" in n for n in notes) == 1
    assert sum("re-encoded to AAC" in n for n in notes) == n_reencoded
    assert len(notes) == 1 + n_reencoded


@pytest.mark.parametrize("suffix,brand", [(".mov", b"qt  "), (".mp4", b"isom")])
def test_mov_output_is_quicktime(tmp_path, suffix, brand):
    src = _write(tmp_path / "in.mp4")
    out = tmp_path / f"out{suffix}"
    _run(src, out)
    assert out.read_bytes()[4:12] == b"ftyp" + brand


@pytest.mark.parametrize("pix,expect", [("yuva420p", "alpha channel"), ("yuv420p10le", "10-bit")])
def test_alpha_and_high_bit_depth_are_reported(tmp_path, pix, expect):
    src = _write(tmp_path / "in.mkv", codec="ffv1", pix=pix)
    info = probe(src)
    assert info.pix_fmt == pix
    notes = _run(src, tmp_path / "out.mp4")
    assert sum(expect in n for n in notes) == 1


# -- 4. audio the encoder cannot take as it is --------------------------------------------
@pytest.mark.parametrize("in_suffix", [".mkv", ".mov"])
def test_192khz_pcm_into_mp4_is_resampled_to_48k_aac(tmp_path, in_suffix):
    import av

    src = _write_av(tmp_path / f"in{in_suffix}", [("pcm_s16le", 192000)])
    out = tmp_path / "out.mp4"
    notes = _run(src, out)
    assert [s[:3] for s in _streams(out) if s[0] == "audio"] == [("audio", "aac", 48000)]
    assert sum("192000 -> 48000 Hz" in n for n in notes) == 1
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples == pytest.approx(0.32 * 48000, rel=0.1)  # the whole tone, at the new rate


# -- 5. duplicate timestamps --------------------------------------------------------------
def _write_forged_pts(path: Path, pts: list[int]) -> Path:
    """An FFV1 (intra-only) mkv whose packets carry the given pts/dts (1/1000 s), duplicates included."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("ffv1", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "bgr0"
        forged = iter(pts)
        for i in range(len(pts) + 1):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(_rgb(i), format="rgb24") if i < len(pts) else None):
                pkt.time_base = Fraction(1, 1000)
                pkt.pts = pkt.dts = next(forged)
                pkt.duration = 40
                out.mux(pkt)
    return path


def test_duplicate_timestamps_are_repaired_for_mp4(tmp_path):
    forged = [0, 40, 40, 80, 120, 120, 160, 200]
    src = _write_forged_pts(tmp_path / "dup.mkv", forged)
    assert [f.pts for f in iter_frames(probe(src))] == forged  # the input really has duplicates
    out = tmp_path / "out.mp4"
    notes = _run(src, out)
    times = [float(f.pts * f.time_base) for f in iter_frames(probe(out))]
    assert len(times) == len(forged)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] == pytest.approx(0.2, abs=0.01)  # duplicates move by 1 tick: later frames keep their time
    assert sum("2 video timestamps were not increasing" in n for n in notes) == 1


# -- 6. resolution change mid-stream ------------------------------------------------------
def test_resolution_change_is_scaled_to_the_first_size(tmp_path):
    a = _write(tmp_path / "a.ts", n=6)
    b = _write(tmp_path / "b.ts", n=5, w=80, h=60)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "out.mp4"
    notes = _run(joined, out)
    frames = list(iter_frames(probe(out)))
    assert len(frames) == 11 and all(f.rgb.shape == (H, W, 3) for f in frames)
    times = [float(f.pts * f.time_base) for f in frames]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))  # the second recording follows the first
    assert sum("80x60" in n and "scaled to 64x48" in n for n in notes) == 1
    assert sum("1 video timestamp was not increasing" in n for n in notes) == 1  # its clock restarted


# -- 7 + 8. truncated / corrupt inputs: exit 3, one line, nothing from FFmpeg -------------
@contextmanager
def _plain_logging():
    """Python logging as in the CLI: no handler on the root logger, so Python's last-resort
    handler prints warnings to stderr (pytest's capture handler would swallow them)."""
    saved = logging.root.handlers[:]
    logging.root.handlers.clear()
    try:
        yield
    finally:
        logging.root.handlers[:] = saved


def _cli(capfd, args) -> tuple[int, list[str]]:
    from tsam_cli.cli.main import main

    capfd.readouterr()
    with _plain_logging():
        code = main(args)
    err = capfd.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_mp4_exits_3_with_one_line(tmp_path, capfd, faststart):
    import av

    src = tmp_path / "full.mp4"
    with av.open(str(src), "w", format="mp4", options={"movflags": "faststart"} if faststart else {}) as out:
        _encode_video(out, n=30)
    cut = tmp_path / "cut.mp4"
    data = src.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code, lines = _cli(capfd, ["inpaint", str(cut), "--box", "2,2,8,8", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert code == 3
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert ("moov atom not found" in lines[0]) != faststart  # moov at the end: cut away
    assert not (tmp_path / "o.mp4").exists()


def test_corrupt_input_prints_only_tsams_line(tmp_path, capfd):
    import av

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4000))
    av.logging.restore_default_callback()  # FFmpeg's printing callback, as some library might leave it
    code, lines = _cli(capfd, ["inpaint", str(bad), "--box", "2,2,8,8", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert code == 3
    assert len(lines) == 1 and lines[0].startswith("error: cannot open"), lines
    av.logging.restore_default_callback()
    with _plain_logging(), pytest.raises(InputError):
        probe(bad)
    assert capfd.readouterr().err == ""


def _write_damaged(path: Path, n: int = 20, bad: tuple = (10, 11)) -> Path:
    """An FFV1 mkv whose packets ``bad`` have their second half scrambled (the container stays valid)."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("ffv1", rate=25)
        vs.width, vs.height, vs.pix_fmt = W, H, "bgr0"
        k = 0
        for i in range(n + 1):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(_rgb(i), format="rgb24") if i < n else None):
                if k in bad:
                    data = bytearray(bytes(pkt))
                    data[len(data) // 2 :] = bytes((b * 7 + 13) & 255 for b in data[len(data) // 2 :])
                    forged = av.Packet(bytes(data))
                    forged.pts, forged.dts, forged.time_base = pkt.pts, pkt.dts, pkt.time_base
                    forged.stream, forged.is_keyframe, pkt = vs, True, forged
                out.mux(pkt)
                k += 1
    return path


def test_decode_error_mid_stream_is_input_error_exit_3(tmp_path, capfd):
    bad = _write_damaged(tmp_path / "bad.mkv")
    assert probe(bad).n_frames == 20  # the container is intact: only decoding fails
    with pytest.raises(InputError, match="after 10 frames.*truncated or damaged"):
        list(iter_frames(probe(bad)))
    code, lines = _cli(capfd, ["inpaint", str(bad), "--box", "2,2,8,8", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert code == 3 and len(lines) == 1 and lines[0].startswith("error: decoding"), lines
    assert not (tmp_path / "o.mp4").exists()


# -- 9. non-regular inputs ----------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_input_is_refused_without_opening_it(tmp_path, monkeypatch):
    """A FIFO is refused from its stat alone: nothing opens it (an open would block forever)."""
    import builtins

    import av

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    keep = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # so that a mistaken open could not hang the test
    opened = []
    real_open, real_os_open, real_av_open = builtins.open, os.open, av.open

    def watch(real):
        def opener(path, *args, **kw):
            if str(path) == str(fifo):
                opened.append(real.__name__)
            return real(path, *args, **kw)
        return opener

    monkeypatch.setattr(builtins, "open", watch(real_open))
    monkeypatch.setattr(os, "open", watch(real_os_open))
    monkeypatch.setattr(av, "open", watch(real_av_open))
    try:
        with pytest.raises(InputError, match="is not a regular file"):
            probe(fifo)
    finally:
        monkeypatch.undo()
        os.close(keep)
    assert opened == []


def test_box_is_given_in_display_orientation_end_to_end(tmp_path):
    """Phone video (coded landscape, shown portrait): --box x,y,w,h counts what the user sees."""
    src = _write(tmp_path / "in.mp4", setup=lambda vs: vs.set_display_rotation(-90))  # 90 deg clockwise
    info = probe(src)
    assert info.rotation == 90
    out = tmp_path / "out.mkv"
    inpaint(src, out, InpaintOptions(box="0,0,10,6", dilate=0, lossless=True, quiet=True))
    before = np.stack([f.rgb for f in iter_frames(info)]).astype(int)
    after = np.stack([f.rgb for f in iter_frames(probe(out))]).astype(int)
    changed = np.abs(after - before).max(axis=(0, 3)) > 0
    expect = np.zeros_like(changed)
    expect[info.height - 10 :, 0:6] = True  # display top-left 10x6 = coded bottom-left 6 wide, 10 high
    assert changed.any() and not (changed & ~expect).any()
