"""Video and frame-folder I/O on PyAV (FFmpeg), streaming: one decoded frame in memory at a time.

Reading: any container/codec the bundled FFmpeg decodes (mp4, mov, mkv, webm, avi, ...) or
a folder of PNG/JPEG frames (sorted in natural order: ``2.png`` before ``10.png``).
Frames come out as ``(H, W, 3) uint8 RGB`` arrays with their presentation timestamp, so
variable-frame-rate timing survives a round trip.

Writing (:class:`VideoWriter`): the output kind follows the path and options

=====================  ==============================================  ==========
output                 codec                                           lossless
=====================  ==============================================  ==========
``*.mp4|mov|m4v``      H.264 (libx264, ``crf``), yuv420p               no
same + ``lossless``    H.264 RGB (libx264rgb, qp 0)                     yes
``*.mkv``              H.264, or FFV1 with ``lossless``                 FFV1: yes
folder (no suffix)     PNG frames ``00000.png`` ...                     yes
=====================  ==============================================  ==========

Odd width/height cannot be stored as yuv420p; such videos are written as yuv444p (H.264
High 4:4:4) at their exact size and the writer reports it through ``notes``. Audio is
copied packet by packet (no re-encode) when the output container accepts the codec,
otherwise re-encoded to AAC (also reported in ``notes``). Everything is written to a
hidden temporary file next to the target and renamed on success: a failed or interrupted
run leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, OutputError, UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_OUT_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv"}
#: audio codecs the mp4/mov muxer takes as a stream copy; anything else is re-encoded to AAC
_MP4_AUDIO_COPY = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
DEFAULT_FOLDER_FPS = 25.0


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
    """What :func:`probe` learns about an input without decoding it."""

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
    import av  # imported lazily: keeps ``tsam --help`` fast

    av.logging.set_level(av.logging.ERROR)
    return av


def _read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}: the file is not a readable PNG/JPEG image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def probe(path: str | os.PathLike, fps: float | None = None) -> VideoInfo:
    """Inspect a video file or frame folder; count its frames (by demuxing, not decoding).

    Raises :class:`InputError` for a missing path, an empty folder, a file FFmpeg cannot
    open, a file without a video stream, or zero frames.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}: check the path")
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise InputError(
                f"input folder {path} holds no PNG/JPEG frames: give a video file or a folder of images"
            )
        first = _read_image(files[0])
        rate = Fraction(fps if fps else DEFAULT_FOLDER_FPS).limit_denominator(1001)
        return VideoInfo(path, first.shape[1], first.shape[0], len(files), rate, True, frame_files=files)
    if fps is not None:
        raise UsageError("--fps applies only to folders of frames: a video file keeps its own timing")
    av = _av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot open {path} as a video ({_short(exc)}): the file is corrupt or not a video") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream: give a video file or a folder of frames")
        vs = container.streams.video[0]
        width, height = vs.codec_context.width, vs.codec_context.height
        rate = vs.average_rate or vs.guessed_rate or Fraction(DEFAULT_FOLDER_FPS)
        audio = container.streams.audio[0] if container.streams.audio else None
        n = 0
        try:
            for packet in container.demux(vs):
                if packet.size:
                    n += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{path} is corrupt ({_short(exc)}): re-export or repair the video") from None
        if n == 0 or not width or not height:
            raise InputError(f"{path} has no video frames: give a video with at least one frame")
        return VideoInfo(
            path, width, height, n, Fraction(rate), False, vs.time_base, vs.codec_context.name,
            audio is not None, audio.codec_context.name if audio is not None else "",
        )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def iter_frames(info: VideoInfo) -> Iterator[Frame]:
    """Decode frames one by one as ``(H, W, 3) uint8 RGB`` with timestamps.

    Frames of a folder must all have the first frame's size (else :class:`InputError`).
    """
    if info.is_folder:
        tb = Fraction(1) / info.fps
        for i, f in enumerate(info.frame_files):
            rgb = _read_image(f)
            if rgb.shape[:2] != (info.height, info.width):
                raise InputError(
                    f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]} but the first frame is "
                    f"{info.width}x{info.height}: all frames of a folder must have one size"
                )
            yield Frame(rgb, i, tb)
        return
    av = _av()
    with av.open(str(info.path)) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        last_pts = None
        try:
            for frame in container.decode(vs):
                rgb = frame.to_ndarray(format="rgb24")
                pts = frame.pts
                if pts is None:  # some AVI/raw streams: derive from the previous frame
                    step = int(round(1 / (float(info.fps) * float(vs.time_base))))
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                yield Frame(rgb, pts, vs.time_base)
        except av.error.FFmpegError as exc:
            raise InputError(f"decoding {info.path} failed ({_short(exc)}): the video is corrupt") from None


# ----------------------------------------------------------------------------------------
# output


def check_output_path(inp: Path, out: Path, overwrite: bool) -> None:
    """Refuse outputs that would destroy data or cannot be written. Raises OutputError."""
    if out.suffix == "" or out.is_dir():
        kind_ok = True
    else:
        kind_ok = out.suffix.lower() in VIDEO_OUT_SUFFIXES
    if not kind_ok:
        raise OutputError(
            f"cannot write {out.suffix!r} files: use -o NAME.mp4, .mov, .mkv, or a folder for PNG frames"
        )
    try:
        same = out.exists() and inp.exists() and out.resolve() == inp.resolve()
    except OSError:
        same = False
    if same or (out.resolve() == inp.resolve()):
        raise OutputError(f"output {out} is the input: choose another -o path")
    if out.exists():
        if not overwrite:
            raise OutputError(f"output {out} already exists: pass --overwrite or choose another -o path")
        if out.is_dir() and any(out.iterdir()) and not _is_frame_folder(out):
            raise OutputError(
                f"output folder {out} holds files that are not frames: choose an empty or new folder"
            )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"output folder {parent} does not exist: create it first")
    if not parent.is_dir():
        raise OutputError(f"{parent} is not a folder: choose an -o path inside a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable: choose another -o path")


def _is_frame_folder(folder: Path) -> bool:
    return all(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


class VideoWriter:
    """Streamed, atomic writer for a video file or a PNG frame folder.

    Use as a context manager; frames are ``(H, W, 3) uint8 RGB``. On normal exit the
    temporary file is renamed onto ``path``; on any exception it is deleted.

    Args:
        path: target file (``.mp4/.mov/.m4v/.mkv``) or folder (no suffix).
        width, height: frame size (kept exactly, odd sizes included).
        fps: nominal frame rate; ``time_base`` + per-frame ``pts`` keep exact timing.
        audio_from: input file whose first audio stream is copied (or re-encoded).
        lossless: bit-exact RGB output (libx264rgb qp 0 or FFV1).
        crf: H.264 quality for lossy output (lower = better, 18 ~ visually lossless).
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
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = Fraction(fps).limit_denominator(100000)
        self.time_base = time_base
        self.audio_from = audio_from
        self.lossless = lossless
        self.crf = crf
        self.overwrite = overwrite
        self.is_folder = self.path.suffix == "" or self.path.is_dir()
        self.notes: list[str] = []
        self.n_written = 0
        self._tmp: Path | None = None

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        parent = self.path.parent if str(self.path.parent) else Path(".")
        try:
            if self.is_folder:
                self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}", dir=parent)
                os.close(fd)
                self._tmp = Path(name)
                self._open_container()
        except OSError as exc:
            self._cleanup()
            raise OutputError(f"cannot write to {parent} ({exc.strerror}): choose another -o path") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

    # -- video -------------------------------------------------------------------------
    def _open_container(self) -> None:
        av = _av()
        fmt = "matroska" if self.path.suffix.lower() == ".mkv" else "mp4"
        self._out = av.open(str(self._tmp), "w", format=fmt)
        odd = self.width % 2 or self.height % 2
        if self.lossless:
            codec, pix, opts = ("ffv1", "bgr0", {}) if fmt == "matroska" else ("libx264rgb", "rgb24", {"qp": "0", "preset": "veryfast"})
        else:
            codec, pix = "libx264", ("yuv444p" if odd else "yuv420p")
            opts = {"crf": str(self.crf), "preset": "veryfast"}
            if odd:
                self.notes.append(
                    f"odd size {self.width}x{self.height} kept by encoding H.264 4:4:4 (yuv444p); "
                    "some players only play 4:2:0 - use an even-sized input if that matters"
                )
        self._vs = self._out.add_stream(codec, rate=self.fps)
        self._vs.width, self._vs.height, self._vs.pix_fmt = self.width, self.height, pix
        self._vs.options = opts
        self._vs.codec_context.time_base = self.time_base or (1 / self.fps)
        self._setup_audio(fmt)

    def _setup_audio(self, fmt: str) -> None:
        self._ain = self._aout = self._apackets = self._resampler = None
        if self.audio_from is None:
            return
        av = _av()
        ain = av.open(str(self.audio_from))
        if not ain.streams.audio:
            ain.close()
            return
        ias = ain.streams.audio[0]
        name = ias.codec_context.name
        self._ain = ain
        if fmt == "matroska" or name in _MP4_AUDIO_COPY:
            self._aout = self._out.add_stream_from_template(ias)
            self._apackets = (p for p in ain.demux(ias) if p.dts is not None)
            self._reencode = False
        else:
            rate = ias.codec_context.sample_rate or 48000
            self._aout = self._out.add_stream("aac", rate=rate)
            self._aout.layout = ias.codec_context.layout.name if ias.codec_context.layout else "stereo"
            self._resampler = av.AudioResampler(format="fltp", layout=self._aout.layout, rate=rate)
            self._apackets = (p for p in ain.demux(ias))
            self._reencode = True
            self.notes.append(f"audio codec {name} cannot be copied into {self.path.suffix}: re-encoded to AAC")
        self._pending = None

    def _pump_audio(self, until: float | None) -> None:
        """Mux audio packets whose time is before ``until`` seconds (all when None)."""
        if self._apackets is None:
            return
        while True:
            pkt = self._pending if self._pending is not None else next(self._apackets, None)
            self._pending = None
            if pkt is None:
                self._apackets = None
                if self._reencode:
                    self._out.mux(self._aout.encode(None))
                return
            t = float(pkt.pts * pkt.time_base) if pkt.pts is not None else 0.0
            if until is not None and t > until:
                self._pending = pkt
                return
            if self._reencode:
                for frame in pkt.decode():
                    for rf in self._resampler.resample(frame):
                        rf.pts = None
                        self._out.mux(self._aout.encode(rf))
            else:
                pkt.stream = self._aout
                self._out.mux(pkt)

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Append one ``(H, W, 3) uint8 RGB`` frame; ``pts`` in the writer's ``time_base``."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be ({self.height}, {self.width}, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if self.is_folder:
            import cv2

            target = self._tmp / f"{self.n_written:05d}.png"
            if not cv2.imwrite(str(target), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OutputError(f"cannot write {target}: check free disk space and permissions")
            self.n_written += 1
            return
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        tb = self._vs.codec_context.time_base
        frame.pts = self.n_written if pts is None or self.time_base is None else pts
        frame.time_base = tb
        try:
            self._out.mux(self._vs.encode(frame))
        except av.error.FFmpegError as exc:
            raise OutputError(f"encoding {self.path} failed ({_short(exc)}): check disk space") from None
        self.n_written += 1
        self._pump_audio(float(frame.pts * tb))

    def _finish(self) -> None:
        if not self.is_folder:
            self._out.mux(self._vs.encode(None))
            self._pump_audio(None)
            self._out.close()
            if self._ain is not None:
                self._ain.close()
        if self.path.exists() and self.overwrite:
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        os.replace(self._tmp, self.path)
        self._tmp = None

    def _abort(self) -> None:
        for name in ("_out", "_ain"):
            obj = getattr(self, name, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - best effort while already failing
                    pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None and self._tmp.exists():
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp, ignore_errors=True)
            else:
                self._tmp.unlink(missing_ok=True)
        self._tmp = None
