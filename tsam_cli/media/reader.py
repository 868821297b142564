"""Reading videos and frame folders on PyAV (FFmpeg), streaming: one decoded frame in memory at a time.

Reading: any container/codec the bundled FFmpeg decodes (mp4, mov, mkv, webm, avi, ...) or
a folder of PNG/JPEG frames (sorted in natural order: ``2.png`` before ``10.png``).
Frames come out as ``(H, W, 3) uint8 RGB`` arrays with their presentation timestamp, so
variable-frame-rate timing survives a round trip. Writing lives in :mod:`.writer`, the
rules for output paths in :mod:`.output`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError, UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
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
