"""Flow-guided pixel propagation through time, and the pluggable hole filler for the rest.

Given a window of frames with holes and the pair flows between neighbours, hole pixels
take colours from other frames along chains of *valid* flow correspondences
(:func:`tsam_cli.core.flow.validity`), in two sweeps:

1. backward sweep (content from the future), t = T-2 .. 0: a hole pixel p of frame t
   looks at ``p + fwd_t(p)`` in frame t+1 and takes its colour if that location is known
   or was itself filled by this sweep; ``dist`` counts the hops to a real pixel.
2. forward sweep (content from the past), t = 0 .. T-1: a hole pixel looks at
   ``p + bwd_{t-1}(p)`` in the *completed* frame t-1. Where both sweeps found a colour they
   are blended with weights ``1 / hops`` (nearer frames count more; the completed frame's
   colour times :data:`FORWARD_WEIGHT`); pixels neither sweep
   reaches go to the hole filler, and because the forward sweep reads completed frames,
   a filled region is carried on to the next frames instead of being re-invented each
   frame (less flicker).

Known pixels are never changed. Arrays: frames ``(T, H, W, 3)``, holes ``(T, H, W) bool``
(True = hole), flows as in :mod:`tsam_cli.core.flow`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from tsam_cli.core.flow import PairFlow, in_bounds, sample

#: hop count given to pixels made up by the hole filler: they count ~nothing in blends
FILLER_HOPS = 1000.0

#: weight of the completed previous frame against the backward sweep, on top of ``1 / hops``:
#: that frame is itself mostly a blend of the backward chain one frame earlier, so counting it
#: as an independent estimate counts the same content twice. Measured (docs/benchmarks.md, issue
#: 10): 0.5 lowers the flicker of thin moving holes from 1.31x to 1.28x the floor for -0.01 to
#: -0.1 dB hole PSNR; 0.25 loses 0.15 dB on moving holes, 3 raises flicker (1.35x)
FORWARD_WEIGHT = 0.5


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
    (:class:`_FillerTrail`), so a region no frame shows is filled once, where it first
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


def make_filler(name: str) -> HoleFiller:
    """``--filler`` -> the filler of what propagation cannot reach: ``texture`` (exemplar
    texture for large regions once per window, Telea for the rest) or ``telea``."""
    if name == "telea":
        return TeleaFiller()
    from tsam_cli.core.texture import PatchFiller

    return KeyframeFiller(PatchFiller(), TeleaFiller())


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


def _take_from(src: np.ndarray, src_ok: np.ndarray, src_dist: np.ndarray, flow: np.ndarray,
               valid: np.ndarray, want: np.ndarray):
    """Sample ``src`` at ``p + flow(p)`` for pixels in ``want`` with a valid correspondence.

    The source location must be fully available (all 4 bilinear neighbours in ``src_ok``).
    Returns ``(values (H,W,3) float32, ok (H,W) bool, dist (H,W) float32)``.
    """
    avail = sample(src_ok.astype(np.float32), flow)
    ok = want & valid & in_bounds(flow) & (avail > 0.999)
    if not ok.any():
        return None, ok, None
    values = sample(src, flow)
    dist = sample(src_dist, flow, interpolation=0) + 1.0  # nearest: hop counts don't average
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
    back = _backward_sweep(frames, holes, flows)
    out = frames.copy()
    hops = np.zeros(holes.shape, np.float32)
    unfilled = np.zeros_like(holes)
    prev_img, prev_hops, prev_flow = (None, None, None) if prev is None else prev
    prev_ok = None if prev is None else np.ones(prev_img.shape[:2], bool)
    trail = _FillerTrail(holes.shape[1:], prev_img, prev_hops)
    for t in range(T):
        if holes[t].any():
            before = None if prev_img is None else (prev_img, prev_ok, prev_hops, prev_flow)
            out[t], hops[t], unfilled[t] = _forward_step(frames[t], holes[t], back, t, before, filler)
        trail.step(out[t], hops[t], holes[t], prev_flow)
        prev_img, prev_hops, prev_ok = out[t], hops[t], ~unfilled[t]
        prev_flow = flows[t] if t < T - 1 else None
    return out, hops, unfilled


class _FillerTrail:
    """Keeps what the filler made sharp and identical while the forward sweep carries it.

    The forward sweep copies colours from the completed previous frame, so a filled region
    carried over k frames is resampled k times: with sub-pixel flow (even the 0.1 px noise of a
    still camera) bilinear resampling blurs it a little more at every frame, and a textured
    fill fades into a smear. Here every carried filler pixel remembers the image the filler
    made it in and its position there (the flow chain followed with the nearest neighbour's
    position plus the sub-pixel remainder, as FGVC follows trajectories, Gao et al. ECCV 2020),
    and is sampled from that image once, with a cubic kernel.

    Pixels are told apart by their hop count: exactly ``FILLER_HOPS`` = made by the filler in
    this frame, more = carried filler content (a blend with real propagated content has fewer).
    Only regions of at least ``MIN_TEXTURE_AREA`` pixels are followed: the slivers that appear
    at hole borders are smooth Telea fills with nothing to keep sharp, and following them would
    keep one image per frame alive.
    """

    def __init__(self, shape: tuple[int, int], prev_img: np.ndarray | None, prev_hops: np.ndarray | None) -> None:
        H, W = shape
        gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
        self.grid = np.stack([gx, gy], axis=-1)
        self.images: list[np.ndarray] = []  # the completed frames the filler made colours in
        self.frame = np.full(shape, -1, np.int32)  # index into images, -1 = not filler content
        self.xy = self.grid.copy()
        if prev_img is not None:  # the frame before the window: its filler content is a root here
            self._root(prev_img, prev_hops >= FILLER_HOPS)

    def _root(self, image: np.ndarray, where: np.ndarray) -> None:
        if where.any():
            self.images.append(image.copy())
            self.frame[where] = len(self.images) - 1
            self.xy[where] = self.grid[where]

    def step(self, img: np.ndarray, hops: np.ndarray, hole: np.ndarray, flow: PairFlow | None) -> None:
        """Frame ``img`` was just completed (``hops`` as returned by :func:`propagate`): resample
        its carried filler pixels from their roots (in place) and record the new ones."""
        carried = hole & (hops > FILLER_HOPS)
        frame, xy = np.full_like(self.frame, -1), self.grid.copy()
        if carried.any() and flow is not None:
            ys, xs = np.nonzero(carried)
            H, W = hole.shape
            qx, qy = xs + flow.bwd[ys, xs, 0], ys + flow.bwd[ys, xs, 1]
            ix = np.clip(np.rint(qx).astype(np.int64), 0, W - 1)
            iy = np.clip(np.rint(qy).astype(np.int64), 0, H - 1)
            src = self.frame[iy, ix]
            ok = src >= 0
            frame[ys[ok], xs[ok]] = src[ok]
            xy[ys[ok], xs[ok]] = self.xy[iy[ok], ix[ok]] + np.stack([qx - ix, qy - iy], axis=-1)[ok]
            for k in np.unique(src[ok]):
                sel = frame == k
                img[sel] = _sample_cubic(self.images[k], xy[sel])
        self.frame, self.xy = frame, xy
        made = hole & (hops == FILLER_HOPS)
        if made.sum() >= MIN_TEXTURE_AREA:  # slivers (smooth Telea) are carried like propagated colours
            self._root(img, made)


def _sample_cubic(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(N, 3) uint8`` colours of ``image`` at positions ``xy (N, 2)`` (bicubic, clamped edges)."""
    import cv2

    maps = xy.reshape(-1, 1, 2).astype(np.float32)
    out = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)


def _backward_sweep(frames: np.ndarray, holes: np.ndarray, flows: Sequence[PairFlow]):
    """Content from the future, chained through filled pixels (last frame to first).

    Returns ``(values (T,H,W,3) float32, ok (T,H,W) bool, hops (T,H,W) float32)``: hole
    pixels reached have ``ok`` set and the number of frames their colour travelled.
    """
    b_val = frames.astype(np.float32)
    b_ok = ~holes
    b_dist = np.where(holes, np.inf, 0.0).astype(np.float32)
    for t in range(frames.shape[0] - 2, -1, -1):
        want = holes[t]
        if not want.any():
            continue
        vals, ok, dist = _take_from(b_val[t + 1], b_ok[t + 1], b_dist[t + 1], flows[t].fwd, flows[t].valid_f, want)
        if vals is not None:
            b_val[t][ok] = vals[ok]
            b_dist[t][ok] = dist[ok]
            b_ok[t] = b_ok[t] | ok
    return b_val, b_ok, b_dist


def _forward_step(frame: np.ndarray, hole: np.ndarray, back, t: int, before, filler):
    """Complete frame ``t``: the backward result, blended by inverse hop count with what the
    completed previous frame (``before`` = ``(image, ok, hops, PairFlow)`` or None) gives;
    the rest goes to ``filler`` (or is reported as unfilled when it is None).

    Returns ``(image (H,W,3) uint8, hops (H,W) float32, unfilled (H,W) bool)``.
    """
    b_val, b_ok, b_dist = back
    cur = frame.astype(np.float32)
    cur_hops = np.zeros(hole.shape, np.float32)
    from_b = hole & b_ok[t]
    cur[from_b] = b_val[t][from_b]
    cur_hops[from_b] = b_dist[t][from_b]
    done = ~hole | from_b
    if before is not None:
        prev_img, prev_ok, prev_hops, prev_flow = before
        vals, ok, dist = _take_from(prev_img.astype(np.float32), prev_ok, prev_hops, prev_flow.bwd,
                                    prev_flow.valid_b, hole)
        if vals is not None:
            both, only_f = ok & from_b, ok & ~from_b
            wf, wb = FORWARD_WEIGHT / dist[both], 1.0 / b_dist[t][both]
            cur[both] = (vals[both] * wf[:, None] + b_val[t][both] * wb[:, None]) / (wf + wb)[:, None]
            cur_hops[both] = np.minimum(dist[both], b_dist[t][both])
            cur[only_f] = vals[only_f]
            cur_hops[only_f] = dist[only_f]
            done |= ok
    img = np.clip(np.rint(cur), 0, 255).astype(np.uint8)
    rest = hole & ~done
    unfilled = np.zeros_like(hole)
    if rest.any():
        if filler is not None:
            img[rest] = filler(img, rest)[rest]
            cur_hops[rest] = FILLER_HOPS
        else:
            unfilled = rest
    img[~hole] = frame[~hole]  # known pixels stay bit-exact
    return img, cur_hops, unfilled
