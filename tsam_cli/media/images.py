"""Reading one still image (a frame of a folder, or a mask) the way an image viewer shows it.

One function, :func:`read_image`, so frames and masks can never disagree about orientation:

* **EXIF orientation is applied in every mode.** OpenCV applies it only for some read
  flags (not for ``IMREAD_UNCHANGED``, which is the only flag that keeps alpha and 16-bit
  depth together), so the file is decoded unrotated and the orientation tag is read here
  from the JPEG ``APP1 Exif`` segment, the PNG ``eXIf`` chunk or the WebP ``EXIF`` chunk
  and applied with numpy. TIFF files are left alone: OpenCV's TIFF decoder applies their
  orientation tag itself, whatever the flags.
* **Codec chatter never reaches the terminal.** libpng/libjpeg and OpenCV's own logger
  print to file descriptor 2 (``libpng error: IDAT: CRC error``, ``Premature end of JPEG
  file``); while decoding, fd 2 points at a temporary file, and the text caught there
  becomes the reason in the error raised for an unreadable file.
* **Typed errors.** A missing, empty, corrupt or undecodable file raises the error class
  the caller passes (``error=InputError``), or :class:`ImageReadError` by default, whose
  ``reason`` a caller can put in its own message.

Channels come out in RGB order (not OpenCV's BGR); grey images are expanded to 3 channels.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tsam_cli.ui import plural  # the media modules take it from here

#: the orientation tag of TIFF/EXIF IFD0
_ORIENTATION_TAG = 0x0112
#: OpenCV's log prefix, e.g. ``[ WARN:0@0.005] global grfmt_png.cpp:793 readFromStreamOrBuffer ``
_CV_LOG_PREFIX = re.compile(r"^\[\s*\w+:\d+@[\d.]+\]\s+global\s+\S+\s+\S+\s+")
#: lines that libpng, libjpeg and OpenCV's logger print (``> `` continues an OpenCV error,
#: blank lines end one)
_CODEC_LINE = re.compile(
    rb"(\[\s*(WARN|ERROR|INFO|DEBUG|FATAL|VERBOSE)\b|libpng |libjpeg|> |OpenCV\(|Corrupt JPEG|Premature end"
    rb"|Invalid |Unsupported |Bogus |Inconsistent |Huffman |Warning: |Not a JPEG|JPEG |TIFF|\s*$)"
)
_STDERR_LOCK = threading.Lock()
#: channel indices turning OpenCV's grey / grey+alpha / BGR / BGRA into RGB[A]
_RGB_ORDER = {1: [0, 0, 0], 2: [0, 0, 0, 1], 3: [2, 1, 0], 4: [2, 1, 0, 3]}
#: the same as cv2.cvtColor codes, keyed by (channels in, channels out)
_CVT_CODES = {(1, 3): "COLOR_GRAY2RGB", (3, 3): "COLOR_BGR2RGB", (4, 3): "COLOR_BGRA2RGB", (4, 4): "COLOR_BGRA2RGBA"}


class ImageReadError(Exception):
    """An image file could not be read; ``path``, ``reason`` (short, one line) and ``fix``
    (what to do, one clause; empty for the general "missing, corrupt or not an image")
    are kept for callers' own messages."""

    def __init__(self, message: str, path: Path | None = None, reason: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.path, self.reason, self.fix = path, reason, fix


def read_image(
    path: str | os.PathLike,
    *,
    keep_depth: bool = False,
    keep_alpha: bool = False,
    error: type[Exception] = ImageReadError,
) -> np.ndarray:
    """Read an image file as displayed by a viewer (EXIF orientation applied), RGB order.

    Args:
        path: the image file (PNG, JPEG, BMP, TIFF, WebP: whatever OpenCV decodes).
        keep_depth: keep the file's sample type: ``uint8``, ``uint16`` (16-bit PNG/TIFF,
            0..65535) or ``float32`` (32-bit TIFF, nominally 0..1). Without it the result
            is ``uint8`` 0..255 (16-bit: high byte; float: clipped to [0, 1] times 255).
        keep_alpha: keep an alpha channel when the file has one (0 = transparent, 255 /
            65535 / 1.0 = opaque). Without it alpha is dropped, not composited.
        error: exception class raised (with a one-line message) when the file cannot be
            read; :class:`ImageReadError` also carries ``path`` and ``reason``.

    Returns:
        ``(H, W, 3)`` RGB, or ``(H, W, 4)`` RGBA when ``keep_alpha`` and the file has
        alpha; ``H, W`` are the displayed (oriented) size.

    A float image holding NaN or infinite samples is refused like an unreadable one: no
    value in 0..1 stands for them, and reading them as 0 would be a silent guess.
    """
    path = Path(path)
    data, img, reason = _decode(path)
    fix = ""  # what to do, when it is not the general advice
    if img is not None and (bad := _non_finite(img)):
        reason = f"{plural(bad, 'pixel')} of {img.shape[0] * img.shape[1]} NaN or infinite"
        img, fix = None, "replace those values (e.g. with 0) or save the image with 8/16-bit integer samples"
    if img is None:
        msg = f"cannot read image {path} ({reason}): {fix or 'the file is missing, corrupt or not an image'}"
        if error is ImageReadError:
            raise ImageReadError(msg, path, reason, fix)
        raise error(msg) from None
    img = _to_rgb(img, keep_alpha)
    if not keep_depth:
        img = _to_uint8(img)
    return _apply_orientation(img, _orientation(data))


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Decode ``path`` unchanged (no orientation, native depth/channels, BGR[A] order).

    Returns ``(file bytes, image, "")`` or ``(file bytes, None, reason)``; nothing is
    printed on stderr.
    """
    import cv2

    try:
        data = np.fromfile(str(path), np.uint8)  # not cv2.imread: non-ASCII paths on Windows
    except OSError as exc:
        return np.zeros(0, np.uint8), None, exc.strerror or type(exc).__name__
    if data.size == 0:
        return data, None, "empty file"
    with _quiet_stderr() as caught:
        try:
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            img = None
    if img is not None and img.size:
        return data, img, ""
    lines = [_CV_LOG_PREFIX.sub("", line).strip() for line in caught if line.strip()]
    return data, None, (lines[-1][:160] if lines else "OpenCV cannot decode it")


@contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Point file descriptor 2 at a temporary file; yield a list that receives the codec lines.

    C libraries (libpng, libjpeg, OpenCV's logger) write to fd 2 directly, so replacing
    ``sys.stderr`` would not silence them. Other threads (e.g. a progress bar refreshing)
    may write to fd 2 meanwhile: what does not look like codec output is written back to
    fd 2 afterwards. Redirections are serialised by a lock (nested ``dup2`` from two threads
    would leave fd 2 pointing at a deleted file). Where fd 2 cannot be duplicated (no
    console), nothing is redirected.
    """
    caught: list[str] = []
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            tmp = tempfile.TemporaryFile()  # fails without a usable temporary folder: then no capture
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield caught
            return
        with tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield caught
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                codec, other = _split_codec_output(tmp.read())
                caught.extend(codec)
                _write_back(other)


def _write_back(data: bytes) -> None:
    """Return other threads' stderr output to fd 2; a closed or full stderr loses it quietly
    (messages must never stop the work)."""
    try:
        if data:
            os.write(2, data)
    except OSError:
        pass


def _split_codec_output(raw: bytes) -> tuple[list[str], bytes]:
    """Captured stderr bytes -> (codec message lines, everything else byte for byte)."""
    codec, other = [], []
    for line in raw.splitlines(keepends=True):
        (codec if _CODEC_LINE.match(line) else other).append(line)
    return [line.decode(errors="replace").strip() for line in codec], b"".join(other)


def _non_finite(img: np.ndarray) -> int:
    """Pixels of a float ``(H, W[, C])`` image with a NaN or infinite sample in any channel (0 for integers)."""
    if not np.issubdtype(img.dtype, np.floating):
        return 0
    finite = np.isfinite(img)
    return int(img.shape[0] * img.shape[1] - (finite.all(axis=2) if finite.ndim == 3 else finite).sum())


def _to_rgb(img: np.ndarray, keep_alpha: bool) -> np.ndarray:
    """OpenCV's ``(H, W)``/``(H, W, 1|2|3|4)`` BGR[A] -> ``(H, W, 3|4)`` RGB[A], same dtype."""
    import cv2

    img = img.reshape(img.shape[0], img.shape[1], -1)
    channels = min(img.shape[2], 4)  # more than 4 samples (rare TIFFs): the first 4 as BGRA
    order = _RGB_ORDER[channels][: 4 if keep_alpha else 3]
    code = _CVT_CODES.get((channels, len(order)))
    if code is not None and img.shape[2] == channels and img.dtype in (np.uint8, np.uint16, np.float32):
        return cv2.cvtColor(img, getattr(cv2, code))  # several times faster than numpy indexing
    return np.ascontiguousarray(img[..., order])


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Any sample type -> ``uint8`` 0..255 (uint16: high byte; float: [0, 1] scaled)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer):
        scale = 255.0 / np.iinfo(img.dtype).max
        return np.clip(np.rint(img.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    return np.rint(np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to ``(H, W, C)`` (the same steps as OpenCV's imread)."""
    if orientation in (5, 6, 7, 8):
        img = img.swapaxes(0, 1)
    if orientation in (2, 3, 6, 7):
        img = img[:, ::-1]
    if orientation in (3, 4, 7, 8):
        img = img[::-1]
    return np.ascontiguousarray(img)


def _orientation(data: np.ndarray) -> int:
    """EXIF orientation (1..8) of JPEG/PNG/WebP file bytes; 1 when absent, malformed or TIFF."""
    f = io.BytesIO(data.tobytes())
    head = f.read(12)
    try:
        if head.startswith(b"\xff\xd8"):
            exif = _jpeg_exif(f)
        elif head.startswith(b"\x89PNG\r\n\x1a\n"):
            exif = _png_exif(f)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            exif = _webp_exif(f)
        else:
            return 1
    except (struct.error, ValueError):
        return 1
    return _tiff_orientation(exif) if exif else 1


def _jpeg_exif(f) -> bytes | None:
    """TIFF block of the ``APP1 Exif`` segment, scanning markers up to the image data."""
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] == 0xFF:  # fill byte before a marker
            f.seek(-1, os.SEEK_CUR)
            continue
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:  # no length field
            continue
        if marker[1] in (0xDA, 0xD9):  # start of scan / end of image: no Exif before it
            return None
        (length,) = struct.unpack(">H", f.read(2))
        if length < 2:
            return None
        body = f.read(length - 2)
        if marker[1] == 0xE1 and body.startswith(b"Exif\x00\x00"):
            return body[6:]


def _png_exif(f) -> bytes | None:
    """Data of the ``eXIf`` chunk (read, like OpenCV, only before the first ``IDAT``)."""
    f.seek(8)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header)
        if kind in (b"IDAT", b"IEND"):
            return None
        if kind == b"eXIf":
            return f.read(length)
        f.seek(length + 4, os.SEEK_CUR)  # data + CRC


def _webp_exif(f) -> bytes | None:
    """Data of the RIFF ``EXIF`` chunk (an ``Exif\\0\\0`` prefix, written by some tools, dropped)."""
    f.seek(12)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        kind, length = struct.unpack("<4sI", header)
        if kind == b"EXIF":
            data = f.read(length)
            return data[6:] if data.startswith(b"Exif\x00\x00") else data
        f.seek(length + (length & 1), os.SEEK_CUR)  # chunks are padded to even sizes


def animation(path: str | os.PathLike) -> str | None:
    """``"apng"`` or ``"webp"`` when the image file holds several frames, else None.

    OpenCV decodes only the first frame of an animated PNG or WebP, so a caller that wants
    every frame must know: an APNG has an ``acTL`` chunk (frame count above 1) before its
    first ``IDAT``; an animated WebP sets the animation flag of its ``VP8X`` chunk.
    Unreadable or malformed files: None (reading them reports the problem).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return "apng" if _png_frames(f) > 1 else None
            if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) > 20:
                return "webp" if head[20] & 0x02 else None
    except (OSError, struct.error):
        return None
    return None


def _png_frames(f) -> int:
    """``num_frames`` of the ``acTL`` chunk (APNG) before the first ``IDAT``; 1 without one."""
    f.seek(8)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return 1
        length, kind = struct.unpack(">I4s", header)
        if kind in (b"IDAT", b"IEND"):
            return 1
        if kind == b"acTL":
            return struct.unpack(">I", f.read(4))[0]
        f.seek(length + 4, os.SEEK_CUR)  # data + CRC


def _tiff_orientation(tiff: bytes) -> int:
    """Orientation tag of IFD0 of a TIFF-structured EXIF block; 1 if absent or malformed."""
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", tiff, 4)
        (count,) = struct.unpack_from(end + "H", tiff, ifd)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(end + "HHIH", tiff, ifd + 2 + 12 * i)
            if tag == _ORIENTATION_TAG and kind == 3:  # SHORT, stored in the value field
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def write_png_frames(folder: Path, frames: np.ndarray) -> None:
    """Write uint8 RGB ``(T, H, W, 3)`` frames, or masks ``(T, H, W)`` (non-zero saved as
    255), as ``00000.png`` ... into ``folder`` (made if missing). Encoded in memory and
    written with ordinary file writes, so a full disk raises OSError (``cv2.imwrite`` can
    leave an empty file and report nothing)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        img = cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if f.ndim == 3 else (f > 0).astype(np.uint8) * 255
        ok, data = cv2.imencode(".png", img)
        if not ok:
            raise OSError(f"cannot encode frame {i} as PNG")
        with open(folder / f"{i:05d}.png", "wb") as fh:
            fh.write(data.tobytes())
