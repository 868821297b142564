"""Writing videos and PNG frame folders on PyAV (FFmpeg), streamed and atomic.

:class:`VideoWriter`: the output kind follows the path and options

=====================  ==============================================  ==========
output                 codec                                           lossless
=====================  ==============================================  ==========
``*.mp4|m4v``          MP4: H.264 (libx264, ``crf``), yuv420p          no
``*.mov``              QuickTime: same codecs as MP4                   no
same + ``lossless``    H.264 RGB (libx264rgb, qp 0)                     yes
``*.mkv``              H.264, or FFV1 with ``lossless``                 FFV1: yes
folder (no suffix)     PNG frames ``00000.png`` ...                     yes
=====================  ==============================================  ==========

Odd width/height cannot be stored as yuv420p; such videos are written as yuv444p (H.264
High 4:4:4) at their exact size and the writer reports it through ``notes``.

Given the input's :class:`~tsam_cli.media.reader.VideoInfo` (``meta``), the output keeps its
display rotation (display matrix), sample aspect ratio and colour tags, and converts RGB
back to YUV with the input's matrix and range, the ones the reader decoded with. Every
audio and subtitle stream of ``audio_from`` is copied packet by packet when the output
container holds its codec; audio it cannot hold is re-encoded to AAC, anything else is
dropped. Timestamps that do not increase are repaired (see :class:`_Monotonic`). Each
such change is one line in ``notes``. Everything is written to a path given by
:class:`~tsam_cli.media.output.OutputTarget`, which swaps it in on success.
"""

from __future__ import annotations

import errno
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from tsam_cli.errors import OutputError
from tsam_cli.media.output import OutputTarget, describe_os_error
from tsam_cli.media.reader import COLOR_UNSPECIFIED, RANGE_UNSPECIFIED, VideoInfo, _av

#: output suffix -> FFmpeg muxer: .mov is QuickTime ("mov"), not MP4 (ISO/IEC 14496-14)
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: audio codecs copied into .mp4 (the MP4 registration authority's audio codecs that
#: players commonly decode, https://mp4ra.org/registered-types/codecs); other audio is
#: re-encoded to AAC even where FFmpeg's mp4 muxer would take it (e.g. ISO 23003-5 PCM)
_MP4_AUDIO_COPY = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
#: AAC rate used when the encoder does not take the source's; 48 kHz is in the encoder's
#: list (av.Codec("aac", "w").audio_rates, libavcodec/aacenctab.h) and is the video norm
_AAC_FALLBACK_RATE = 48000
#: AVColorSpace (libavutil/pixfmt.h) -> swscale matrix (SWS_CS_*, libswscale/swscale.h),
#: as names of av.video.reformatter.Colorspace; untagged (2) decodes as BT.601 in swscale
_SWS_MATRIX = {1: "itu709", 2: "itu601", 4: "fcc", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
#: AVCOL_SPC_RGB (libavutil/pixfmt.h): the tag for RGB-coded output (libx264rgb, FFV1 bgr0)
_AVCOL_SPC_RGB = 0
#: tags that describe the old file or its muxer rather than the content: not copied
_SKIP_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration", "bps",
              "number_of_frames", "number_of_bytes", "vendor_id"}


class _Monotonic:
    """Repairs timestamps of one stream so they strictly increase (what the muxers require).

    Rule, for a timestamp ``t`` (after the shift so far) not greater than the previous ``p``:
    less than one frame (``step``) back - a duplicate or jitter - it becomes ``p + 1`` tick
    and later timestamps are unchanged; a frame or more back - a discontinuity such as two
    recordings joined, or a wrap - it becomes ``p + step`` and every later timestamp is
    shifted by the same amount, so the second part keeps its own spacing.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.offset = 0
        self.repaired = 0

    def fix(self, ts: int, step: int) -> int:
        ts += self.offset
        if self.last is not None and ts <= self.last:
            self.repaired += 1
            if self.last - ts < step:
                ts = self.last + 1
            else:
                self.offset += self.last + step - ts
                ts = self.last + step
        self.last = ts
        return ts


@dataclass
class _Route:
    """Where the packets of one input stream go: copied, or decoded and re-encoded."""

    src: object  # input stream
    out: object  # output stream
    reencode: bool
    times: _Monotonic = field(default_factory=_Monotonic)


def _count(n: int, noun: str) -> str:
    """``"1 video timestamp was"`` / ``"3 video timestamps were"``."""
    return f"{n} {noun} was" if n == 1 else f"{n} {noun}s were"


def _copy_tags(src: dict, dst) -> None:
    """Copy metadata tags (language, title, creation_time ...) except muxer bookkeeping."""
    for key, value in dict(src).items():
        low = key.lower()
        if low in _SKIP_TAGS or low.startswith("_statistics") or low.startswith("bps-") or low.startswith("duration-"):
            continue
        try:
            dst[key] = value
        except (TypeError, ValueError):
            pass


def _muxer_accepts(fmt: str, stream) -> bool:
    """Ask FFmpeg's muxer itself: can ``fmt`` hold a copy of ``stream``? (header into memory)"""
    av = _av()
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe_out:
            probe_out.add_stream_from_template(stream)
            probe_out.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError, TypeError):
        return False


def _aac_opens(rate: int, layout: str) -> bool:
    """Does FFmpeg's AAC encoder open with this rate and channel layout?"""
    av = _av()
    try:
        ctx = av.CodecContext.create("aac", "w")
        ctx.sample_rate, ctx.layout, ctx.format = rate, layout, "fltp"
        ctx.time_base = Fraction(1, rate)
        ctx.open()
        return True
    except (av.error.FFmpegError, ValueError, TypeError):
        return False


def _aac_settings(cc) -> tuple[int, str] | None:
    """(rate, layout) for re-encoding ``cc``'s audio to AAC, or None when the encoder refuses all."""
    av = _av()
    rate = cc.sample_rate if cc.sample_rate in (av.Codec("aac", "w").audio_rates or ()) else _AAC_FALLBACK_RATE
    n = cc.layout.nb_channels if cc.layout is not None else 2
    named = cc.layout.name if cc.layout is not None and "channels" not in cc.layout.name else None
    # FFmpeg's default layouts for these channel counts (av_channel_layout_default)
    default = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(n)
    for layout in dict.fromkeys(x for x in (named, default, "stereo") if x):
        if _aac_opens(rate, layout):
            return rate, layout
    return None


class _Extras:
    """The input's audio and subtitle streams in the output, interleaved with the video.

    Each stream is copied when the output container holds its codec (for .mp4 audio only
    the codecs of ``_MP4_AUDIO_COPY``); audio that cannot be held is re-encoded to AAC
    (resampled to 48 kHz when the encoder does not take its rate); every other stream is
    dropped. Each re-encode or drop is one line in ``notes``.
    """

    def __init__(self, src, out, fmt: str, suffix: str, video_index: int) -> None:
        self.src, self.out, self.fmt, self.suffix = src, out, fmt, suffix
        self.notes: list[str] = []
        self.routes: dict[int, _Route] = {}
        self.skipped = 0  # damaged audio packets that could not be decoded
        for st in src.streams:
            if st.index != video_index:
                self._plan(st)
        kept = [r.src for r in self.routes.values()]
        self._packets = src.demux(kept) if kept else None  # demux([]) would read every stream
        self._pending = None

    def _plan(self, st) -> None:
        name = st.codec_context.name if st.codec_context is not None else ""
        what = f"{st.type} stream #{st.index}" + (f" ({name})" if name else "")
        if st.type == "data" and "timecode" in st.metadata:
            return  # kept as the video's "timecode" tag, from which the mov/mp4 muxers write a tmcd track
        if st.type not in ("audio", "subtitle"):
            self.notes.append(f"{what} dropped: tsam keeps one video stream plus audio and subtitle streams")
            return
        holds = not (self.fmt == "mp4" and st.type == "audio" and name not in _MP4_AUDIO_COPY)
        if holds and _muxer_accepts(self.fmt, st):
            route = _Route(st, self.out.add_stream_from_template(st), False)
        elif st.type == "audio":
            route = self._plan_aac(st, what)
        else:
            self.notes.append(f"{what} dropped: {self.suffix} cannot hold {name} subtitles - write .mkv to keep them")
            return
        if route is not None:
            _copy_tags(st.metadata, route.out.metadata)
            route.out.disposition = st.disposition
            self.routes[st.index] = route

    def _plan_aac(self, st, what: str) -> _Route | None:
        cc = st.codec_context
        settings = _aac_settings(cc)
        if settings is None:
            self.notes.append(f"{what} dropped: {self.suffix} cannot hold it and the AAC encoder refuses its layout")
            return None
        rate, layout = settings
        aout = self.out.add_stream("aac", rate=rate)
        aout.layout = layout
        changes = [f"{cc.sample_rate} -> {rate} Hz"] if rate != cc.sample_rate else []
        if cc.layout is not None and cc.layout.nb_channels != aout.layout.nb_channels:
            changes.append(f"{cc.layout.nb_channels} channels -> {layout}")
        extra = f" ({', '.join(changes)})" if changes else ""
        self.notes.append(f"{what} cannot be copied into {self.suffix}: re-encoded to AAC{extra}")
        return _Route(st, aout, True)

    def _next(self):
        """(packet, route, seconds) of the next packet to write, timestamps repaired; None at the end."""
        while True:
            pkt = next(self._packets, None)
            if pkt is None:
                return None
            route = self.routes.get(pkt.stream.index)
            if route is None or not pkt.size or (pkt.dts is None and not route.reencode):
                continue  # flush packets; a copy without dts is refused by the mp4 muxer
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            if ts is not None:
                delta = route.times.fix(ts, max(1, pkt.duration or 1)) - ts
                if delta:
                    pkt.dts = pkt.dts + delta if pkt.dts is not None else None
                    pkt.pts = pkt.pts + delta if pkt.pts is not None else None
            t = pkt.pts if pkt.pts is not None else pkt.dts
            return pkt, route, (float(t * pkt.time_base) if t is not None else None)

    def pump(self, until: float | None) -> None:
        """Write packets up to ``until`` seconds (everything, and flush encoders, when None)."""
        while self._packets is not None:
            item = self._pending if self._pending is not None else self._next()
            self._pending = None
            if item is None:
                self._packets = None
                self._flush()
                return
            pkt, route, t = item
            if until is not None and t is not None and t > until:
                self._pending = item
                return
            self._write(pkt, route)

    def _write(self, pkt, route: _Route) -> None:
        if not route.reencode:
            pkt.stream = route.out
            self.out.mux(pkt)
            return
        av = _av()
        try:
            frames = pkt.decode()
        except av.error.FFmpegError:  # a damaged audio packet: skip it, as players do
            self.skipped += 1
            return
        for frame in frames:
            self.out.mux(route.out.encode(frame))

    def _flush(self) -> None:
        av = _av()
        for route in self.routes.values():
            if route.reencode:
                try:
                    frames = route.src.decode(None)
                except av.error.FFmpegError:
                    frames = []
                for frame in frames:
                    self.out.mux(route.out.encode(frame))
                self.out.mux(route.out.encode(None))
        repaired = sum(r.times.repaired for r in self.routes.values())
        if repaired:
            self.notes.append(f"{_count(repaired, 'audio/subtitle timestamp')} not increasing (duplicates or a jump back): repaired")
        if self.skipped:
            self.notes.append(f"{_count(self.skipped, 'damaged audio packet')} could not be decoded: skipped")


class VideoWriter(ABC):
    """Streamed writer into a path it is given; :func:`open_writer` picks the kind
    (:class:`ContainerWriter` for a video file, :class:`FrameFolderWriter` for PNG frames).

    The path is the temporary of an :class:`~tsam_cli.media.output.OutputTarget` (an empty
    file or folder); the target swaps it in once the writer is closed. Use as a context
    manager; frames are ``(H, W, 3) uint8 RGB``. Leaving the block normally flushes the
    encoders and closes the container; leaving it with an exception only closes it.
    Write failures (full disk, read-only filesystem) raise :class:`OutputError` naming
    the cause.

    Args:
        path: where to write (a file, or a folder for PNG frames).
        suffix: container of the final output (``.mp4/.m4v`` MP4, ``.mov`` QuickTime, ``.mkv``).
        width, height: frame size (kept exactly, odd sizes included).
        fps: nominal frame rate; ``time_base`` + per-frame ``pts`` keep exact timing.
        audio_from: input file whose audio and subtitle streams (and container tags) are carried over.
        lossless: bit-exact RGB output (libx264rgb qp 0 or FFV1).
        crf: H.264 quality for lossy output (lower = better, 18 ~ visually lossless).
        meta: the input's :class:`VideoInfo`: rotation, sample aspect ratio and colour are
            kept; its ``notes`` (what reading changed) are reported with the writer's.

    ``notes``: one line per thing the output changed or dropped, for the user.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        audio_from: Path | None = None,
        lossless: bool = False,
        crf: int = 18,
        suffix: str = ".mp4",
        meta: VideoInfo | None = None,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = Fraction(fps).limit_denominator(100000)
        self.time_base = time_base
        self.audio_from = audio_from
        self.lossless = lossless
        self.crf = crf
        self.suffix = suffix.lower()
        self.meta = meta if meta is not None else VideoInfo(self.path, width, height, 0, self.fps, False)
        self._notes: list[str] = []
        self.n_written = 0
        self._out = self._ain = self._extras = self._reformatter = None
        self._times = _Monotonic()
        self._yuv: tuple[str, str, str] | None = None  # (pix_fmt, swscale matrix, range) for RGB -> YUV
        self._tags = (2, 2, 2, 0)  # primaries, transfer, matrix, range put on each frame
        self._source_notes()

    @property
    def notes(self) -> list[str]:
        """What reading and writing changed or dropped, one line each (reader's first)."""
        return [*self.meta.notes, *self._notes]

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> VideoWriter:
        try:
            self._open()
        except (OSError, _av().error.FFmpegError) as exc:
            self._abort()
            raise OutputError(f"cannot write {self.path.name}: {describe_os_error(exc)}") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._finish()
        except (OSError, _av().error.FFmpegError) as exc:
            self._abort()
            raise OutputError(f"finishing the output failed: {describe_os_error(exc)}") from None
        except BaseException:
            self._abort()
            raise

    def _source_notes(self) -> None:
        """One line for each property of the input the output cannot keep."""
        m = self.meta
        pix = f" ({m.pix_fmt})" if m.pix_fmt else ""
        if m.has_alpha:
            self._notes.append(f"the input has an alpha channel{pix}: tsam processes RGB, the output is opaque")
        if m.bit_depth > 8:
            self._notes.append(f"the input has {m.bit_depth}-bit samples{pix}: tsam processes 8-bit RGB, the output is 8-bit")

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Append one ``(H, W, 3) uint8 RGB`` frame; ``pts`` in the writer's ``time_base``."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be ({self.height}, {self.width}, 3) uint8, got {rgb.shape} {rgb.dtype}")
        self._write_frame(rgb, pts)
        self.n_written += 1

    def _finish(self) -> None:
        self._close()
        if self._times.repaired:
            self._notes.append(
                f"{_count(self._times.repaired, 'video timestamp')} not increasing (duplicates or a jump back): "
                "repaired - a duplicate is put 1 tick after the previous frame, a jump back continues one frame after it"
            )

    def _abort(self) -> None:
        """Close what is open, ignoring errors: the cause is already being raised."""
        for name in ("_out", "_ain"):
            obj = getattr(self, name, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # best effort while already failing
                    pass
                setattr(self, name, None)

    # -- what each kind of output does ----------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Create the container (or nothing, for a folder)."""

    @abstractmethod
    def _write_frame(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one checked ``(H, W, 3) uint8`` frame."""

    @abstractmethod
    def _close(self) -> None:
        """Flush encoders and close what ``_open`` opened."""


class ContainerWriter(VideoWriter):
    """A video file (mp4/m4v, QuickTime mov, Matroska mkv): H.264 or lossless RGB, the input's
    picture metadata, and its audio/subtitle streams interleaved."""

    def _open(self) -> None:
        self._open_container()

    def _open_container(self) -> None:
        av = _av()
        fmt = _MUXERS.get(self.suffix, "mp4")
        self._out = av.open(str(self.path), "w", format=fmt)
        odd = self.width % 2 or self.height % 2
        if self.lossless:
            codec, pix, opts = ("ffv1", "bgr0", {}) if fmt == "matroska" else ("libx264rgb", "rgb24", {"qp": "0", "preset": "veryfast"})
        else:
            codec, pix = "libx264", ("yuv444p" if odd else "yuv420p")
            opts = {"crf": str(self.crf), "preset": "veryfast"}
            if odd:
                self._notes.append(
                    f"odd size {self.width}x{self.height} kept by encoding H.264 4:4:4 (yuv444p); "
                    "some players only play 4:2:0 - use an even-sized input if that matters"
                )
        self._vs = self._out.add_stream(codec, rate=self.fps)
        self._vs.width, self._vs.height, self._vs.pix_fmt = self.width, self.height, pix
        self._vs.options = opts
        self._vs.codec_context.time_base = self.time_base or (1 / self.fps)
        self._apply_picture_meta(pix)
        self._setup_extras(fmt)

    def _apply_picture_meta(self, pix: str) -> None:
        """Rotation, sample aspect ratio and colour tags of ``meta`` on the video stream."""
        m, cc = self.meta, self._vs.codec_context
        if m.display_matrix:
            self._vs.set_display_matrix(list(m.display_matrix))
        if m.sample_aspect_ratio:
            cc.sample_aspect_ratio = m.sample_aspect_ratio
        matrix, rng = m.colorspace, m.color_range
        if pix.startswith("yuv") and matrix == _AVCOL_SPC_RGB:
            # an RGB-coded source (PNG/GIF frames in a video, RGB ProRes/FFV1) has no YUV
            # matrix to keep: written like an untagged source, BT.601 limited range, nothing dropped
            matrix, rng = COLOR_UNSPECIFIED, RANGE_UNSPECIFIED
        if pix.startswith("yuv"):
            sws = _SWS_MATRIX.get(matrix)
            if sws is None:
                self._notes.append(f"colour matrix {matrix} (FFmpeg AVColorSpace) cannot be encoded: written as BT.601, untagged")
                sws, matrix = "itu601", 2
            self._yuv = (pix, sws, "JPEG" if rng == 2 else "MPEG")  # 2 = AVCOL_RANGE_JPEG (full)
        else:
            matrix, rng = _AVCOL_SPC_RGB, 0
        self._tags = (m.color_primaries, m.color_trc, matrix, rng)
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = self._tags

    def _setup_extras(self, fmt: str) -> None:
        if self.audio_from is None:
            return
        av = _av()
        self._ain = av.open(str(self.audio_from))
        _copy_tags(self._ain.metadata, self._out.metadata)
        if self._ain.streams.video:
            _copy_tags(self._ain.streams.video[0].metadata, self._vs.metadata)
        timecode = next((s.metadata["timecode"] for s in self._ain.streams if "timecode" in s.metadata), None)
        if timecode:
            self._vs.metadata["timecode"] = timecode
        video_index = self._ain.streams.video[0].index if self._ain.streams.video else -1
        self._extras = _Extras(self._ain, self._out, fmt, self.suffix, video_index)
        self._notes.extend(self._extras.notes)
        self._extras.notes = []


    def _write_frame(self, rgb: np.ndarray, pts: int | None) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self._yuv is not None:  # the input's matrix and range: the ones the reader decoded with
            pix, matrix, rng = self._yuv
            if self._reformatter is None:  # one swscale context for the whole video
                self._reformatter = av.video.reformatter.VideoReformatter()
            frame = self._reformatter.reformat(frame, format=pix, dst_colorspace=matrix, dst_color_range=rng)
        frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = self._tags
        tb = self._vs.codec_context.time_base
        raw = self.n_written if pts is None or self.time_base is None else pts
        frame.pts = self._times.fix(raw, max(1, round(1 / (self.fps * tb))))
        frame.time_base = tb
        try:
            self._out.mux(self._vs.encode(frame))
            if self._extras is not None:
                self._extras.pump(float(frame.pts * tb))
        except (OSError, av.error.FFmpegError) as exc:  # FFmpegError carries errno/strerror too
            raise OutputError(f"writing the output failed: {describe_os_error(exc)}") from None

    def _close(self) -> None:
        self._out.mux(self._vs.encode(None))
        if self._extras is not None:
            self._extras.pump(None)
            self._notes.extend(self._extras.notes)
        self._out.close()
        self._out = None
        if self._ain is not None:
            self._ain.close()
            self._ain = None


class FrameFolderWriter(VideoWriter):
    """A folder of lossless PNG frames ``00000.png``, ``00001.png`` ... (no audio, no metadata:
    what is lost is said in ``notes``)."""

    def _open(self) -> None:
        m = self.meta
        if m.rotation:
            self._notes.append(f"PNG frames carry no rotation: they are stored as coded, a player rotates the input {m.rotation} deg clockwise")
        if self.audio_from is not None and m.has_audio:
            self._notes.append("a folder of PNG frames holds no audio: the input's audio and subtitle streams are not kept")
        if m.sample_aspect_ratio:
            self._notes.append(f"PNG frames carry no pixel aspect ratio: the input's {m.sample_aspect_ratio} is not kept")

    def _write_frame(self, rgb: np.ndarray, pts: int | None) -> None:
        import cv2

        target = self.path / f"{self.n_written:05d}.png"
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        try:
            if not ok:
                raise OSError(errno.EIO, "PNG encoding failed")
            with open(target, "wb") as fh:
                fh.write(data.tobytes())
        except OSError as exc:
            raise OutputError(f"cannot write frame {target.name}: {describe_os_error(exc)}") from None

    def _close(self) -> None:
        pass


def open_writer(path: Path, width: int, height: int, fps: Fraction, kind: str = "file", **options) -> VideoWriter:
    """The writer for ``kind`` (``"file"`` or ``"folder"``, as :class:`OutputTarget` says);
    ``options`` as :class:`VideoWriter` takes them."""
    cls = FrameFolderWriter if kind == "folder" else ContainerWriter
    return cls(path, width, height, fps, **options)


@contextmanager
def create_video(path: str | os.PathLike, width: int, height: int, fps: Fraction, *, overwrite: bool = False,
                 protected: tuple = (), **options) -> Iterator[VideoWriter]:
    """Write a video file or PNG folder at ``path`` safely: checked, locked, swapped in at the end.

    ``options`` go to :class:`VideoWriter` (``time_base``, ``audio_from``, ``lossless``, ``crf``).
    On any exception nothing is left at ``path`` (an existing output stays as it was).
    """
    path = Path(path)
    with OutputTarget(path, list(protected), overwrite) as target:
        with open_writer(target.tmp, width, height, fps, kind=target.kind, suffix=path.suffix, **options) as writer:
            yield writer
        target.commit()
