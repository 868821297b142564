"""Outpainting geometry: where the original sits on a larger canvas, and what is new there.

``tsam outpaint`` widens the frame: the new area is a hole that touches the canvas border,
and the inpainting pipeline fills it like any other hole (flow completed there with the
background's motion model, propagation from the frames that show it, the never-seen filler
for the rest). This module only plans the canvas and turns decoded frames and user masks
into canvas frames and holes:

* :func:`plan_canvas` -- from the input's size, rotation and sample aspect ratio and one of
  ``--aspect`` / ``--size`` / ``--pad`` plus ``--anchor`` (all in display orientation, as a
  player shows the video) -> a :class:`Canvas` in the coded (stored) orientation;
* :meth:`Canvas.place` -- ``(H, W, 3) uint8`` frame -> ``(H', W', 3) uint8`` canvas frame, the
  original bit-exact at ``offset``, the new area filled by edge replication (so DIS sees no
  hard black edge; it is a hole anyway);
* :meth:`Canvas.holes` -- ``(H', W') bool``, True = hole: the new area, the placed user mask,
  and black borders to fill in place (``--fill-borders``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from tsam_cli.errors import UsageError
from tsam_cli.media.masks import channel_max
from tsam_cli.options import MAX_SIDE, OutpaintOptions, parse_anchor, parse_aspect, parse_pad, parse_size

#: ``--fill-borders auto``: a pixel is border black when none of its channels is above this
#: (8-bit RGB). Black bars come out of H.264/limited-range decoding at 0-16 with ringing next
#: to the picture edge; 24 keeps a margin without taking dark grey scenery.
BORDER_BLACK = 24
#: auto-detected borders are grown by this many pixels: the edge of a rotated or stabilised
#: picture is interpolated (a blend of black and picture), and that blend must be refilled too
BORDER_GROW = 2
#: an auto-detected dark region touching the edge is a border only if it is at least this many
#: pixels (a dark speck in a corner is content)
MIN_BORDER_AREA = 64
#: the canvas may be at most this many times the input's width or height: beyond it the new area
#: is almost all invented, and one frame of it already costs gigabytes
MAX_GROWTH = 5


def _rotate_pads(pads: tuple[int, int, int, int], rotation: int) -> tuple[int, int, int, int]:
    """Display-orientation ``(left, top, right, bottom)`` -> coded orientation.

    The coded frame is shown turned ``rotation`` degrees clockwise, so coded = display turned
    counter-clockwise: each 90 degree step sends display top to coded left, right to top, ...
    """
    left, top, right, bottom = pads
    for _ in range((rotation // 90) % 4):
        left, top, right, bottom = top, right, bottom, left
    return left, top, right, bottom


@dataclass(frozen=True)
class Canvas:
    """The output canvas of one outpainting run, in coded orientation.

    ``in_size`` / ``size``: ``(W, H)`` of the input and of the canvas; ``offset``: ``(x, y)`` of
    the input's top-left pixel on the canvas. ``bars``: ``(left, top, right, bottom)`` pixels of
    the *input* to fill in place (given ``--fill-borders``); ``auto_borders``: detect near-black
    borders touching the input's edge in every frame. ``notes``: lines for the user.
    """

    in_size: tuple[int, int]
    size: tuple[int, int]
    offset: tuple[int, int]
    bars: tuple[int, int, int, int] = (0, 0, 0, 0)
    auto_borders: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` new pixels around the input (coded orientation)."""
        (w, h), (cw, ch), (x, y) = self.in_size, self.size, self.offset
        return x, y, cw - w - x, ch - h - y

    @property
    def grows(self) -> bool:
        return self.size != self.in_size

    def place(self, frame: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` input frame -> ``(H', W', 3) uint8`` canvas frame; the input's
        pixels unchanged at ``offset``, the new area their edge replicated."""
        import cv2

        if not self.grows:
            return frame
        left, top, right, bottom = self.pads
        return cv2.copyMakeBorder(frame, top, bottom, left, right, cv2.BORDER_REPLICATE)

    def new_area(self) -> np.ndarray:
        """``(H', W') bool``: True = canvas pixel outside the input (a hole in every frame)."""
        (w, h), (cw, ch), (x, y) = self.in_size, self.size, self.offset
        out = np.ones((ch, cw), bool)
        out[y:y + h, x:x + w] = False
        return out

    def input_holes(self, frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``(H, W) bool`` holes inside the input (True = hole): the user's ``mask`` (or none),
        the given bars and the detected borders."""
        w, h = self.in_size
        hole = np.zeros((h, w), bool) if mask is None else mask.copy()
        left, top, right, bottom = self.bars
        # h - 0 = h: a side without a bar is an empty slice
        hole[:top], hole[h - bottom:], hole[:, :left], hole[:, w - right:] = True, True, True, True
        if self.auto_borders:
            hole |= detect_borders(frame)
        return hole

    def outside(self, frame: np.ndarray) -> np.ndarray:
        """``(H', W') bool``: True = no picture there: the new area, and the given bars and the
        detected borders of the input ``frame`` ``(H, W, 3)``."""
        inner = self.input_holes(frame, None)
        if not self.grows:
            return inner
        (w, h), (x, y) = self.in_size, self.offset
        out = self.new_area()
        out[y:y + h, x:x + w] = inner
        return out

    def with_mask(self, outside: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``outside`` (:meth:`outside`) joined with the user's dilated ``mask`` ``(H, W) bool``
        (or None) placed on the canvas: the canvas holes, True = hole."""
        if mask is None:
            return outside
        (w, h), (x, y) = self.in_size, self.offset
        out = outside.copy()
        out[y:y + h, x:x + w] |= mask
        return out

    def holes(self, frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``(H', W') bool`` canvas holes (True = hole) for the input ``frame`` ``(H, W, 3)``
        and the user's dilated ``mask`` ``(H, W) bool`` (or None)."""
        return self.with_mask(self.outside(frame), mask)

    def describe(self, sar: Fraction | None, rotation: int) -> str:
        """One line: input and canvas size, display aspect, where the original sits."""
        (w, h), (cw, ch) = self.in_size, self.size
        turned = rotation in (90, 270)
        dw, dh = (ch, cw) if turned else (cw, ch)
        pixel = float(sar) if sar else 1.0
        aspect = (dw / (dh * pixel)) if turned else (dw * pixel / dh)
        left, top, right, bottom = _rotate_pads(self.pads, (360 - rotation) % 360)
        shown = f"{dw}x{dh}" + (f" (stored {cw}x{ch})" if turned else "")
        sar_text = f", sample aspect {sar.numerator}:{sar.denominator}" if sar else ""
        return (f"outpainting {w}x{h} -> {shown}, display aspect {aspect:.4g}:1{sar_text}; new pixels left {left}, "
                f"top {top}, right {right}, bottom {bottom}")


def detect_borders(frame: np.ndarray, black: int = BORDER_BLACK) -> np.ndarray:
    """Near-black regions touching the frame's edge: letterbox/pillarbox bars, the empty corners
    of a rotated or stabilised picture. ``frame`` ``(H, W, 3) uint8``; returns ``(H, W) bool``,
    True = border to fill (grown by :data:`BORDER_GROW`)."""
    import cv2

    dark = (channel_max(frame) <= black).astype(np.uint8)
    if not dark.any():
        return np.zeros(dark.shape, bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    h, w = dark.shape
    x0, y0, bw, bh, area = (stats[:, i] for i in range(5))
    edge = (x0 == 0) | (y0 == 0) | (x0 + bw == w) | (y0 + bh == h)
    keep = edge & (area >= MIN_BORDER_AREA)
    keep[0] = False  # label 0 is the non-dark rest
    border = keep[labels]
    if border.all():  # an all-black frame is a black frame, not a border
        return np.zeros(dark.shape, bool)
    if BORDER_GROW and border.any():
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BORDER_GROW + 1,) * 2)
        border = cv2.dilate(border.astype(np.uint8), disc) > 0
    return border


def _pixel_aspect(sar: Fraction | None, rotation: int) -> float:
    """Width / height of one displayed pixel (the sample aspect ratio, turned with the picture)."""
    pixel = float(sar) if sar else 1.0
    return 1.0 / pixel if rotation in (90, 270) else pixel


def _aspect_size(dw: int, dh: int, aspect: float, pixel: float) -> tuple[int, int]:
    """The smallest display size holding ``dw x dh`` whose display aspect is ``aspect``."""
    if dw * pixel / dh < aspect:  # wider: grow the width
        return max(dw, math.ceil(aspect * dh / pixel - 1e-9)), dh
    return dw, max(dh, math.ceil(dw * pixel / aspect - 1e-9))


def _display_pads(opts: OutpaintOptions, dw: int, dh: int, pixel: float, even: bool) -> tuple[tuple, list[str]]:
    """``(left, top, right, bottom)`` new display pixels for ``opts``, and notes."""
    notes: list[str] = []
    if opts.pad is not None:
        return parse_pad(opts.pad), notes
    if opts.size is not None:
        tw, th = parse_size(opts.size, "--size")
        if tw < dw or th < dh:
            raise UsageError(f"--size {tw}x{th} is smaller than the {dw}x{dh} input: outpainting only adds "
                             f"pixels; give at least {dw}x{dh} (or crop the video first)")
    elif opts.aspect is not None:
        tw, th = _aspect_size(dw, dh, parse_aspect(opts.aspect), pixel)
        if even and (tw % 2 or th % 2):
            notes.append(f"--aspect gives {tw}x{th}; rounded up to {tw + tw % 2}x{th + th % 2} so that H.264 can "
                         "use 4:2:0 (players need even sizes for it)")
            tw, th = tw + tw % 2, th + th % 2
    else:
        return (0, 0, 0, 0), notes
    fx, fy = parse_anchor(opts.anchor)
    left, top = round((tw - dw) * fx), round((th - dh) * fy)
    return (left, top, tw - dw - left, th - dh - top), notes


def _check_canvas(dw: int, dh: int, pads: tuple, flag: str) -> None:
    """The canvas is a real picture size: at most ``MAX_SIDE`` and ``MAX_GROWTH`` times the input."""
    tw, th = dw + pads[0] + pads[2], dh + pads[1] + pads[3]
    if tw > MAX_SIDE or th > MAX_SIDE:
        raise UsageError(f"{flag} makes the output {tw}x{th}: at most {MAX_SIDE} pixels a side; give a smaller value")
    if tw > MAX_GROWTH * dw or th > MAX_GROWTH * dh:
        raise UsageError(f"{flag} makes the output {tw}x{th} from a {dw}x{dh} input: at most {MAX_GROWTH} times "
                         "its width and height (the rest could only be invented); give a smaller value")


def _flag(opts: OutpaintOptions) -> str:
    for name in ("pad", "size", "aspect"):
        if getattr(opts, name) is not None:
            return f"--{name} {getattr(opts, name)}"
    return "--fill-borders"


def plan_canvas(info, opts: OutpaintOptions, even: bool = False) -> Canvas:
    """The canvas for ``info`` (a :class:`~tsam_cli.media.VideoInfo`: ``width``, ``height``,
    ``rotation``, ``sample_aspect_ratio``) and ``opts``. ``even``: the output is H.264 4:2:0 (a
    lossy video file), so an ``--aspect`` size is rounded up to even sides. Raises UsageError
    for a size smaller than the input or too large, and for bars that cover the whole input."""
    opts.validate()
    turned = info.rotation in (90, 270)
    dw, dh = (info.height, info.width) if turned else (info.width, info.height)
    pads, notes = _display_pads(opts, dw, dh, _pixel_aspect(info.sample_aspect_ratio, info.rotation), even)
    _check_canvas(dw, dh, pads, _flag(opts))
    left, top, right, bottom = _rotate_pads(pads, info.rotation)
    bars, auto = (0, 0, 0, 0), opts.fill_borders == "auto"
    if opts.fill_borders not in (None, "auto"):
        bars = _rotate_pads(parse_pad(opts.fill_borders, "--fill-borders"), info.rotation)
        if bars[0] + bars[2] >= info.width or bars[1] + bars[3] >= info.height:
            raise UsageError(f"--fill-borders {opts.fill_borders} covers the whole {dw}x{dh} input: give the widths "
                             "of the black bars only, left,top,right,bottom")
    if not any(pads) and not any(bars) and not auto and not (opts.mask or opts.box or opts.remove):
        raise UsageError(f"{_flag(opts)} adds nothing to the {dw}x{dh} input: give a larger size, another aspect, "
                         "or --fill-borders")
    size = (info.width + left + right, info.height + top + bottom)
    return Canvas((info.width, info.height), size, (left, top), bars, auto, tuple(notes))
