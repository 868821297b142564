"""Flow-guided pixel propagation through time, and the pluggable hole filler for the rest.

Given a window of frames with holes and the pair flows between neighbours, hole pixels
take colours from other frames along chains of *valid* flow correspondences
(:func:`tsam_cli.flow.validity`), in two sweeps and a last pass:

1. backward sweep (content from the future), t = T-2 .. 0: a hole pixel p of frame t
   looks at ``p + fwd_t(p)`` in frame t+1 and takes its colour if that location is known
   or was itself filled by this sweep; ``dist`` counts the hops to a real pixel.
2. forward sweep (content from the past), t = 0 .. T-1: a hole pixel looks at
   ``p + bwd_{t-1}(p)`` in the *completed* frame t-1. Where both sweeps found a colour they
   are blended with weights ``1 / hops`` (nearer frames count more; the completed frame's
   colour times :data:`FORWARD_WEIGHT`); pixels neither sweep
   reaches go to the hole filler, and because the forward sweep reads completed frames,
   a filled region is carried on to the next frames instead of being re-invented each
   frame (less flicker). Where the filler must fill again, its new pixels are blended with the
   completed previous frame seen along the flow (:func:`_steady_fill`), where the colours agree.
3. once the window is complete, every pixel holding the filler's colour is also blended with the
   completed next frame seen along the flow, last frame to first (:func:`_steady_from_future`).

Deep inside large holes colours travel many frames; re-sampling them bilinearly at every hop
would blur them a little more each time, so there both sweeps follow each colour's chain back
to the frame it was copied from and sample it once (:class:`_Roots`, :class:`_Trail`).

Known pixels are never changed. Arrays: frames ``(T, H, W, 3)``, holes ``(T, H, W) bool``
(True = hole), flows as in :mod:`tsam_cli.flow`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tsam_cli.flow.pair import PairFlow
from tsam_cli.flow.warp import bounding_box, grid, in_bounds, sample

#: hop count given to pixels made up by the hole filler: they count ~nothing in blends
FILLER_HOPS = 1000.0

#: weight of the completed previous frame against the backward sweep, on top of ``1 / hops``:
#: that frame is itself mostly a blend of the backward chain one frame earlier, so counting it
#: as an independent estimate counts the same content twice. Measured (docs/benchmarks.md,
#: "Follow-up: blend weight, cubic resampling, filler settings"): 0.5 lowers the flicker of thin moving holes from 1.31x to 1.28x the floor for -0.01 to
#: -0.1 dB hole PSNR; 0.25 loses 0.15 dB on moving holes, 3 raises flicker (1.35x)
FORWARD_WEIGHT = 0.5


#: weight of the completed previous frame, seen along the completed flow, in a pixel the filler
#: makes (:func:`_steady_fill`). Such pixels are where no *valid* chain reaches, so a new fill is
#: made for them each frame, and two fills differ: on removal from fast footage they were 20 % of
#: the hole at 2.9x the original's flicker. A recursive blend with the past (as the blind temporal
#: consistency filters do: Bonneel et al., "Blind video temporal consistency", ACM TOG 34(6),
#: 2015) steadies them. Measured (docs/benchmarks.md, "Fifth session: what the layer check costs
#: removal, and steadier fills"): removal flicker on the fast clips 1.82x -> 1.71x (dev) and
#: 1.82x -> 1.63x (held-out); 0.3: 1.73x (dev); 0.8 was worse than 0.5 (with a 6 px layer check)
FILLER_PAST_WEIGHT = 0.5
#: ... and the blend with the next frame (:data:`FILLER_FUTURE_WEIGHT`) only where the two
#: colours differ by less than this (grey levels, largest channel): a larger difference is another
#: surface (the chain was refused for a reason: a subject next to a hole ring), not the fill's
#: frame-to-frame noise. Without it a ring around the bmx rider lost
#: 0.4-0.6 dB; 60 keeps it within 0.1 dB and the whole removal gain; 30 keeps less (1.75x)
FILLER_BLEND_MAX_DIFF = 60.0
#: weight of the completed *next* frame, seen along the completed flow, in every pixel of a frame
#: that holds the filler's colour (made there or carried on), blended once the forward sweep has
#: completed the window, from its last frame to its first (:func:`_steady_from_future`; the same
#: colour limit). :data:`FILLER_PAST_WEIGHT` steadies such a pixel with the past only, so a region
#: the filler makes again still jumps where the new fill starts, and carried colours drift with
#: the completed flow's error; with the future blended in, each frame is a recursive average over
#: both directions (a forward-backward filter). Measured (docs/benchmarks.md, "Seventh session:
#: the filler's pixels steadied from both sides"), removal from the fast clips, pixel-weighted:
#: dev 1.32x -> 1.28x the original's flicker (fast frames 1.39x -> 1.30x), +0.13 dB hole PSNR;
#: 0.7 gave the same as 0.5. The next frame is sampled with a cubic kernel: bilinear gave the
#: same removal numbers but cost synthetic blobs 0.006-0.010 of sharpness (cubic 0.001-0.002).
#: Propagated pixels are left alone: blending them too (0.25) took their flicker below the
#: original's own, i.e. it blurs them
FILLER_FUTURE_WEIGHT = 0.5

#: a colour that travelled at least this many frames, at a pixel :data:`FOLLOW_DEPTH` px or more
#: inside the hole, is sampled once from the frame it was copied from (cubic), not at every hop
FOLLOW_HOPS = 3
#: px from the hole's border from which colours are followed (:data:`FOLLOW_HOPS`). Measured
#: (docs/benchmarks.md, "Third round: colours followed to where they came from"; 12 clips): hole sharpness 0.661 -> 0.714
#: (stationary blobs) and 0.817 -> 0.866 (moving blobs), moving-blob hole PSNR +0.2 dB, flicker
#: 0.99x -> 1.09x and 1.04x -> 1.14x of the floor. Near the border (thin holes) and for short
#: chains the per-hop resampling is kept: there it smooths frame-to-frame jitter, and following
#: raised the flicker of thin strokes from 1.28x to 1.35-1.46x (depth 8: 1.29x, depth 10: 1.28x)
FOLLOW_DEPTH = 10.0


class HoleFiller(Protocol):
    """Fills what propagation could not: ``(H, W, 3) uint8`` + ``(H, W) bool`` -> image."""

    name: str

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray: ...


class TeleaFiller:
    """Per-frame OpenCV inpainting (Telea 2004), the classical fallback."""

    name = "telea"

    def __init__(self, radius: int = 5) -> None:
        self.radius = radius

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.inpaint(image, hole.astype(np.uint8), self.radius, cv2.INPAINT_TELEA)


#: regions smaller than this (pixels at the processing size) go to the fast filler: texture
#: needs room to show, and the slivers that appear at hole borders every frame must stay cheap
MIN_TEXTURE_AREA = 400


class KeyframeFiller:
    """The texture filler for large regions, at most ``per_window`` times per window; the fast
    filler for everything else.

    What a filler makes is carried on to the next frames (and windows) by the forward sweep
    (:class:`_Trail`), so a region no frame shows is filled once, where it first
    appears, and that fill is then used as if it were known: the keyframe fill of FGVC (Gao
    et al., ECCV 2020). The budget bounds the cost of the slow texture filler (about 1 s at
    432x240): once per window of 40 frames is ~0.01 s/frame. Call :meth:`new_window` at
    the start of each window (a shot cut in a window adds a call: the next shot needs its own).
    """

    def __init__(self, texture: HoleFiller, fast: HoleFiller, per_window: int = 1,
                 min_area: int = MIN_TEXTURE_AREA) -> None:
        self.texture, self.fast, self.per_window, self.min_area = texture, fast, per_window, min_area
        self.name = f"{getattr(texture, 'name', 'texture')}+{getattr(fast, 'name', 'fast')}"
        self.left = per_window

    def new_window(self, shots: int = 1) -> None:
        """A new window holding ``shots`` shots (1 + the cuts in it): each shot gets its budget."""
        self.left = self.per_window * shots

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if self.left > 0 and int(hole.sum()) >= self.min_area:
            self.left -= 1
            return self.texture(image, hole)
        return self.fast(image, hole)


def make_filler(name: str, threads: int = 1) -> HoleFiller:
    """``--filler`` -> the filler of what propagation cannot reach: ``texture`` (exemplar
    texture for large regions once per window, Telea for the rest; its patch work split over
    ``threads`` threads, the same result for any number) or ``telea``."""
    if name == "telea":
        return TeleaFiller()
    from tsam_cli.core.texture import PatchFiller

    return KeyframeFiller(PatchFiller(threads=threads), TeleaFiller())


class ScaledFiller:
    """Runs a filler at a smaller size and pastes its result into the full-size hole.

    For full-resolution propagation: what propagation cannot reach is invented at the
    processing size (cheaper, and no sharper at full size anyway), then upscaled (bicubic).
    """

    def __init__(self, filler: HoleFiller, size: tuple[int, int]) -> None:
        self.filler, self.size = filler, size
        self.name = f"{getattr(filler, 'name', 'filler')}@{size[0]}x{size[1]}"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        H, W = hole.shape
        small = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.float32), self.size, interpolation=cv2.INTER_AREA) > 0
        filled = cv2.resize(self.filler(small, small_hole), (W, H), interpolation=cv2.INTER_CUBIC)
        out = image.copy()
        out[hole] = filled[hole]
        return out


#: px around the window's holes that propagation computes (:class:`_Box`): one, so that the ring of
#: known pixels next to every hole is in the box. The nearest known pixel of a hole pixel always
#: lies in that ring or nearer (clamping a farther one to the ring brings it closer), so the
#: distance transform behind "deep inside" reads the same on the box as on the whole frame
BOX_MARGIN = 1


def holes_box(holes: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the part of a window's frames :func:`propagate` reads its flows and
    validity on (the bounding box of ``holes`` (T, H, W) bool grown by :data:`BOX_MARGIN`);
    None without holes. Flows brought to full size need be computed there only."""
    return bounding_box(holes.any(axis=0), BOX_MARGIN)


@dataclass(frozen=True)
class _Box:
    """The part of the frames propagation computes: the bounding box of every hole of the window
    grown by :data:`BOX_MARGIN` (the whole frame when the holes reach every side, as outpainting's
    strips do). Known pixels never change, so outside it the result is the input; what is sampled
    (the source frames) stays whole, since a flow may point anywhere. Per-pixel work then scales
    with the holes, not the frame."""

    y0: int
    y1: int
    x0: int
    x1: int
    H: int
    W: int

    @classmethod
    def around(cls, holes: np.ndarray) -> _Box:
        """The box of ``holes`` (T, H, W) bool; the whole frame when there is no hole."""
        box = holes_box(holes)
        return cls.whole(*holes.shape[1:]) if box is None else cls(*box, *holes.shape[1:])

    @classmethod
    def whole(cls, H: int, W: int) -> _Box:
        """The whole ``H x W`` frame."""
        return cls(0, H, 0, W, H, W)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """The box of a frame-sized array ``(H, W, ...)`` (a view)."""
        return a[self.y0:self.y1, self.x0:self.x1]

    def of_window(self, a: np.ndarray) -> np.ndarray:
        """The box of every frame of a window-sized array ``(T, H, W, ...)`` (a view)."""
        return a[:, self.y0:self.y1, self.x0:self.x1]

    @property
    def at(self) -> tuple[int, int]:
        return self.y0, self.x0

    def grid(self) -> np.ndarray:
        """``(h, w, 2) float32``: the box's pixels' positions ``(x, y)`` in the frame (a new array)."""
        return np.stack([self(g) for g in grid(self.H, self.W)], axis=-1)

    def lookup(self, frame: np.ndarray, xy: np.ndarray, iy: np.ndarray, ix: np.ndarray, outside: int):
        """Entries of box-sized ``frame`` (h, w) int32 and ``xy`` (h, w, 2) float32 at frame pixels
        ``(iy, ix)``: outside the box, ``outside`` and the pixel's own position (a known pixel
        that is its own root). Returns ``(root (N,) int32, position (N, 2) float32)``."""
        inside = (iy >= self.y0) & (iy < self.y1) & (ix >= self.x0) & (ix < self.x1)
        root = np.full(len(iy), outside, np.int32)
        pos = np.stack([ix, iy], axis=-1).astype(np.float32)
        ly, lx = iy[inside] - self.y0, ix[inside] - self.x0
        root[inside], pos[inside] = frame[ly, lx], xy[ly, lx]
        return root, pos


def _take_from(src: np.ndarray, src_ok: np.ndarray, src_dist: np.ndarray, flow: np.ndarray,
               valid: np.ndarray, want: np.ndarray, box: _Box):
    """Sample ``src`` at ``p + flow(p)`` for pixels in ``want`` with a valid correspondence.

    ``src`` (H, W, 3), ``src_ok`` (H, W) bool, ``src_dist`` (H, W): whole frames; ``flow``,
    ``valid``, ``want``: the ``box`` of the target frame. The source location must be fully
    available (all 4 bilinear neighbours in ``src_ok``).
    Returns ``(values (h,w,3) float32, ok (h,w) bool, dist (h,w) float32)`` on the box.
    """
    avail = sample(src_ok.astype(np.float32), flow, at=box.at)
    ok = want & valid & in_bounds(flow, box.at, (box.H, box.W)) & (avail > 0.999)
    if not ok.any():
        return None, ok, None
    values = sample(src, flow, at=box.at)
    dist = sample(src_dist, flow, interpolation=0, at=box.at) + 1.0  # nearest: hop counts don't average
    return values, ok, dist


def propagate(
    frames: np.ndarray,
    holes: np.ndarray,
    flows: Sequence[PairFlow],
    filler: HoleFiller | None = None,
    prev: tuple[np.ndarray, np.ndarray, PairFlow] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill the holes of a window of frames.

    Args:
        frames: ``(T, H, W, 3) uint8`` RGB; values inside holes are ignored.
        holes: ``(T, H, W) bool``, True = hole.
        flows: ``T - 1`` :class:`PairFlow` for pairs (t, t+1).
        filler: fills pixels no flow chain reaches; ``None`` leaves them (and reports them).
        prev: optional ``(completed_frame (H,W,3) uint8, hops (H,W) float32, PairFlow)`` of
            the frame just before this window (already output), so a long video processed
            in windows stays continuous across window borders.
    Returns:
        ``(out (T,H,W,3) uint8, hops (T,H,W) float32, unfilled (T,H,W) bool)``: ``hops`` is
        0 for known pixels, the number of frames a colour travelled, or ``FILLER_HOPS``;
        ``unfilled`` is non-empty only when ``filler`` is None.
    """
    T = frames.shape[0]
    if len(flows) != T - 1:
        raise ValueError(f"need {T - 1} pair flows for {T} frames, got {len(flows)}")
    box = _Box.around(holes)
    deep = _deep_inside(box.of_window(holes))
    back = _backward_sweep(frames, holes, flows, deep, box)
    out = frames.copy()
    hops = np.zeros(holes.shape, np.float32)
    unfilled = np.zeros_like(holes)
    prev_img, prev_hops, prev_flow = (None, None, None) if prev is None else prev
    prev_ok = None if prev is None else np.ones(prev_img.shape[:2], bool)
    trail = _Trail(box, prev_img)
    for t in range(T):
        carried = np.zeros(deep.shape[1:], bool)
        if holes[t].any():
            before = None if prev_img is None else (prev_img, prev_ok, prev_hops, prev_flow)
            img, hop, rest, carried = _forward_step(frames[t], holes[t], back, t, before, filler, box)
            box(out[t])[...], box(hops[t])[...], box(unfilled[t])[...] = img, hop, rest
        made = box(hops[t]) >= FILLER_HOPS
        trail.step(out[t], carried & (made | _followed(box(hops[t]), deep[t])), made & ~carried, prev_flow)
        prev_img, prev_hops, prev_ok = out[t], hops[t], ~unfilled[t]
        prev_flow = flows[t] if t < T - 1 else None
    _steady_from_future(out, hops, flows, box)
    return out, hops, unfilled


class _Trail:
    """Samples colours the forward sweep carries from where they were made, once.

    The forward sweep copies colours from the completed previous frame, so a colour carried over
    k frames is resampled k times: with sub-pixel flow (even the 0.1 px noise of a still camera)
    bilinear resampling blurs it a little more at every frame, and a textured fill fades into a
    smear. Here every carried pixel it is told to follow remembers the completed frame its
    colour was made in (known, copied from the backward sweep, blended or filled there) and its
    position there (the flow chain followed with the nearest neighbour's position plus the
    sub-pixel remainder, as FGVC follows trajectories, Gao et al. ECCV 2020), and is sampled from
    that frame once, with a cubic kernel.

    A filler region under ``MIN_TEXTURE_AREA`` pixels is no root: such slivers at hole borders are
    smooth Telea fills with nothing to keep sharp; they are carried like propagated colours.
    """

    def __init__(self, box: _Box, prev_img: np.ndarray | None) -> None:
        self.box, self.grid = box, box.grid()
        self.images: list[np.ndarray] = []  # completed frames (not copies), by root index
        # root index of each pixel of the box in the last frame (-1 none), and its position there;
        # outside the box every pixel is known, so a root of the last frame (as `_chained` reads it)
        self.frame = np.full(self.grid.shape[:2], -1, np.int32)
        self.xy = self.grid.copy()
        if prev_img is not None:  # the frame before the window: every pixel is a root there
            self.images.append(prev_img)
            self.frame[:] = 0

    def step(self, img: np.ndarray, follow: np.ndarray, made: np.ndarray, flow: PairFlow | None) -> None:
        """Frame ``img`` (H, W, 3) uint8 was just completed; ``follow`` (h, w) bool (the box) = its
        pixels copied from the previous frame only, to be resampled from their roots (in place);
        ``made`` = its pixels the filler made. The pixels not followed are roots here."""
        frame, xy = np.full_like(self.frame, -1), self.grid.copy()
        if follow.any() and flow is not None:
            ys, xs = np.nonzero(follow)
            src, pos, _ = _chained(self.frame, self.xy, ys, xs, self.box(flow.bwd), self.box, len(self.images) - 1)
            ok = src >= 0
            frame[ys[ok], xs[ok]] = src[ok]
            xy[ys[ok], xs[ok]] = pos[ok]
            for k in np.unique(src[ok]):
                sel = frame == k
                self.box(img)[sel] = _sample_cubic(self.images[k], xy[sel])
        self.images.append(img)
        root = ~follow
        if made.sum() < MIN_TEXTURE_AREA:
            root &= ~made
        frame[root] = len(self.images) - 1
        self.frame, self.xy = frame, xy


def _chained(frame: np.ndarray, xy: np.ndarray, ys: np.ndarray, xs: np.ndarray, flow: np.ndarray,
             box: _Box, outside: int):
    """One hop of a colour chain, for both sweeps: pixels ``(ys, xs)`` of the box copy the frame
    described by ``frame`` / ``xy`` (the box's pixels' root index, -1 none, and their positions
    there, ``(h, w)`` and ``(h, w, 2)``; a pixel that is its own root holds its own position; a
    pixel outside the box is a known pixel with root ``outside``) at ``q = p + flow(p)``, ``flow``
    the box's ``(h, w, 2)``.

    Returns ``(root (N,), position (N, 2), q (N, 2))`` in frame coordinates: the root and position
    of the pixel nearest to ``q`` plus the sub-pixel remainder ``q - nearest`` (as FGVC follows
    trajectories).
    """
    qx, qy = (xs + box.x0) + flow[ys, xs, 0], (ys + box.y0) + flow[ys, xs, 1]
    ix = np.clip(np.rint(qx).astype(np.int64), 0, box.W - 1)
    iy = np.clip(np.rint(qy).astype(np.int64), 0, box.H - 1)
    root, at = box.lookup(frame, xy, iy, ix, outside)
    pos = at + np.stack([qx - ix, qy - iy], axis=-1)
    return root, pos, np.stack([qx, qy], axis=-1)


def _followed(hops: np.ndarray, deep: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: colours sampled at their root, not per hop (:data:`FOLLOW_HOPS`)."""
    return deep & (hops >= FOLLOW_HOPS)


def _sample_cubic(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(N, C)`` colours of ``image`` (H, W, C) at positions ``xy (N, 2)`` (bicubic, clamped edges)."""
    import cv2

    if len(xy) == 0:  # cv2.remap refuses an empty map
        return np.zeros((0, image.shape[2] if image.ndim == 3 else 1), image.dtype)
    maps = _point_map(xy)
    out = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, image.shape[2] if image.ndim == 3 else 1)[:len(xy)]


#: columns of the map :func:`_point_map` lays points out in: cv2.remap refuses maps of 32767 rows
#: or more (SHRT_MAX), so N points go in rows of this many, never in one column
POINTS_PER_ROW = 4096


def _point_map(xy: np.ndarray) -> np.ndarray:
    """``(rows, cols, 2) float32`` map holding the ``N`` positions ``xy (N, 2)`` in raster order,
    padded with the last one. Each output pixel of ``cv2.remap`` depends on its own map entry
    only, so the layout changes no value; it keeps large regions (a wide outpainted border)
    under remap's row limit."""
    n = len(xy)
    cols = min(n, POINTS_PER_ROW)
    rows = -(-n // cols)
    flat = np.empty((rows * cols, 2), np.float32)
    flat[:n] = xy
    flat[n:] = xy[-1]
    return flat.reshape(rows, cols, 2)


def _deep_inside(holes: np.ndarray) -> np.ndarray:
    """``(T, H, W) bool``: hole pixels at least ``FOLLOW_DEPTH`` px (L2) from the nearest known pixel."""
    import cv2

    out = np.zeros(holes.shape, bool)
    for t in np.flatnonzero(holes.reshape(len(holes), -1).any(axis=1)):
        out[t] = cv2.distanceTransform(holes[t].astype(np.uint8), cv2.DIST_L2, 3) >= FOLLOW_DEPTH
    return out


def _backward_sweep(frames: np.ndarray, holes: np.ndarray, flows: Sequence[PairFlow], deep: np.ndarray, box: _Box):
    """Content from the future, chained through filled pixels (last frame to first).

    Colours of ``deep`` pixels (``(T, h, w) bool``, the ``box``) that travelled ``FOLLOW_HOPS``
    frames or more are sampled once from the frame they were copied from (:class:`_Roots`).
    Returns ``(values (T,h,w,3) float32, ok (T,h,w) bool, hops (T,h,w) float32)`` on the box:
    hole pixels reached have ``ok`` set and the number of frames their colour travelled.
    """
    swept = _Swept(frames, holes, box)
    roots = _Roots(box.of_window(holes), box)
    for t in range(frames.shape[0] - 2, -1, -1):
        want, vals = box(holes[t]), None
        fwd = box(flows[t].fwd)
        if want.any():
            vals, ok, dist = _take_from(*swept.whole(t + 1), fwd, box(flows[t].valid_f), want, box)
        if vals is None:
            roots.skip(t)
            continue
        roots.trace(t, fwd, ok, ok & _followed(dist, deep[t]), vals, swept.colours)
        swept.vals[t][ok] = vals[ok]
        swept.dist[t][ok] = dist[ok]
        swept.ok[t] |= ok
    return swept.vals, swept.ok, swept.dist


class _Swept:
    """The backward sweep's result, kept on the ``box`` only: outside it every pixel is known and
    is its own frame's colour, so whole frames (which a flow may point anywhere in) are made from
    ``frames`` when a frame is sampled, instead of a float copy of the whole window (at 960x540,
    50 frames: 311 MB, and most of the sweep's time went to making it).

    ``vals`` ``(T, h, w, 3) float32``, ``ok`` ``(T, h, w) bool`` (known or reached), ``dist``
    ``(T, h, w) float32`` (hops; 0 known, inf not reached). A frame is read whole only once the
    sweep has finished it, so the few kept whole are never stale."""

    KEEP = 4  # whole frames kept: the sweep reads t + 1, and the roots of its chains

    def __init__(self, frames: np.ndarray, holes: np.ndarray, box: _Box) -> None:
        self.frames, self.box = frames, box
        inside = box.of_window(holes)
        self.vals = box.of_window(frames).astype(np.float32)
        self.ok = ~inside
        self.dist = np.where(inside, np.float32(np.inf), np.float32(0))
        self._whole: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def whole(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``k`` whole: ``(values (H,W,3) float32, ok (H,W) bool, hops (H,W) float32)``."""
        if k not in self._whole:
            vals = self.frames[k].astype(np.float32)
            ok = np.ones(vals.shape[:2], bool)
            dist = np.zeros(vals.shape[:2], np.float32)
            self.box(vals)[...], self.box(ok)[...], self.box(dist)[...] = self.vals[k], self.ok[k], self.dist[k]
            if len(self._whole) >= self.KEEP:
                self._whole.pop(next(iter(self._whole)))  # the oldest made
            self._whole[k] = (vals, ok, dist)
        return self._whole[k]

    def colours(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``k`` whole: ``(values (H,W,3) float32, ok (H,W) bool)``."""
        return self.whole(k)[:2]


class _Roots:
    """For the backward sweep: the frame each propagated colour was first copied from, and where.

    A colour chained over k frames by bilinear sampling is low-passed k times; here the chain is
    followed by position (the nearest pixel's root plus the sub-pixel remainder, as FGVC follows
    trajectories, Gao et al. ECCV 2020) and the colour sampled from its root frame once.
    """

    def __init__(self, holes: np.ndarray, box: _Box | None = None) -> None:
        """``holes`` (T, h, w) bool: the window's holes on ``box`` (default: the whole frames)."""
        self.box = box or _Box.whole(*holes.shape[1:])
        self.holes, self.grid = holes, self.box.grid()
        self.skip(len(holes) - 1)

    def skip(self, t: int) -> None:
        """Frame ``t`` took nothing from the next one: its known pixels are their own roots.

        Only the last traced frame is kept (the sweep reads no other): ``frame`` (h, w) int32 = the
        root frame of each pixel of the box, -1 for hole pixels not reached; ``xy`` (h, w, 2)
        float32 = their positions there (their own position until traced). Outside the box every
        pixel is known, its own root: :meth:`trace` reads it as -1, which it treats alike."""
        self.frame = np.where(self.holes[t], -1, t).astype(np.int32)
        self.xy = self.grid.copy()

    def trace(self, t: int, flow: np.ndarray, ok: np.ndarray, follow: np.ndarray, vals: np.ndarray,
              whole: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> None:
        """Pixels ``ok`` of frame ``t`` copy frame ``t + 1`` at ``p + flow(p)``: record their roots;
        for those in ``follow``, replace ``vals`` (in place) by one cubic sample of the root frame
        (``whole(k)`` = its ``(colours (H,W,3) float32, known or reached (H,W) bool)``) at the
        root, where its 4 bilinear neighbours are all known or reached (else the pixel keeps
        the one-hop value, and its chain restarts at frame ``t + 1``). Pixels not followed keep
        the one-hop value but pass their roots on: a chain is followed from where it began."""
        s = t + 1
        ys, xs = np.nonzero(ok)
        root, pos, q = _chained(self.frame, self.xy, ys, xs, flow, self.box, -1)
        root = np.where(root < 0, s, root)  # its own root, or an unreached neighbour (bilinear footprint at an edge): at q
        want = follow[ys, xs] & (root != s)
        for k in np.unique(root[want]):
            sel = np.flatnonzero(want & (root == k))
            image, image_ok = whole(k)
            avail = _sample_linear(image_ok.astype(np.float32), pos[sel]) > 0.999
            vals[ys[sel[avail]], xs[sel[avail]]] = _sample_cubic(image, pos[sel[avail]])
            bad = sel[~avail]  # their value is the one-hop sample: the chain restarts at frame s
            root[bad], pos[bad] = s, q[bad]
        self.skip(t)
        self.frame[ys, xs], self.xy[ys, xs] = root, pos


def _sample_linear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(N,)`` values of a one-channel ``image`` (H, W) float32 at ``xy (N, 2)`` (bilinear, 0 outside)."""
    import cv2

    if len(xy) == 0:  # cv2.remap refuses an empty map
        return np.zeros(0, np.float32)
    maps = _point_map(xy)
    return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0).ravel()[:len(xy)]


def _forward_step(frame: np.ndarray, hole: np.ndarray, back, t: int, before, filler, box: _Box):
    """Complete frame ``t`` (``frame`` (H, W, 3) uint8, ``hole`` (H, W) bool) on ``box``: the
    backward result, blended by inverse hop count with what the completed previous frame
    (``before`` = ``(image, ok, hops, PairFlow)``, whole frames, or None) gives; the rest goes
    to ``filler`` (or is reported as unfilled when it is None).

    Returns, on the box, ``(image (h,w,3) uint8, hops (h,w) float32, unfilled (h,w) bool,
    carried (h,w) bool)``: ``carried`` = the pixels copied from the previous frame only.
    """
    b_val, b_ok, b_dist = (a[t] for a in back)  # the backward sweep's result is on the box
    known, hole = box(frame), box(hole)
    cur = known.astype(np.float32)
    cur_hops = np.zeros(hole.shape, np.float32)
    from_b = hole & b_ok
    cur[from_b] = b_val[from_b]
    cur_hops[from_b] = b_dist[from_b]
    done, vals = ~hole | from_b, None
    if before is not None:
        prev_img, prev_ok, prev_hops, prev_flow = before
        vals, ok, dist = _take_from(prev_img.astype(np.float32), prev_ok, prev_hops, box(prev_flow.bwd),
                                    box(prev_flow.valid_b), hole, box)
        if vals is not None:
            both, only_f = ok & from_b, ok & ~from_b
            wf, wb = FORWARD_WEIGHT / dist[both], 1.0 / b_dist[both]
            cur[both] = (vals[both] * wf[:, None] + b_val[both] * wb[:, None]) / (wf + wb)[:, None]
            cur_hops[both] = np.minimum(dist[both], b_dist[both])
            cur[only_f] = vals[only_f]
            cur_hops[only_f] = dist[only_f]
            done |= ok
    img = np.clip(np.rint(cur), 0, 255).astype(np.uint8)
    rest = hole & ~done
    unfilled = np.zeros_like(hole)
    carried = hole & ~from_b & done  # copied from the previous frame only
    if rest.any():
        if filler is not None:
            img[rest] = box(_fill_whole(filler, frame, img, rest, box))[rest]
            cur_hops[rest] = FILLER_HOPS
            if before is not None:
                _steady_fill(img, rest, before, box, vals)
        else:
            unfilled = rest
    img[~hole] = known[~hole]  # known pixels stay bit-exact
    return img, cur_hops, unfilled, carried


def _steady_fill(img: np.ndarray, made: np.ndarray, before, box: _Box, past: np.ndarray | None = None) -> None:
    """Blend the filler's pixels ``made`` (``(h, w) bool`` on the ``box``) of ``img`` (``(h, w, 3)
    uint8``, in place) with the completed previous frame seen along the completed flow
    (``before`` = ``(image, ok, hops, PairFlow)``), by :data:`FILLER_PAST_WEIGHT`, where the two
    colours are within :data:`FILLER_BLEND_MAX_DIFF`; nothing when no pixel of the box links the
    two frames (a shot cut). ``past`` (``(h, w, 3) float32``): that frame already sampled along
    the flow on the box (the forward sweep's own sample, when it made one); else sampled here."""
    prev_img, _, _, prev_flow = before
    flow = box(prev_flow.bwd)
    if past is None:
        if not box(prev_flow.valid_b).any():
            return
        past = sample(prev_img.astype(np.float32), flow, at=box.at)
    _blend_close(img, made, past, flow, box, FILLER_PAST_WEIGHT)


def _steady_from_future(out: np.ndarray, hops: np.ndarray, flows: Sequence[PairFlow], box: _Box) -> None:
    """After the forward sweep: blend every pixel holding the filler's colour (``hops`` >=
    :data:`FILLER_HOPS`) of ``out`` (``(T, H, W, 3) uint8``, in place) with the completed next
    frame seen along the completed flow ``t -> t+1``, by :data:`FILLER_FUTURE_WEIGHT`, from the
    window's last frame to its first (each frame reads its already blended successor); not
    across a pair no flow links (a shot cut). The next frame is sampled with a cubic kernel."""
    import cv2

    for t in range(len(out) - 2, -1, -1):
        made = box(hops[t]) >= FILLER_HOPS
        if not made.any() or not box(flows[t].valid_f).any():
            continue
        flow = box(flows[t].fwd)
        # cubic: a bilinear sample of the next frame blurs the carried texture it is blended into
        future = sample(out[t + 1].astype(np.float32), flow, interpolation=cv2.INTER_CUBIC, at=box.at)
        _blend_close(box(out[t]), made, future, flow, box, FILLER_FUTURE_WEIGHT)


def _blend_close(img: np.ndarray, made: np.ndarray, other: np.ndarray, flow: np.ndarray, box: _Box,
                 weight: float) -> None:
    """``img`` (``(h, w, 3) uint8``, the box, in place) at ``made`` (``(h, w) bool``) blended with
    ``other`` (``(h, w, 3) float32``, a neighbouring frame sampled along ``flow``) by ``weight``,
    where ``flow`` lands in the frame and the colours differ by less than :data:`FILLER_BLEND_MAX_DIFF`
    (largest channel): a larger difference is another surface, not the fill's noise."""
    sel = made & in_bounds(flow, box.at, (box.H, box.W)) & (np.abs(other - img).max(axis=2) < FILLER_BLEND_MAX_DIFF)
    mixed = weight * other[sel] + (1 - weight) * img[sel]
    img[sel] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _fill_whole(filler, frame: np.ndarray, img: np.ndarray, rest: np.ndarray, box: _Box) -> np.ndarray:
    """``filler`` on the whole frame (it looks at context around the region, wherever that is):
    ``frame`` (H, W, 3) with the box's ``img`` in place, the hole ``rest`` of the box."""
    whole, hole = frame.copy(), np.zeros((box.H, box.W), bool)
    box(whole)[...], box(hole)[...] = img, rest
    return filler(whole, hole)
