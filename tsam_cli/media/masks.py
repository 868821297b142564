"""Masks: read any mask form, normalise it, check it, stream it frame by frame.

Convention everywhere inside tsam: a mask is ``(H, W) bool`` (or ``uint8`` 0/1) with
**True / 1 = hole** (the region to fill). On input, white / non-zero = hole (the convention
of ProPainter and E2FGVI; palette PNGs such as DAVIS annotations included);
``invert=True`` flips it.

Forms accepted by ``--mask``:
  * a mask video (any container FFmpeg reads; GIF and animated PNG too), matched to the
    video by frame index (a different frame rate is warned about when the caller gives
    the video's); one with a single frame is used for every frame, like an image,
  * a folder of mask images, one per frame: matched by the number in their names when
    every name is one pattern around a number (``00005.png``; a number missing is an
    error), else in natural order,
  * one image, used for every frame (an animated WebP is refused: only its first frame
    could be read);
plus ``--box x,y,w,h`` (a static rectangle, in pixels of the video), alone or together
with ``--mask`` (union).

Mask images are read by :func:`.images.read_image`, like the frames of a folder: oriented as
a viewer shows them (EXIF orientation applied), in their own depth, alpha kept.

Value of a pixel: the maximum over its colour channels. Alpha (RGBA images, and mask
videos whose pixel format has alpha, e.g. png/qtrle/ProRes 4444 .mov; for them "0" below
means "at or below the threshold", as their black and transparent carry compression noise):
  * colour content present: a transparent pixel (alpha 0) is "no mask", whatever its colour;
  * colour channels all 0 in the whole image and alpha not constant (an "alpha-only" mask,
    as many editors export a selection): the alpha value is the pixel's value;
  * colour all 0 and alpha constant: the image is empty (no region drawn anywhere).

Threshold (``--mask-threshold``): a pixel is a hole when its value is **above** the
threshold, which is given in the mask's own value range (see :func:`threshold_range`):
  * 8-bit images and all mask videos (decoded to 8-bit RGB): 0..255, threshold 0..254;
  * 16-bit images (PNG/TIFF): 0..65535, threshold 0..65534;
  * float images (32-bit TIFF): values are taken as 0..1 and the threshold is on the 8-bit
    scale, i.e. compared as ``threshold / 255`` (0..254); a NaN or infinite sample is a
    :class:`MaskError` (no value stands for it).
Default threshold: 0 (any non-zero value) for lossless images (PNG/BMP/TIFF), and the
middle of the range for lossy ones (JPEG, WebP, videos), whose compression noise would
otherwise become holes: 127 for 8-bit, 32767 for 16-bit ("127 on the 8-bit scale").
A threshold above the range of the mask actually read is a :class:`UsageError`.

Normalisation, in this order: binarise, invert, resize to the video size with nearest
neighbour (warned), dilate by ``dilate`` pixels (elliptic kernel) at the video resolution.
The mask is read twice: once up front to check length and coverage (so bad masks fail
before any output is written), once while streaming.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsam_cli.errors import InputError, MaskError, UsageError
from tsam_cli.media.images import ImageReadError, animation, plural, read_image
from tsam_cli.media.reader import IMAGE_SUFFIXES, list_images, numbering

LOSSLESS_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff"}
#: warn when a frame has more than this fraction masked (usually inverted polarity)
LARGE_MASK_FRACTION = 0.6
#: a mask video whose frame rate differs from the video's by more than this fraction is
#: named in a warning (masks are matched by frame index, not by time)
FPS_MISMATCH = 0.01
#: the largest ``--mask-threshold`` any mask accepts (16-bit); the exact limit depends on the
#: mask read, see :func:`threshold_range`
MAX_THRESHOLD = 65534


@dataclass(frozen=True)
class MaskSpec:
    """User's mask options. ``box`` is ``(x, y, w, h)`` in video pixels.

    ``threshold``: a pixel is a hole when its value is above it, in the mask's own range
    (0..254 for 8-bit masks, 0..65534 for 16-bit, 8-bit scale for float); None = default
    (0 for lossless images, the middle of the range for JPEG/WebP/video masks).
    """

    path: Path | None = None
    box: tuple[int, int, int, int] | None = None
    invert: bool = False
    dilate: int = 4
    threshold: int | None = None
    #: which option gave the mask, for messages: ``"--mask"``, or ``"--seed"`` (``tsam mask
    #: track``: a mask of the object on one frame; its coverage is judged by the caller, on
    #: that frame only, so :class:`MaskStream` skips the whole-video coverage checks)
    flag: str = "--mask"


def parse_box(text: str) -> tuple[int, int, int, int]:
    """Parse ``"x,y,w,h"`` (integers, w and h > 0). Raises UsageError.

    ``x``/``y`` may be negative: a box that runs off any edge of the frame is clipped to it,
    with a warning (:meth:`MaskStream._box_mask`), the same rule on every side."""
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise UsageError(f"--box {text!r} is not x,y,w,h: give four integers, e.g. --box 100,50,80,60")
    if vals[2] <= 0 or vals[3] <= 0:
        raise UsageError(f"--box {text!r} has width {vals[2]} and height {vals[3]}: both must be at least 1 pixel")
    return vals  # type: ignore[return-value]


def channel_max(img: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` -> ``(H, W)``: the largest of the channels, same dtype. The same numbers as
    ``img.max(axis=2)``, ~25x faster: numpy's reduction over a short last axis is slow, and
    masks are reduced this way once per frame (4 ms of a 432x240 frame's time otherwise)."""
    out = img[..., 0].copy()
    for c in range(1, img.shape[2]):
        np.maximum(out, img[..., c], out=out)
    return out


def binarise(img: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W[, C])`` any dtype -> ``(H, W) bool``: True (hole) where any channel exceeds
    ``threshold``, which is compared with the raw values (so it is in the array's own range:
    see :func:`effective_threshold` for the user-facing rules)."""
    if img.ndim == 3:
        img = channel_max(img)
    return img > threshold


def threshold_range(dtype) -> tuple[int, int]:
    """Inclusive range of ``--mask-threshold`` for masks whose samples have ``dtype``.

    ``(0, 254)`` for ``uint8`` (and mask videos) and float images (8-bit scale),
    ``(0, 65534)`` for ``uint16``; other integer types: ``(0, max - 1)``. Values above the
    upper end would select no pixel at all.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return 0, int(np.iinfo(dtype).max) - 1
    return 0, 254


def effective_threshold(threshold: int | None, dtype, lossy: bool) -> float:
    """The value raw samples of ``dtype`` are compared with (hole = value above it).

    Args:
        threshold: the user's ``--mask-threshold`` in the mask's own range, or None.
        dtype: sample type of the mask as read (``uint8``, ``uint16``, float in [0, 1]).
        lossy: JPEG/WebP/video mask: the default is the middle of the range (127 for
            8-bit, 32767 for 16-bit), not 0.

    Raises :class:`UsageError` when ``threshold`` is outside :func:`threshold_range`.
    """
    dtype = np.dtype(dtype)
    lo, hi = threshold_range(dtype)
    if threshold is None:
        threshold = (hi + 1) // 2 if lossy else 0
    elif not lo <= threshold <= hi:
        kind = f"{dtype.itemsize * 8}-bit" if np.issubdtype(dtype, np.integer) else "float (8-bit scale)"
        raise UsageError(
            f"--mask-threshold {threshold} is outside {lo}..{hi}, the range for this {kind} mask: "
            "the threshold is in the mask's own values (0..254 for 8-bit, 0..65534 for 16-bit)"
        )
    return threshold / 255.0 if not np.issubdtype(dtype, np.integer) else threshold


def mask_values(img: np.ndarray, floor: float = 0) -> tuple[np.ndarray, bool]:
    """``(H, W, 3|4)`` RGB[A] mask image -> ``((H, W) values, alpha_used)``, same dtype.

    The value is the maximum over the colour channels; with alpha, a transparent pixel is 0
    ("no mask"), except for an alpha-only image (colour all 0, alpha not constant), whose
    alpha channel is the value (``alpha_used`` True).

    ``floor``: samples at or below it count as 0 in these rules (a transparent alpha, an
    all-black colour). 0 for lossless images; the threshold for lossy sources (video), whose
    "black" and "transparent" carry compression noise.
    """
    if img.ndim == 2:
        return img, False
    colour = channel_max(img[..., :3])
    if img.shape[2] < 4:
        return colour, False
    alpha = img[..., 3]
    if not (colour > floor).any() and alpha.min() != alpha.max():
        return alpha, True
    return np.where(alpha > floor, colour, 0).astype(img.dtype), False


def read_mask_image(path: Path, threshold: int | None) -> tuple[np.ndarray, bool]:
    """Mask image file -> ``((h, w) bool, had alpha)``: True = hole, in display orientation
    (EXIF applied), thresholded in its own value range (:func:`effective_threshold`), alpha
    as :func:`mask_values` says. Not inverted, not resized. Raises MaskError / UsageError."""
    try:
        img = read_image(path, keep_depth=True, keep_alpha=True)
    except ImageReadError as exc:
        raise MaskError(f"cannot read mask image {path} ({exc.reason}): {exc.fix or 'give a PNG/JPEG image'}") from None
    values, _ = mask_values(img)
    lossy = path.suffix.lower() not in LOSSLESS_IMAGE_SUFFIXES
    return binarise(values, effective_threshold(threshold, values.dtype, lossy)), img.shape[2] == 4


class _MaskSource(ABC):
    """Where raw masks come from. ``count``: mask frames (None: one mask for every frame,
    read once: ``frames`` yields the same array each time);
    ``frames(n)`` yields ``(h, w) bool`` masks in display orientation, True = hole;
    ``alpha_seen``: some image had an alpha channel (named in the "empty" error)."""

    count: int | None = None
    alpha_seen = False

    def __init__(self, path: Path, threshold: int | None) -> None:
        self.path, self.threshold = path, threshold

    @abstractmethod
    def frames(self, n: int) -> Iterator[np.ndarray]:
        """``n`` masks (fewer if the source has fewer), ``(h, w) bool``, display orientation."""

    def _read(self, path: Path) -> np.ndarray:
        mask, alpha = read_mask_image(path, self.threshold)
        self.alpha_seen |= alpha
        return mask


class _ImageMask(_MaskSource):
    """One image for every frame (read once)."""

    def __init__(self, path: Path, threshold: int | None) -> None:
        super().__init__(path, threshold)
        self.mask = self._read(path)

    def frames(self, n: int) -> Iterator[np.ndarray]:
        for _ in range(n):
            yield self.mask


def check_numbered(folder: Path, files: list[Path], error: type[Exception] = MaskError) -> None:
    """Masks in ``folder`` (``files`` in natural order) are matched to frames by the number in
    their names when all have one: two with one number, or a number skipped (which would shift
    every later mask onto the frame before it), is ``error`` naming the file. First = frame 0."""
    num = numbering(files)
    if num is None:
        return
    twins = num.duplicate()
    if twins is not None:
        raise error(f"mask folder {folder} has two masks numbered alike, {twins[0].name} and "
                    f"{twins[1].name}: keep one (masks are matched to frames by the number in their names)")
    missing = num.gap()
    if missing is not None:
        frame = (missing - num.numbers[0]) // num.step
        raise error(
            f"mask folder {folder} has no {num.name(missing, files[0])} (the mask of frame {frame}; "
            f"masks are matched to frames by the number in their names, {files[0].name} = frame 0): "
            "add the missing mask"
        )


class _FolderMasks(_MaskSource):
    """One image per frame, natural order; when every name is one pattern around a number
    (``00005.png``), matched by that number: a number missing from the sequence is an error,
    not a silent shift of every later mask onto the frame before it."""

    def __init__(self, path: Path, threshold: int | None) -> None:
        super().__init__(path, threshold)
        self.files = list_images(path)
        if not self.files:
            raise MaskError(f"mask folder {path} holds no PNG/JPEG images: give one mask image per frame")
        check_numbered(path, self.files)
        self.count = len(self.files)

    def frames(self, n: int) -> Iterator[np.ndarray]:
        for f in self.files[:n]:
            yield self._read(f)


class _VideoMasks(_MaskSource):
    """A mask video (or animated image: GIF, APNG), decoded by the media layer, turned as
    the mask video itself is shown; lossy, so thresholded at the midpoint unless
    ``--mask-threshold`` says otherwise. With an alpha channel (png/qtrle/ProRes 4444 .mov,
    GIF transparency) the alpha rules of :func:`mask_values` apply, as for RGBA images.
    One frame only: used for every frame of the video, like a mask image."""

    def __init__(self, path: Path, threshold: int | None) -> None:
        from tsam_cli.media.reader import probe

        super().__init__(path, threshold)
        self.video_threshold = effective_threshold(threshold, np.uint8, lossy=True)
        try:
            self.info = probe(path)
        except InputError as exc:
            raise MaskError(f"mask {exc}") from None
        self.alpha_seen = self.info.has_alpha
        self.count = self.info.n_frames if self.info.n_frames != 1 else None
        self._still: np.ndarray | None = None

    def frames(self, n: int) -> Iterator[np.ndarray]:
        if self.count is None:  # one frame: decoded once, the same array for every frame
            if self._still is None:
                self._still = next(self._decoded(1), None)
                if self._still is None:
                    raise MaskError(f"mask {self.path} has no frame that decodes: re-export the mask")
            for _ in range(n):
                yield self._still
            return
        yield from self._decoded(n)

    def _decoded(self, n: int) -> Iterator[np.ndarray]:
        """The first ``n`` frames as ``(h, w) bool`` masks in display orientation."""
        from tsam_cli.media.reader import iter_frames

        try:
            for i, frame in enumerate(iter_frames(self.info, alpha=True)):
                if i >= n:
                    break
                values, _ = mask_values(frame.rgb, floor=self.video_threshold)
                m = binarise(values, self.video_threshold)
                yield np.rot90(m, k=-(self.info.rotation // 90)) if self.info.rotation else m  # clockwise
        except InputError as exc:
            raise MaskError(f"mask {exc}") from None


class MaskStream:
    """Validated mask source for one video; iterate to get ``(H, W) bool`` masks (1 = hole).

    Args:
        spec: the user's options.
        width, height: video size; masks are resized (nearest) to it.
        n_frames: frames in the video; a mask video/folder must have at least as many.
        reporter: receives warnings (size mismatch, large masks, extra mask frames, a mask
            video at another frame rate).
        rotation: the video's clockwise display rotation (masks are drawn as it is shown).
        fps: the video's frame rate, when known: a mask video at another rate is warned
            about (masks are matched by frame index, not by time).

    Raises :class:`MaskError` for a missing/unreadable mask, too few frames, a mask that is
    empty everywhere, or one that covers every pixel of every frame; :class:`UsageError`
    for a box outside the frame or a ``threshold`` outside the range of the mask read
    (:func:`threshold_range`).
    """

    def __init__(self, spec: MaskSpec, width: int, height: int, n_frames: int, reporter, rotation: int = 0,
                 fps: float | None = None) -> None:
        self.spec, self.width, self.height, self.n_frames = spec, width, height, n_frames
        self.reporter, self.fps = reporter, fps
        if rotation % 90:
            raise ValueError(f"rotation {rotation} is not a multiple of 90 degrees")
        self.rotation = rotation % 360
        #: what the user sees (width, height): masks and --box are drawn in this orientation
        self.display_size = (width, height) if self.rotation in (0, 180) else (height, width)
        if spec.path is None and spec.box is None:
            raise UsageError("no mask given: pass --mask FILE|FOLDER or --box x,y,w,h")
        if spec.dilate < 0:
            raise UsageError(f"--dilate {spec.dilate} is negative: give 0 or more pixels")
        self._box = self._box_mask(spec.box) if spec.box is not None else None
        self._source: _MaskSource | None = self._open(Path(spec.path)) if spec.path is not None else None
        self._kernel = None
        if spec.dilate > 0:
            import cv2

            self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spec.dilate + 1,) * 2)
        if spec.flag == "--mask":  # a seed's coverage is judged on its one frame by the caller
            self._check()

    # -- opening -----------------------------------------------------------------------
    def _box_mask(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """``--box`` in display pixels (what the user sees) -> coded-orientation mask."""
        x, y, w, h = box
        dw, dh = self.display_size
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, dw), min(y + h, dh)
        if x0 >= x1 or y0 >= y1:
            raise UsageError(f"--box {x},{y},{w},{h} lies entirely outside the {dw}x{dh} video: "
                             "give x, y, w, h in pixels of the video as shown")
        if (x0, y0, x1, y1) != (x, y, x + w, y + h):
            self.reporter.warn(f"--box {x},{y},{w},{h} runs past the edge of the {dw}x{dh} video: "
                               f"clipped to {x0},{y0},{x1 - x0},{y1 - y0}")
        m = np.zeros((dh, dw), bool)
        m[y0:y1, x0:x1] = True
        return self._to_coded(m)

    def _to_coded(self, m: np.ndarray) -> np.ndarray:
        """Display orientation -> the video's coded orientation (undo the clockwise display rotation)."""
        return np.ascontiguousarray(np.rot90(m, k=self.rotation // 90)) if self.rotation else m

    def _open(self, path: Path) -> _MaskSource:
        """The source for ``--mask PATH``; checks it has enough frames."""
        if not path.exists():
            raise MaskError(f"mask not found: {path}: check the {self.spec.flag} path")
        if not (path.is_dir() or path.is_file()):  # a FIFO would hang: it is read twice
            raise MaskError(f"mask {path} is not a regular file or folder (FIFO, device, socket): give a mask file or folder")
        moving = animation(path) if path.is_file() else None
        if moving == "webp":  # FFmpeg does not decode animated WebP, OpenCV only its first frame
            raise MaskError(f"mask {path} is an animated WebP, which tsam cannot read frame by frame: "
                            "export the mask as a video, an animated PNG/GIF or a folder of PNG images")
        if path.is_dir():
            source = _FolderMasks(path, self.spec.threshold)
        elif path.suffix.lower() in IMAGE_SUFFIXES and moving is None:
            source = _ImageMask(path, self.spec.threshold)
        else:  # a video, or an animated PNG (decoded by FFmpeg frame by frame)
            source = _VideoMasks(path, self.spec.threshold)
        if source.count is not None and source.count < self.n_frames and self.spec.flag == "--seed":
            raise MaskError(f"--seed {path} has {plural(source.count, 'frame')}: frame {self.n_frames - 1} (--frame) "
                            "is needed - give the --frame the object is drawn on, or a single image")
        if source.count is not None and source.count < self.n_frames:
            raise MaskError(
                f"mask {path} has {plural(source.count, 'frame')} but the video has {plural(self.n_frames, 'frame')}: "
                f"give a mask with at least {plural(self.n_frames, 'frame')} (or one image for all frames)"
            )
        if source.count is not None and source.count > self.n_frames and self.spec.flag == "--mask":
            self.reporter.warn(f"mask has {plural(source.count, 'frame')}, the video {self.n_frames}: extra mask frames ignored")
        if isinstance(source, _VideoMasks) and source.count is not None:
            self._check_rate(source)
        return source

    def _check_rate(self, source: _VideoMasks) -> None:
        """Warn once when the mask video's frame rate is not the video's (beyond ``FPS_MISMATCH``)."""
        mask_fps = float(source.info.fps)
        if not self.fps or not mask_fps or abs(mask_fps / float(self.fps) - 1) <= FPS_MISMATCH:
            return
        self.reporter.warn(
            f"mask video {source.path.name} runs at {mask_fps:.4g} fps, the video at {float(self.fps):.4g} fps: masks "
            "are matched by frame index (mask frame k on video frame k), not by time - re-export the mask at the "
            "video's frame rate if it follows motion"
        )

    # -- per frame ---------------------------------------------------------------------
    def _normalise(self, m: np.ndarray, name: str) -> np.ndarray:
        """Binary ``(h, w) bool`` mask in display orientation -> ``(H, W) bool`` in the video's
        coded orientation at video size, inverted if asked."""
        if self.spec.invert:
            m = ~m
        dw, dh = self.display_size
        if m.shape != (dh, dw):
            import cv2

            if not getattr(self, "_warned_size", False):
                turned = " (the video is shown rotated: masks are drawn as it is shown)" if self.rotation else ""
                self.reporter.warn(
                    f"mask {name} is {m.shape[1]}x{m.shape[0]}, the video {dw}x{dh}{turned}: "
                    "mask resized (nearest neighbour)"
                )
                self._warned_size = True
            m = cv2.resize(m.astype(np.uint8), (dw, dh), interpolation=cv2.INTER_NEAREST) > 0
        return self._to_coded(m)

    def _raw_frames(self) -> Iterator[np.ndarray]:
        """Undilated masks in coded orientation at video size, one per video frame (box union included)."""
        if self._source is None:
            for _ in range(self.n_frames):
                yield self._box
            return
        name = self._source.path.name
        static = None
        for m in self._source.frames(self.n_frames):
            if self._source.count is None:  # one mask for all frames: normalised once, the same array every frame
                static = static if static is not None else self._union(self._normalise(m, name))
                yield static
            else:
                yield self._union(self._normalise(m, name))

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
        """Coverage per frame, measured after dilation (what will really be filled)."""
        fractions, raw_full = [], True
        if self._source is not None and self._source.count is not None:
            self.reporter.start("check mask", self.n_frames)
            for m in self._raw_frames():
                raw_full = raw_full and bool(m.all())
                fractions.append(float(self._dilate(m).mean()))
                self.reporter.advance("check mask")
            if len(fractions) < self.n_frames:
                raise MaskError(
                    f"mask {self.spec.path} decoded to {plural(len(fractions), 'frame')} but the video has "
                    f"{plural(self.n_frames, 'frame')}: repair the mask, or give one with at least "
                    f"{plural(self.n_frames, 'frame')}"
                )
        else:
            static = next(self._raw_frames())
            raw_full = bool(static.all())
            fractions = [float(self._dilate(static).mean())] * self.n_frames
        self.fractions = fractions
        if max(fractions) == 0.0:
            alpha = (
                " (the mask has an alpha channel: a transparent pixel is 'no mask'; a region drawn only "
                "in alpha is used when the colour channels are all black)" if self._source is not None and self._source.alpha_seen else ""
            )
            raise MaskError(
                "the mask is empty (no pixel to fill in any frame): white/non-zero marks the region to "
                f"remove - check the file, --mask-threshold or --invert-mask{alpha}"
            )
        if min(fractions) == 1.0:
            hint = "did you mean --invert-mask?" if raw_full else f"--dilate {self.spec.dilate} grows it over everything: use a smaller --dilate"
            raise MaskError(f"the mask covers every pixel of every frame, so nothing is left to fill from: {hint}")
        big = [i for i, f in enumerate(fractions) if f > LARGE_MASK_FRACTION]
        if big:
            grown = f" after --dilate {self.spec.dilate}" if self.spec.dilate else ""
            have = "has" if len(big) == 1 else "have"
            self.reporter.warn(
                f"{plural(len(big), 'frame')} {have} more than {LARGE_MASK_FRACTION:.0%} masked{grown} (e.g. frame "
                f"{big[0]}: {fractions[big[0]]:.0%}); white/non-zero means 'remove' - use --invert-mask if the "
                "polarity is reversed, or a smaller --dilate"
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``(H, W) bool`` dilated masks, 1 = hole, one per video frame."""
        for m in self._raw_frames():
            yield self._dilate(m)
