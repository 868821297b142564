"""Masks: read any mask form, normalise it, check it, stream it frame by frame.

Convention everywhere inside tsam: a mask is ``(H, W) bool`` (or ``uint8`` 0/1) with
**True / 1 = hole** (the region to fill). On input, white / non-zero = hole (the convention
of ProPainter and E2FGVI; palette PNGs such as DAVIS annotations included);
``invert=True`` flips it.

Forms accepted by ``--mask``:
  * a mask video (any container FFmpeg reads),
  * a folder of mask images (natural order, one per frame),
  * one image, used for every frame;
plus ``--box x,y,w,h`` (a static rectangle, in pixels of the video), alone or together
with ``--mask`` (union).

Normalisation, in this order: binarise (``max over channels > threshold``; the default
threshold is 0 for lossless images - any non-zero pixel - and 127 for JPEG and video
masks, whose compression noise would otherwise become holes), invert, resize to the video
size with nearest neighbour (warned), dilate by ``dilate`` pixels (elliptic kernel) at the
video resolution. The mask is read twice: once up front to check length and coverage (so
bad masks fail before any output is written), once while streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import MaskError, UsageError
from .video import IMAGE_SUFFIXES, _av, _short, list_images

LOSSLESS_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff"}
#: warn when a frame has more than this fraction masked (usually inverted polarity)
LARGE_MASK_FRACTION = 0.6


@dataclass(frozen=True)
class MaskSpec:
    """User's mask options. ``box`` is ``(x, y, w, h)`` in video pixels."""

    path: Path | None = None
    box: tuple[int, int, int, int] | None = None
    invert: bool = False
    dilate: int = 4
    threshold: int | None = None


def parse_box(text: str) -> tuple[int, int, int, int]:
    """Parse ``"x,y,w,h"`` (non-negative ints, w and h > 0). Raises UsageError."""
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[0] < 0 or vals[1] < 0 or vals[2] <= 0 or vals[3] <= 0:
        raise UsageError(f"--box {text!r} is not x,y,w,h: give four integers, e.g. --box 100,50,80,60 (w, h > 0)")
    return vals  # type: ignore[return-value]


def binarise(img: np.ndarray, threshold: int) -> np.ndarray:
    """``(H, W[, C]) uint8`` -> ``(H, W) bool``: True where any channel exceeds ``threshold``."""
    if img.ndim == 3:
        img = img.max(axis=2)
    return img > threshold


class MaskStream:
    """Validated mask source for one video; iterate to get ``(H, W) bool`` masks (1 = hole).

    Args:
        spec: the user's options.
        width, height: video size; masks are resized (nearest) to it.
        n_frames: frames in the video; a mask video/folder must have at least as many.
        reporter: receives warnings (size mismatch, large masks, extra mask frames).

    Raises :class:`MaskError` for a missing/unreadable mask, too few frames, a mask that is
    empty everywhere, or one that covers every pixel of every frame; :class:`UsageError`
    for a box outside the frame.
    """

    def __init__(self, spec: MaskSpec, width: int, height: int, n_frames: int, reporter) -> None:
        self.spec, self.width, self.height, self.n_frames = spec, width, height, n_frames
        self.reporter = reporter
        if spec.path is None and spec.box is None:
            raise UsageError("no mask given: pass --mask FILE|FOLDER or --box x,y,w,h")
        if spec.dilate < 0:
            raise UsageError(f"--dilate {spec.dilate} is negative: give 0 or more pixels")
        self._box = self._box_mask(spec.box) if spec.box is not None else None
        self._kind = "none"
        self._static: np.ndarray | None = None
        self._files: list[Path] = []
        if spec.path is not None:
            self._open(Path(spec.path))
        self._kernel = None
        if spec.dilate > 0:
            import cv2

            self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spec.dilate + 1,) * 2)
        self._check()

    # -- opening -----------------------------------------------------------------------
    def _box_mask(self, box: tuple[int, int, int, int]) -> np.ndarray:
        x, y, w, h = box
        if x >= self.width or y >= self.height:
            raise UsageError(
                f"--box {x},{y},{w},{h} starts outside the {self.width}x{self.height} video: "
                "give x < width and y < height"
            )
        m = np.zeros((self.height, self.width), bool)
        m[y : y + h, x : x + w] = True
        return m

    def _open(self, path: Path) -> None:
        if not path.exists():
            raise MaskError(f"mask not found: {path}: check the --mask path")
        if path.is_dir():
            self._files = list_images(path)
            if not self._files:
                raise MaskError(f"mask folder {path} holds no PNG/JPEG images: give one mask image per frame")
            self._kind = "folder"
            self._threshold = self._default_threshold(self._files[0].suffix)
            self._count = len(self._files)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self._kind = "image"
            self._threshold = self._default_threshold(path.suffix)
            self._static = self._normalise(self._read_image(path), path.name)
            self._count = None
        else:
            self._kind = "video"
            self._threshold = self.spec.threshold if self.spec.threshold is not None else 127
            av = _av()
            try:
                with av.open(str(path)) as c:
                    if not c.streams.video:
                        raise MaskError(f"mask {path} has no video stream: give a mask video, image or folder")
                    self._count = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
            except av.error.FFmpegError as exc:
                raise MaskError(f"cannot read mask {path} ({_short(exc)}): give a mask video, image or folder") from None
        if self._count is not None and self._count < self.n_frames:
            raise MaskError(
                f"mask {path} has {self._count} frames but the video has {self.n_frames}: "
                f"give a mask with at least {self.n_frames} frames (or one image for all frames)"
            )
        if self._count is not None and self._count > self.n_frames:
            self.reporter.warn(f"mask has {self._count} frames, the video {self.n_frames}: extra mask frames ignored")

    def _default_threshold(self, suffix: str) -> int:
        if self.spec.threshold is not None:
            return self.spec.threshold
        return 0 if suffix.lower() in LOSSLESS_IMAGE_SUFFIXES else 127

    @staticmethod
    def _read_image(path: Path) -> np.ndarray:
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise MaskError(f"cannot read mask image {path}: give a PNG/JPEG image")
        if img.dtype != np.uint8:  # 16-bit/float images: non-zero = hole
            img = np.where(img > 0, 255, 0).astype(np.uint8)
        if img.ndim == 3 and img.shape[2] == 4:  # alpha: a transparent pixel is "no mask"
            img = np.where(img[..., 3:4] > 0, img[..., :3], 0).astype(np.uint8)
        return img

    # -- per frame ---------------------------------------------------------------------
    def _normalise(self, img: np.ndarray, name: str) -> np.ndarray:
        """Raw mask image -> ``(H, W) bool`` at video size, inverted if asked, NOT dilated."""
        m = binarise(img, self._threshold)
        if self.spec.invert:
            m = ~m
        if m.shape != (self.height, self.width):
            import cv2

            if not getattr(self, "_warned_size", False):
                self.reporter.warn(
                    f"mask {name} is {m.shape[1]}x{m.shape[0]}, the video {self.width}x{self.height}: "
                    "mask resized (nearest neighbour)"
                )
                self._warned_size = True
            m = cv2.resize(m.astype(np.uint8), (self.width, self.height), interpolation=cv2.INTER_NEAREST) > 0
        return m

    def _raw_frames(self) -> Iterator[np.ndarray]:
        """Undilated masks, one per video frame (box union included)."""
        if self._kind == "folder":
            for f in self._files[: self.n_frames]:
                yield self._union(self._normalise(self._read_image(f), f.name))
        elif self._kind == "video":
            av = _av()
            with av.open(str(self.spec.path)) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i >= self.n_frames:
                        break
                    yield self._union(self._normalise(frame.to_ndarray(format="rgb24"), self.spec.path.name))
        else:
            static = self._union(self._static)
            for _ in range(self.n_frames):
                yield static

    def _union(self, m: np.ndarray | None) -> np.ndarray:
        if m is None:
            return self._box
        return m | self._box if self._box is not None else m

    def _dilate(self, m: np.ndarray) -> np.ndarray:
        if self._kernel is None:
            return m
        import cv2

        return cv2.dilate(m.astype(np.uint8), self._kernel) > 0

    # -- checks ------------------------------------------------------------------------
    def _check(self) -> None:
        fractions = []
        if self._kind in ("folder", "video"):
            self.reporter.start("check mask", self.n_frames)
            for m in self._raw_frames():
                fractions.append(float(m.mean()))
                self.reporter.advance("check mask")
            if len(fractions) < self.n_frames:
                raise MaskError(
                    f"mask {self.spec.path} decoded to {len(fractions)} frames but the video has {self.n_frames}: "
                    f"give a mask with at least {self.n_frames} frames"
                )
        else:
            fractions = [float(self._union(self._static).mean())] * self.n_frames
        self.fractions = fractions
        if max(fractions) == 0.0:
            raise MaskError(
                "the mask is empty (no pixel to fill in any frame): white/non-zero marks the region to "
                "remove - check the file, --mask-threshold or --invert-mask"
            )
        if min(fractions) == 1.0:
            raise MaskError(
                "the mask covers every pixel of every frame, so nothing is left to fill from: "
                "did you mean --invert-mask?"
            )
        big = [i for i, f in enumerate(fractions) if f > LARGE_MASK_FRACTION]
        if big:
            self.reporter.warn(
                f"{len(big)} frame(s) have more than {LARGE_MASK_FRACTION:.0%} masked (e.g. frame {big[0]}: "
                f"{fractions[big[0]]:.0%}); white/non-zero means 'remove' - use --invert-mask if the polarity is reversed"
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``(H, W) bool`` dilated masks, 1 = hole, one per video frame."""
        for m in self._raw_frames():
            yield self._dilate(m)
