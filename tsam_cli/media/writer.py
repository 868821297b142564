"""Writing videos and PNG frame folders on PyAV (FFmpeg), streamed and atomic.

:class:`VideoWriter`: the output kind follows the path and options

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
path given by :class:`~tsam_cli.media.output.OutputTarget`, which swaps it in on success.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import OutputError
from .output import OutputTarget, describe_os_error
from .reader import _av

#: audio codecs the mp4/mov muxer takes as a stream copy; anything else is re-encoded to AAC
_MP4_AUDIO_COPY = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


class VideoWriter:
    """Streamed writer for a video file or a PNG frame folder, into a path it is given.

    The path is the temporary of an :class:`~tsam_cli.media.output.OutputTarget` (an empty
    file or folder); the target swaps it in once the writer is closed. Use as a context
    manager; frames are ``(H, W, 3) uint8 RGB``. Leaving the block normally flushes the
    encoders and closes the container; leaving it with an exception only closes it.
    Write failures (full disk, read-only filesystem) raise :class:`OutputError` naming
    the cause.

    Args:
        path: where to write (a file, or a folder for PNG frames).
        kind: ``"file"`` or ``"folder"``.
        suffix: container of the final output (``.mp4/.mov/.m4v/.mkv``), picks the muxer.
        width, height: frame size (kept exactly, odd sizes included).
        fps: nominal frame rate; ``time_base`` + per-frame ``pts`` keep exact timing.
        audio_from: input file whose audio streams are copied (or re-encoded).
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
        kind: str = "file",
        suffix: str = ".mp4",
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = Fraction(fps).limit_denominator(100000)
        self.time_base = time_base
        self.audio_from = audio_from
        self.lossless = lossless
        self.crf = crf
        self.is_folder = kind == "folder"
        self.suffix = suffix.lower()
        self.notes: list[str] = []
        self.n_written = 0
        self._out = self._ain = None

    # -- context management ------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        if not self.is_folder:
            try:
                self._open_container()
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

    # -- video -------------------------------------------------------------------------
    def _open_container(self) -> None:
        av = _av()
        fmt = "matroska" if self.suffix == ".mkv" else "mp4"
        self._out = av.open(str(self.path), "w", format=fmt)
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

            target = self.path / f"{self.n_written:05d}.png"
            ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            try:
                if not ok:
                    raise OSError(errno.EIO, "PNG encoding failed")
                with open(target, "wb") as fh:
                    fh.write(data.tobytes())
            except OSError as exc:
                raise OutputError(f"cannot write frame {target.name}: {describe_os_error(exc)}") from None
            self.n_written += 1
            return
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        tb = self._vs.codec_context.time_base
        frame.pts = self.n_written if pts is None or self.time_base is None else pts
        frame.time_base = tb
        try:
            self._out.mux(self._vs.encode(frame))
        except (OSError, av.error.FFmpegError) as exc:  # FFmpegError carries errno/strerror too
            raise OutputError(f"writing the output failed: {describe_os_error(exc)}") from None
        self.n_written += 1
        self._pump_audio(float(frame.pts * tb))

    def _finish(self) -> None:
        if not self.is_folder:
            self._out.mux(self._vs.encode(None))
            self._pump_audio(None)
            self._out.close()
            self._out = None
            if self._ain is not None:
                self._ain.close()
                self._ain = None

    def _abort(self) -> None:
        """Close what is open, ignoring errors: the cause is already being raised."""
        for name in ("_out", "_ain"):
            obj = getattr(self, name, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - best effort while already failing
                    pass
                setattr(self, name, None)


@contextmanager
def create_video(path: str | os.PathLike, width: int, height: int, fps: Fraction, *, overwrite: bool = False,
                 protected: tuple = (), **options) -> Iterator[VideoWriter]:
    """Write a video file or PNG folder at ``path`` safely: checked, locked, swapped in at the end.

    ``options`` go to :class:`VideoWriter` (``time_base``, ``audio_from``, ``lossless``, ``crf``).
    On any exception nothing is left at ``path`` (an existing output stays as it was).
    """
    path = Path(path)
    with OutputTarget(path, list(protected), overwrite) as target:
        with VideoWriter(target.tmp, width, height, fps, kind=target.kind, suffix=path.suffix, **options) as writer:
            yield writer
        target.commit()
