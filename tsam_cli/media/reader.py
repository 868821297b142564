"""Reading videos and frame folders on PyAV (FFmpeg), streaming: one decoded frame in memory at a time.

Reading: any container/codec the bundled FFmpeg decodes (mp4, mov, mkv, webm, avi, ...) or
a folder of PNG/JPEG frames (sorted in natural order: ``2.png`` before ``10.png``; a number
skipped in their names is noted). :func:`probe` counts the frames the container announces
(see :func:`_expected_frames`), so that a caller seeing fewer decoded frames knows the file
is truncated or damaged.
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
from tsam_cli.media.images import plural, read_image
from tsam_cli.options import check_fps

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
#: a video whose packets end more than this many frames before the end its container
#: announces is truncated or damaged; healthy files end exactly there (the muxer wrote the
#: announced end from the same packets), so the margin only absorbs rounding
_END_TOLERANCE_FRAMES = 1.5


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Numbering:
    """Files whose names are one pattern around a number (``00005.png``, ``mask_5.png``).

    ``numbers[i]`` is the number of ``files[i]`` (natural order, so ascending); ``step`` the
    smallest difference between neighbours (1 for consecutive frames).
    """

    files: list[Path]
    numbers: list[int]
    step: int
    prefix: str
    tail: str
    width: int  # digits when every number has the same count of them (zero-padded), else 0

    def name(self, number: int, like: Path) -> str:
        """The file name the number would have (the suffix of ``like``)."""
        digits = str(number).zfill(self.width) if self.width else str(number)
        return f"{self.prefix}{digits}{self.tail}{like.suffix}"

    def duplicate(self) -> tuple[Path, Path] | None:
        """Two files with the same number (``5.png`` and ``005.png``), or None."""
        for a, b, na, nb in zip(self.files, self.files[1:], self.numbers, self.numbers[1:], strict=False):
            if na == nb:
                return a, b
        return None

    def gap(self) -> int | None:
        """The first number missing from the sequence first, first + step, ..., or None."""
        for na, nb in zip(self.numbers, self.numbers[1:], strict=False):
            if nb - na > self.step:
                return na + self.step
        return None


def numbering(files: list[Path]) -> Numbering | None:
    """The :class:`Numbering` of ``files`` (in natural order) when every stem is the same
    text around its last run of digits, else None (fewer than 2 files: None)."""
    parts = [re.fullmatch(r"(.*?)(\d+)(\D*)", f.stem) for f in files]
    if len(files) < 2 or not all(parts):
        return None
    prefix, tail = parts[0][1].lower(), parts[0][3].lower()
    if any(m[1].lower() != prefix or m[3].lower() != tail for m in parts):
        return None
    numbers = [int(m[2]) for m in parts]
    steps = [b - a for a, b in zip(numbers, numbers[1:], strict=False) if b > a]
    widths = {len(m[2]) for m in parts}
    return Numbering(list(files), numbers, min(steps, default=1), parts[0][1], parts[0][3],
                     widths.pop() if len(widths) == 1 else 0)


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
    """One decoded frame: ``rgb`` is ``(H, W, 3) uint8`` (``(H, W, 4)`` RGBA when
    :func:`iter_frames` was asked for alpha); ``pts`` in ``time_base`` units."""

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
    check_fps(fps)  # every command's --fps, one rule: finite, 0.01-1000
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
    num = numbering(files)
    missing = num.gap() if num is not None else None
    if missing is not None:  # frames stay in natural order; a skipped number is a lost frame, said once
        info.notes.append(
            f"the frames of {path.name} skip a number ({num.name(missing, files[0])} is missing): frames are "
            "taken in order, so the video jumps there - add the missing frame if one was lost"
        )
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
        indexed = _index_count(vs)  # before demuxing: FFmpeg adds entries while reading
        matroska_all = "matroska" in _format_names(container) and _matroska_duration(vs) is None
        try:
            scan = _scan_packets(container, vs, all_streams=matroska_all)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} is corrupt ({_short(exc)}): re-export or repair the video") from None
        n, first = _expected_frames(container, vs, scan, indexed, Fraction(rate)), scan.first
        width, height = (first.width, first.height) if first is not None else (cc.width, cc.height)
        if n == 0 or not width or not height:
            raise InputError(f"{path} has no video frames: give a video with at least one frame")
        info = VideoInfo(
            path, width, height, n, Fraction(rate), False, vs.time_base, cc.name,
            audio is not None, audio.codec_context.name if audio is not None else "",
        )
        _read_picture_meta(info, vs, first)
        return info


@dataclass
class _Scan:
    """What demuxing the whole file saw: video packets holding data, AVI/placeholder packets
    without data, the first decoded frame, and per stream the latest packet end (its
    timestamp plus duration, in ticks of its time base: integers while demuxing)."""

    video: int  # index of the video stream
    packets: int = 0
    empty: int = 0
    first: object = None
    ends: dict = field(default_factory=dict)  # stream index -> (latest end in ticks, time base)

    def add_end(self, packet, use_dts: bool) -> None:
        """Note where ``packet`` ends. AVI stores no presentation times: its demuxer numbers
        chunks in decode order (dts) and the pts FFmpeg guesses can run a frame late, so AVI
        is measured on dts."""
        ts = packet.dts if use_dts else packet.pts
        ts = ts if ts is not None else (packet.pts if use_dts else packet.dts)
        if ts is None or packet.time_base is None:
            return
        ticks = ts + (packet.duration or 0)
        last = self.ends.get(packet.stream.index)
        if last is None or ticks > last[0]:
            self.ends[packet.stream.index] = (ticks, packet.time_base)

    def end(self, every_stream: bool = False) -> Fraction | None:
        """Seconds at which the video's packets (or those of every stream demuxed) end."""
        times = [t * Fraction(tb) for i, (t, tb) in self.ends.items() if every_stream or i == self.video]
        return max(times, default=None)


def _scan_packets(container, vs, all_streams: bool) -> _Scan:
    """Demux every packet (of every stream when ``all_streams``), decoding until one frame."""
    av = _av()
    scan = _Scan(vs.index)
    use_dts = "avi" in _format_names(container)
    for packet in container.demux(*(container.streams if all_streams else [vs])):
        if not packet.size:  # PyAV's end-of-stream flush packet has no timestamps;
            scan.empty += packet.stream is vs and packet.dts is not None  # an AVI "dropped frame" has
            continue
        scan.add_end(packet, use_dts)
        if packet.stream is not vs or packet.is_discard:  # before an edit list's start: decoded, never shown
            continue
        scan.packets += 1
        if scan.first is None and scan.packets <= _PEEK_PACKETS:
            try:
                frames = vs.decode(packet)
            except av.error.FFmpegError:  # metadata only: iter_frames reports decode errors
                frames = []
            scan.first = frames[0] if frames else None
    if scan.first is None and scan.packets:
        try:
            frames = vs.decode(None)
            scan.first = frames[0] if frames else None
        except av.error.FFmpegError:
            pass
    return scan


def _index_count(vs) -> int:
    """Entries of the stream's index that hold data and are shown (not before an MP4 edit
    list's start, which FFmpeg marks discarded); 0 without an index."""
    return sum(1 for e in vs.index_entries if e.size and not e.is_discard)


def _format_names(container) -> set[str]:
    """FFmpeg's names of the demuxer, e.g. ``{"matroska", "webm"}`` or ``{"mov", "mp4", ...}``."""
    return set(str(container.format.name or "").split(","))


def _matroska_duration(vs) -> Fraction | None:
    """The video track's ``DURATION`` tag (``HH:MM:SS.fffffffff``, written by FFmpeg and
    mkvmerge) in seconds, or None."""
    text = next((str(v) for k, v in vs.metadata.items() if k.upper() == "DURATION"), "")
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", text)
    if not m:
        return None
    return int(m[1]) * 3600 + int(m[2]) * 60 + Fraction(m[3])


def _expected_frames(container, vs, scan: _Scan, indexed: int, rate: Fraction) -> int:
    """Frames the container announces, never fewer than the packets read.

    Each container says it its own way; a shortfall means a truncated or damaged file,
    which the caller sees when fewer frames decode than this number:

    * MP4/MOV: the sample table (the index; it survives a cut when it is at the start),
      less the samples an edit list cuts off at the start (decoded, never shown).
    * AVI: the index entries (read before demuxing; FFmpeg leaves out the empty "dropped
      frame" chunks, which ``nb_frames`` counts), and the header's length in chunks
      (``nb_frames``, empty ones included) against the last packet's end: the ``idx1``
      index is at the end, so a cut file loses it and FFmpeg indexes only what is left.
    * Matroska/WebM: the track's ``DURATION`` tag, or else the Segment duration in the
      header (the end of the longest stream: compared with every stream's last packet),
      against the last packet's end.
    * other containers: ``nb_frames`` where they announce it.
    """
    names = _format_names(container)
    announced, end, seen = vs.frames - scan.empty, None, scan.end()
    if "mov" in names:
        announced = indexed
    elif "avi" in names:
        announced = indexed
        if vs.frames and vs.time_base:  # one chunk per tick of the stream's time base
            end = ((vs.start_time or 0) + vs.frames) * vs.time_base
    elif "matroska" in names:
        announced, end = 0, _matroska_duration(vs)
        if end is None and container.duration:
            end, seen = Fraction(container.duration, 1_000_000), scan.end(every_stream=True)
    n = max(scan.packets, announced or 0)
    if end is not None and seen is not None and rate > 0:
        missing = (end - seen) * rate  # in frames; VFR: an estimate, the detection holds
        if missing > _END_TOLERANCE_FRAMES:
            n = max(n, scan.packets + round(missing))
    return n


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
    """The frame's DISPLAYMATRIX side data (9 native-endian int32, libavutil/display.h).

    Looked up by its type's name (checked on PyAV 18.1.0 and 18.1.1): iterating ``side_data``
    gave the entries up to 18.1.0 and gives their types (a mapping's keys) from 18.1.1."""
    try:
        raw = bytes(frame.side_data["DISPLAYMATRIX"])
    except KeyError:  # no such side data on this frame
        return None
    return struct.unpack("=9i", raw) if len(raw) == 36 else None


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


def check_complete(info: VideoInfo, n_done: int, allow_partial: bool = False, reporter=None,
                   error: type[Exception] = InputError) -> None:
    """Fewer frames decoded (``n_done``) than ``info`` announced: a truncated or damaged input.
    ``error`` (exit 3 for inputs, a DatasetError for a dataset) unless ``allow_partial``, then a
    warning through ``reporter``."""
    if n_done >= info.n_frames:
        return
    msg = f"{info.path} announced {plural(info.n_frames, 'frame')} but only {n_done} could be decoded"
    if not allow_partial:
        raise error(f"{msg}: the file is truncated or damaged - repair it, or pass --allow-partial to keep the "
                    f"{plural(n_done, 'frame')}" if error is InputError else f"{msg}: the file is truncated or damaged")
    if reporter is not None:
        reporter.warn(f"{msg}; --allow-partial: the output has {plural(n_done, 'frame')}")


def complete_frames(info: VideoInfo, *, allow_partial: bool = False, reporter=None,
                    error: type[Exception] = InputError) -> Iterator[Frame]:
    """:func:`iter_frames`, then :func:`check_complete` once the frames run out (a consumer
    that stops early checks nothing)."""
    n = 0
    for frame in iter_frames(info):
        n += 1
        yield frame
    check_complete(info, n, allow_partial, reporter, error)


def iter_frames(info: VideoInfo, alpha: bool = False) -> Iterator[Frame]:
    """Decode frames one by one as ``(H, W, 3) uint8 RGB`` with timestamps.

    With ``alpha`` and a source that has an alpha channel (``info.has_alpha``: RGBA PNG
    frames, png/qtrle/ProRes 4444 video), frames are ``(H, W, 4) uint8 RGBA`` instead.
    Frames of a folder must all have the first frame's size (else :class:`InputError`).
    In a video, frames whose size differs from the first frame's (a resolution change
    mid-stream, e.g. concatenated recordings) are scaled to the first frame's size, and
    frames the decoder flags as damaged (errors concealed) are counted; each adds one line
    to ``info.notes``. A decoding error raises :class:`InputError`. Frames the decoder
    drops are not raised here: the caller compares the count with ``info.n_frames``.
    """
    if info.is_folder:
        yield from _iter_folder(info, alpha)
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
        fmt = "rgba" if alpha and info.has_alpha else "rgb24"
        last_pts, n, scaled, damaged = None, 0, {}, []
        try:
            for frame in container.decode(vs):
                rgb = _to_rgb(frame, info, scaled, fmt)
                if frame.is_corrupt:
                    damaged.append(n)
                pts = frame.pts
                if pts is None:  # some AVI/raw streams: derive from the previous frame
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                n += 1
                yield Frame(rgb, pts, vs.time_base)
        except av.error.FFmpegError as exc:
            raise InputError(
                f"decoding {info.path} failed after {plural(n, 'frame')} ({_short(exc)}): "
                "the file is truncated or damaged - repair or re-export it"
            ) from None
        finally:
            _reading_notes(info, scaled, damaged)


def _reading_notes(info: VideoInfo, scaled: dict, damaged: list[int]) -> None:
    """One line in ``info.notes`` for frames scaled to the first frame's size, one for damaged frames."""
    if scaled:
        sizes, k = ", ".join(f"{w}x{h}" for w, h in scaled), sum(scaled.values())
        info.notes.append(
            f"{plural(k, 'frame')} {'was' if k == 1 else 'were'} {sizes} instead of the first frame's "
            f"{info.width}x{info.height} (resolution change mid-stream): scaled to {info.width}x{info.height}"
        )
    if damaged:
        info.notes.append(
            f"{plural(len(damaged), 'frame')} of {info.path.name} decoded with errors (damaged data, e.g. frame "
            f"{damaged[0]}): the decoder filled in what it could - check those frames, or repair the input"
        )


def _to_rgb(frame, info: VideoInfo, scaled: dict, fmt: str = "rgb24") -> np.ndarray:
    """The frame as ``fmt`` (``rgb24`` or ``rgba``) at the first frame's size; counts scaled
    frames per size in ``scaled``.

    The YUV->RGB matrix and range are the frame's own tags (PyAV's reformat defaults to
    them; untagged means BT.601 limited range): :class:`~.writer.VideoWriter` converts
    back with the same ones.
    """
    size = (frame.width, frame.height)
    if size == (info.width, info.height):
        return frame.to_ndarray(format=fmt)
    scaled[size] = scaled.get(size, 0) + 1
    return frame.to_ndarray(format=fmt, width=info.width, height=info.height)


def _iter_folder(info: VideoInfo, alpha: bool = False) -> Iterator[Frame]:
    tb = Fraction(1) / info.fps
    for i, f in enumerate(info.frame_files):
        rgb = read_image(f, keep_alpha=True, error=InputError) if alpha else _read_image(f)
        if rgb.shape[:2] != (info.height, info.width):
            raise InputError(
                f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]} but the first frame is "
                f"{info.width}x{info.height}: all frames of a folder must have one size"
            )
        yield Frame(rgb, i, tb)
