"""Reading videos and frame folders on PyAV (FFmpeg), streaming: one decoded frame in memory at a time.

Reading: any container/codec the bundled FFmpeg decodes (mp4, mov, mkv, webm, avi, ...) or
a folder of PNG/JPEG frames (sorted in natural order: ``2.png`` before ``10.png``).
Frames come out as ``(H, W, 3) uint8 RGB`` arrays with their presentation timestamp, so
variable-frame-rate timing survives a round trip. :func:`probe` also reads what the
output must carry over (rotation, sample aspect ratio, colour tags) or report as lost
(alpha, more than 8 bits). Writing lives in :mod:`.writer`, the rules for output paths
in :mod:`.output`.

FFmpeg's own log output is silenced (see :func:`_av`): a damaged input gives tsam's one
error line, with FFmpeg's reason inside it, and nothing else on stderr.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from tsam_cli.errors import InputError, UsageError
from tsam_cli.media.images import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_FOLDER_FPS = 25.0
#: "unspecified" in FFmpeg's AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace
#: (value 2) and AVColorRange (value 0), libavutil/pixfmt.h
COLOR_UNSPECIFIED = 2
RANGE_UNSPECIFIED = 0
#: AV_LOG_QUIET, libavutil/log.h: "print no output"
_AV_LOG_QUIET = -8
#: packets probe decodes at most to get the first frame (its rotation, colour tags, pixel
#: format): covers decoder delay (B-frame reordering, frame threads) with a wide margin,
#: and bounds the work on a stream that does not decode (iter_frames reports that)
_PEEK_PACKETS = 100


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order (hidden files ignored)."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


@dataclass
class VideoInfo:
    """What :func:`probe` learns about an input (demuxing it, decoding only its first frame).

    ``rotation`` is the **clockwise** angle in degrees (0, 90, 180 or 270) by which a player
    rotates the coded frame for display; a portrait phone clip stored as landscape has 90.
    Frames from :func:`iter_frames` are in coded (stored) orientation: a mask drawn on the
    displayed video must be rotated by ``-rotation`` to match them. ``display_matrix`` is
    the container's raw 3x3 matrix (FFmpeg's 9 int32, flips included), kept for the writer.
    Colour fields hold FFmpeg's enum values (``AVColorPrimaries``, ``AVColorTransferCharacteristic``,
    ``AVColorSpace``, ``AVColorRange``; 2 / 0 = unspecified). ``notes`` collects what
    reading changed (e.g. frames scaled to the first frame's size), one line each; the
    writer reports them with its own.
    """

    path: Path
    width: int
    height: int
    n_frames: int
    fps: Fraction
    is_folder: bool
    time_base: Fraction | None = None  # stream time base (None for frame folders)
    codec: str = ""
    has_audio: bool = False
    audio_codec: str = ""
    frame_files: list[Path] = field(default_factory=list, repr=False)
    rotation: int = 0
    display_matrix: tuple[int, ...] | None = None
    sample_aspect_ratio: Fraction | None = None  # pixel width / height; None = square or not tagged
    color_primaries: int = COLOR_UNSPECIFIED
    color_trc: int = COLOR_UNSPECIFIED
    colorspace: int = COLOR_UNSPECIFIED  # the YUV<->RGB matrix
    color_range: int = RANGE_UNSPECIFIED  # 1 = limited (tv), 2 = full (pc)
    pix_fmt: str = ""  # decoded pixel format, e.g. yuv420p10le
    bit_depth: int = 8  # bits per component of the source
    has_alpha: bool = False
    notes: list[str] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float:
        return self.n_frames / float(self.fps)


@dataclass
class Frame:
    """One decoded frame: ``rgb`` is ``(H, W, 3) uint8``; ``pts`` in ``time_base`` units."""

    rgb: np.ndarray
    pts: int | None
    time_base: Fraction | None


def _av():
    """PyAV, imported lazily (keeps ``tsam --help`` fast), with FFmpeg's logging off.

    ``set_level(None)`` installs PyAV's no-op log callback: nothing reaches stderr, and no
    FFmpeg thread has to take the GIL to log. (PyAV's Python callback takes the GIL from
    whatever thread logs; a slice-threaded decoder logging an error while the caller holds
    the GIL deadlocks - seen with damaged FFV1 here.) FFmpeg's own level is set to quiet
    too, in case some code restores FFmpeg's printing callback
    (``av.logging.restore_default_callback``), and the ``libav`` Python logger PyAV emits
    to (av/logging.py) is set above CRITICAL in case some code turns PyAV's callback on.
    :func:`_open_input` keeps FFmpeg's reason for the error message.
    """
    import av

    av.logging.set_level(None)
    av.logging.set_libav_level(_AV_LOG_QUIET)
    logging.getLogger("libav").setLevel(logging.CRITICAL + 1)
    return av


def _open_input(path: Path):
    """``av.open(path)``; when it fails, the exception carries FFmpeg's reason ("moov atom not found").

    PyAV's callback is on only while opening, and its records are captured on this
    thread (``av.logging.Capture``) instead of printed. Opening runs no codec threads:
    avformat_find_stream_info decodes with one thread (libavformat/demux.c), so no other
    thread logs through the callback meanwhile.
    """
    av = _av()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture():
            return av.open(str(path))
    finally:
        av.logging.set_level(None)


def _read_image(path: Path) -> np.ndarray:
    """A frame image as ``(H, W, 3) uint8 RGB``, oriented as a viewer shows it (EXIF), like masks."""
    return read_image(path, error=InputError)


def probe(path: str | os.PathLike, fps: float | None = None) -> VideoInfo:
    """Inspect a video file or frame folder; count its frames (by demuxing, not decoding).

    Raises :class:`InputError` for a missing path, something that is neither a regular
    file nor a folder (a FIFO, device or socket is never opened), an empty folder, a
    file FFmpeg cannot open, a file without a video stream, or zero frames.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode  # stat only: opening a FIFO would block
    except FileNotFoundError:
        raise InputError(f"input not found: {path}: check the path") from None
    except OSError as exc:
        raise InputError(f"cannot access input {path} ({exc.strerror}): check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        return _probe_folder(path, fps)
    if not stat.S_ISREG(mode):
        raise InputError(f"input {path} is not a regular file (a pipe, device or socket): save the video to a file first")
    if fps is not None:
        raise UsageError("--fps applies only to folders of frames: a video file keeps its own timing")
    return _probe_video(path)


def _probe_folder(path: Path, fps: float | None) -> VideoInfo:
    files = list_images(path)
    if not files:
        raise InputError(f"input folder {path} holds no PNG/JPEG frames: give a video file or a folder of images")
    first = _read_image(files[0])
    rate = Fraction(fps if fps else DEFAULT_FOLDER_FPS).limit_denominator(1001)
    info = VideoInfo(path, first.shape[1], first.shape[0], len(files), rate, True, frame_files=files)
    info.bit_depth, info.has_alpha = _image_depth(files[0])
    return info


def _image_depth(path: Path) -> tuple[int, bool]:
    """(bits per component, has alpha) of an image file as stored."""
    raw = read_image(path, keep_depth=True, keep_alpha=True, error=InputError)
    return raw.dtype.itemsize * 8, raw.shape[2] == 4


def _probe_video(path: Path) -> VideoInfo:
    av = _av()
    try:
        container = _open_input(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot open {path} as a video ({_short(exc)}): the file is corrupt or not a video") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream: give a video file or a folder of frames")
        vs = container.streams.video[0]
        cc = vs.codec_context
        rate = vs.average_rate or vs.guessed_rate or Fraction(DEFAULT_FOLDER_FPS)
        audio = container.streams.audio[0] if container.streams.audio else None
        try:
            n, first = _count_packets(container, vs)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} is corrupt ({_short(exc)}): re-export or repair the video") from None
        width, height = (first.width, first.height) if first is not None else (cc.width, cc.height)
        if n == 0 or not width or not height:
            raise InputError(f"{path} has no video frames: give a video with at least one frame")
        info = VideoInfo(
            path, width, height, n, Fraction(rate), False, vs.time_base, cc.name,
            audio is not None, audio.codec_context.name if audio is not None else "",
        )
        _read_picture_meta(info, vs, first)
        return info


def _count_packets(container, vs) -> tuple[int, object]:
    """(frames, first decoded frame or None): demuxes every packet, decodes until one frame.

    The count is the packets that hold data; when the container's index announces more
    frames than that (a truncated mp4 whose index survived), the announced number is
    returned so that the caller sees the shortfall after decoding.
    """
    av = _av()
    n = n_empty = 0
    first = None
    for packet in container.demux(vs):
        if not packet.size:  # PyAV's end-of-stream flush packet has no timestamps;
            n_empty += packet.dts is not None  # an AVI "dropped frame" placeholder has
            continue
        n += 1
        if first is None and n <= _PEEK_PACKETS:
            try:
                frames = vs.decode(packet)
            except av.error.FFmpegError:  # metadata only: iter_frames reports decode errors
                frames = []
            first = frames[0] if frames else None
    if first is None and n:
        try:
            frames = vs.decode(None)
            first = frames[0] if frames else None
        except av.error.FFmpegError:
            pass
    return max(n, (vs.frames or 0) - n_empty), first


def _read_picture_meta(info: VideoInfo, vs, first) -> None:
    """Rotation, sample aspect ratio, colour tags and pixel format into ``info``."""
    cc = vs.codec_context
    # av_guess_sample_aspect_ratio (libavformat/avformat.c) prefers the container's SAR
    sar = vs.sample_aspect_ratio or cc.sample_aspect_ratio
    info.sample_aspect_ratio = Fraction(sar) if sar and Fraction(sar) != 1 else None
    src = first if first is not None else cc
    info.color_primaries, info.color_trc = int(src.color_primaries), int(src.color_trc)
    info.colorspace, info.color_range = int(src.colorspace), int(src.color_range)
    fmt = first.format if first is not None else cc.format
    if fmt is not None:
        info.pix_fmt = fmt.name
        comps = list(fmt.components)
        info.bit_depth = max((c.bits for c in comps), default=8)
        info.has_alpha = any(c.is_alpha for c in comps)
    if first is not None:
        info.display_matrix = _display_matrix(first)
        info.rotation = display_rotation(info.display_matrix)


def _display_matrix(frame) -> tuple[int, ...] | None:
    """The frame's DISPLAYMATRIX side data (9 native-endian int32, libavutil/display.h)."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", "") == "DISPLAYMATRIX":
            raw = bytes(sd)
            if len(raw) == 36:
                return struct.unpack("=9i", raw)
    return None


def display_rotation(matrix: tuple[int, ...] | None) -> int:
    """Clockwise display rotation of a display matrix, snapped to 0/90/180/270.

    ``av_display_rotation_get`` (libavutil/display.c) returns the counter-clockwise angle
    ``-atan2(m[1]/s1, m[0]/s0)``; FFmpeg's CLI negates it (``get_rotation`` in
    fftools/cmdutils.c) and inserts ``transpose=clock`` for 90, so the clockwise angle a
    player applies is ``atan2(m[1]/s1, m[0]/s0)``.
    """
    if not matrix:
        return 0
    s0, s1 = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if s0 == 0 or s1 == 0:
        return 0
    degrees = math.degrees(math.atan2(matrix[1] / s1, matrix[0] / s0))
    return int(round(degrees / 90.0)) * 90 % 360


def _short(exc: BaseException) -> str:
    """One short line for an exception; FFmpeg errors get their reason from FFmpeg's log."""
    text = str(getattr(exc, "strerror", None) or "")  # FFmpegError: without errno and C function name
    log = getattr(exc, "log", None)  # (level, component, message) of FFmpeg's last error log
    if text and log and len(log) > 2 and str(log[2]).strip():
        text = f"{text}: {str(log[2]).strip()}"
    if not text:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def iter_frames(info: VideoInfo) -> Iterator[Frame]:
    """Decode frames one by one as ``(H, W, 3) uint8 RGB`` with timestamps.

    Frames of a folder must all have the first frame's size (else :class:`InputError`).
    In a video, frames whose size differs from the first frame's (a resolution change
    mid-stream, e.g. concatenated recordings) are scaled to the first frame's size and one
    line is added to ``info.notes``. A decoding error raises :class:`InputError`.
    """
    if info.is_folder:
        yield from _iter_folder(info)
        return
    av = _av()
    try:
        container = av.open(str(info.path))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot reopen {info.path} ({_short(exc)}): was it changed or removed?") from None
    with container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        step = max(1, round(1 / (float(info.fps) * float(vs.time_base))))  # one frame in time-base ticks
        last_pts, n, scaled = None, 0, {}
        try:
            for frame in container.decode(vs):
                rgb = _to_rgb(frame, info, scaled)
                pts = frame.pts
                if pts is None:  # some AVI/raw streams: derive from the previous frame
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                n += 1
                yield Frame(rgb, pts, vs.time_base)
        except av.error.FFmpegError as exc:
            raise InputError(
                f"decoding {info.path} failed after {n} frames ({_short(exc)}): "
                "the file is truncated or damaged - repair or re-export it"
            ) from None
        finally:
            if scaled:
                sizes = ", ".join(f"{w}x{h}" for w, h in scaled)
                info.notes.append(
                    f"{sum(scaled.values())} frames were {sizes} instead of the first frame's "
                    f"{info.width}x{info.height} (resolution change mid-stream): scaled to {info.width}x{info.height}"
                )


def _to_rgb(frame, info: VideoInfo, scaled: dict) -> np.ndarray:
    """The frame as RGB at the first frame's size; counts scaled frames per size in ``scaled``.

    The YUV->RGB matrix and range are the frame's own tags (PyAV's reformat defaults to
    them; untagged means BT.601 limited range): :class:`~.writer.VideoWriter` converts
    back with the same ones.
    """
    size = (frame.width, frame.height)
    if size == (info.width, info.height):
        return frame.to_ndarray(format="rgb24")
    scaled[size] = scaled.get(size, 0) + 1
    return frame.to_ndarray(format="rgb24", width=info.width, height=info.height)


def _iter_folder(info: VideoInfo) -> Iterator[Frame]:
    tb = Fraction(1) / info.fps
    for i, f in enumerate(info.frame_files):
        rgb = _read_image(f)
        if rgb.shape[:2] != (info.height, info.width):
            raise InputError(
                f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]} but the first frame is "
                f"{info.width}x{info.height}: all frames of a folder must have one size"
            )
        yield Frame(rgb, i, tb)
