"""Seeded, on-the-fly generation of the paper's three mask kinds.

TSAM (Zou et al., CVPR 2021), section 4.2 "Mask Types": the model is trained and evaluated
on *moving object-like masks*, *moving curve masks* and *stationary masks*.  Object and
curve masks move in training and evaluation and are grouped by hole area into buckets
from 0-10 % to 60-70 % of the frame; the stationary mask is static in evaluation and moves
with probability 0.5 during training.  "The generation process of these masks follows
previous work [39 (STTN), 6 (FFVI)]".

Where the algorithms come from (re-implemented here, no code copied):

* object-like and curve masks: the moving random-stroke generator of Free-Form Video
  Inpainting (FFVI, Chang et al. 2019), ``src/utils/mask_generators.py::
  get_video_masks_by_moving_random_stroke`` in amjltc295/Free-Form-Video-Inpainting, with
  the ``object_like`` and ``rand_curve`` presets of ``src/scripts/mask_scripts/gen_masks.py``
  (itself after the free-form stroke algorithm of Yu et al., "Free-Form Image Inpainting
  with Gated Convolution", 2019).  FFVI pre-generated masks and then sorted them into 10 %
  area buckets by their *mean* hole ratio over the video (``cluster_by_masked_area``);
  here the same bucketing is reached by seeded rejection sampling on the stroke count.
* stationary masks: ``create_random_shape_with_random_motion`` of STTN, copied into the
  official TSAM repo as ``src/utils/stationary_mask.py``: a closed random cubic-Bezier blob
  with 6-8 sharp edges, bounding box between 1/3 and the full frame size, optionally
  drifting with a random velocity.

Differences from the reference code (all deliberate, none changes the distribution much):

* randomness comes from one ``numpy.random.Generator`` seeded by ``seed`` (the references
  use the global ``random``/``np.random`` state), so a seed always gives the same masks;
* rasterisation uses OpenCV (``cv2.line``/``cv2.circle``/``cv2.fillPoly``) instead of
  PIL/matplotlib; the Bezier blob is sampled as a polygon;
* spatial parameters (brush widths, speeds) are given by FFVI for its 320x180 default
  canvas and are scaled by ``sqrt(H*W / (320*180))`` for other sizes;
* positions of the stationary blob are kept as floats (STTN truncates each step with
  ``int()``, which freezes slow blobs).

Mask convention: **1 = hole** (to be inpainted), 0 = known pixel.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from tsam_cli.data.mask_kinds import KINDS  # kept in a numpy-free module: the CLI lists them at start

#: Area buckets of the paper (§4.2): 0-10 % ... 60-70 % of the frame area.
AREA_BUCKETS: tuple[tuple[float, float], ...] = tuple((i / 10, (i + 1) / 10) for i in range(7))

# FFVI default canvas for which the stroke presets below are specified (gen_masks.py,
# --image_width 320 --image_height 180).
_REF_W, _REF_H = 320, 180


@dataclass(frozen=True)
class StrokePreset:
    """Parameters of FFVI's moving-stroke generator (names follow gen_masks.py)."""

    n_vertex: tuple[int, int]  # nVertexBound
    max_head_speed: float  # maxHeadSpeed
    max_head_accel: tuple[float, float]  # maxHeadAcceleration (speed, angle)
    brush_width: tuple[float, float]  # brushWidthBound
    move_point_ratio: float  # nMovePointRatio
    max_point_move: float  # maxPiontMove
    max_init_speed: float  # maxInitSpeed
    n_stroke: tuple[int, int]  # default stroke-count range when no area bucket is asked


# gen_masks.py get_stroke_preset('object_like') and ('rand_curve'); boarderGap None in both.
# n_stroke defaults are ours (FFVI takes them from the command line, -nsb).
PRESETS: dict[str, StrokePreset] = {
    "object": StrokePreset((5, 30), 15, (10, 1.5), (20, 50), 0.5, 10, 10, (1, 6)),
    "curve": StrokePreset((10, 30), 20, (15, 0.5), (3, 10), 0.5, 3, 6, (5, 30)),
}


def clip_seed(name: str, base_seed: int = 0, salt: str = "") -> int:
    """Deterministic 31-bit seed for a clip name (CRC-32; stable across runs and platforms,
    unlike Python's salted ``hash``)."""
    return (int(base_seed) * 1_000_003 + zlib.crc32(f"{salt}/{name}".encode())) % (2**31)


def generate_masks(
    kind: str,
    T: int,
    H: int,
    W: int,
    *,
    seed: int,
    area: tuple[float, float] | None = None,
    moving: bool | float | None = None,
    max_tries: int = 40,
) -> np.ndarray:
    """Generate a video mask of one of the paper's kinds.

    Args:
        kind: ``"object"`` (moving object-like blobs made of thick strokes), ``"curve"``
            (moving thin free-form strokes) or ``"stationary"`` (one random blob).
        T, H, W: number of frames and frame size in pixels.
        seed: any int; equal arguments and seed always give the same array.
        area: ``(lo, hi)`` fractions of the frame, e.g. ``(0.3, 0.4)``: the *mean* hole
            ratio over the T frames is brought into ``[lo, hi)`` by rejection sampling
            (FFVI's bucketing uses the same per-video mean).  ``None``: no constraint.
            If no sample lands in the bucket after ``max_tries`` attempts the closest one
            is returned (rare; the ratio is then within a few percent of the bucket).
        moving: ``True``/``False`` forces motion on/off; a float p in [0, 1] makes the mask
            move with probability p (training augmentation of the stationary kind uses
            0.5, paper §4.2); ``None`` = the paper's evaluation setting (object and curve
            masks move, stationary masks do not).

    Returns:
        ``np.ndarray`` of shape ``(T, H, W)``, dtype uint8, values in {0, 1}; **1 = hole**.
    """
    area = _checked_request(kind, T, H, W, area)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % (2**63), KINDS.index(kind)]))
    if moving is None:
        move = kind != "stationary"
    elif isinstance(moving, bool):
        move = moving
    else:
        move = bool(rng.random() < float(moving))

    if kind == "stationary":
        return _stationary(rng, T, H, W, area, move, max_tries)
    return _strokes(rng, PRESETS[kind], T, H, W, area, move, max_tries)


def _checked_request(kind: str, T: int, H: int, W: int, area) -> tuple[float, float] | None:
    """ValueError for an unknown kind, a size under 8 px or frames under 1, an area that is
    not ``0 <= lo < hi <= 1``; returns the area as floats (or None)."""
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}: use one of {', '.join(KINDS)}")
    if T < 1 or H < 8 or W < 8:
        raise ValueError(f"mask size too small: T={T}, H={H}, W={W} (need T>=1, H,W>=8)")
    if area is None:
        return None
    lo, hi = float(area[0]), float(area[1])
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"area must be (lo, hi) with 0 <= lo < hi <= 1, got {area}")
    return lo, hi


def hole_ratio(masks: np.ndarray) -> float:
    """Mean fraction of hole pixels (value 1) over all frames of ``(T, H, W)`` masks."""
    return float(np.asarray(masks, dtype=np.float64).mean())


# --------------------------------------------------------------------------- strokes


def _strokes(rng, p: StrokePreset, T, H, W, area, move, max_tries):
    scale = math.sqrt(H * W / (_REF_W * _REF_H))
    if area is None:
        n = int(rng.integers(p.n_stroke[0], p.n_stroke[1] + 1))
        return _stroke_video(rng, p, T, H, W, n, scale, move)

    lo, hi = area
    target = min(max((lo + hi) / 2, 0.01), 0.95)
    # first guess from the expected coverage of one stroke (a polyline of
    # ~mean(n_vertex) segments of ~max_head_speed/2 length, brush ~mean width)
    seg = 0.5 * p.max_head_speed * scale * (sum(p.n_vertex) / 2)
    brush = scale * sum(p.brush_width) / 2
    per_stroke = min(0.5, max(1e-4, seg * brush / (H * W)))
    n = max(1, round(math.log(1 - target) / math.log(1 - per_stroke)))
    best, best_gap = None, math.inf
    for _ in range(max_tries):
        masks = _stroke_video(rng, p, T, H, W, n, scale, move)
        r = hole_ratio(masks)
        if lo <= r < hi and r > 0:
            return masks
        gap = lo - r if r < lo else r - hi + 1e-12
        if gap < best_gap:
            best, best_gap = masks, gap
        # coverage of n independent strokes ~ 1 - (1 - c)^n  =>  rescale n in log space
        r_c = min(max(r, 1e-4), 0.999)
        n_new = n * math.log(1 - target) / math.log(1 - r_c)
        n = int(max(1, min(2000, round(n_new * rng.uniform(0.85, 1.15)))))
    return best


def _random_accelerate(rng, speed, angle, max_acc, gaussian):
    # FFVI mask_generators.random_accelerate: uniform(-d, d) or normal(0, d/2)
    d_speed, d_angle = max_acc
    if gaussian:
        return speed + rng.normal(0, d_speed / 2), angle + rng.normal(0, d_angle / 2)
    return speed + rng.uniform(-d_speed, d_speed), angle + rng.uniform(-d_angle, d_angle)


def _stroke_control_points(rng, p: StrokePreset, H, W, scale):
    # FFVI get_random_stroke_control_points (boarderGap=None in both presets)
    x, y = rng.uniform(0, W), rng.uniform(0, H)
    xs, ys = [x], [y]
    n_vertex = int(rng.integers(p.n_vertex[0], p.n_vertex[1]))
    angle = rng.uniform(0, 2 * np.pi)
    max_speed = p.max_head_speed * scale
    speed = rng.uniform(0, max_speed)
    acc = (p.max_head_accel[0] * scale, p.max_head_accel[1])
    for _ in range(n_vertex):
        speed, angle = _random_accelerate(rng, speed, angle, acc, gaussian=False)
        speed = float(np.clip(speed, 0, max_speed))
        x, y = x + speed * np.sin(angle), y + speed * np.cos(angle)
        xs.append(x)
        ys.append(y)
    # FFVI get_random_velocity(maxInitSpeed, 'guassian'): |N(0, max/2)|, uniform angle
    v_speed = abs(rng.normal(0, p.max_init_speed * scale / 2))
    v_angle = rng.uniform(0, 2 * np.pi)
    return np.array(xs), np.array(ys), (v_speed, v_angle)


def _draw_stroke(canvas, xs, ys, width):
    # FFVI draw_mask_by_control_points: lines of brushWidth, discs of radius width//2-1
    w = max(1, int(round(width)))
    pts = np.round(np.stack([xs, ys], axis=1)).astype(np.int32)
    import cv2

    for a, b in zip(pts[:-1], pts[1:], strict=True):
        cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, thickness=w)
    r = max(0, w // 2 - 1)
    if r > 0:
        for q in pts:
            cv2.circle(canvas, (int(q[0]), int(q[1])), r, 1, thickness=-1)


def _stroke_video(rng, p: StrokePreset, T, H, W, n_stroke, scale, move):
    strokes = []
    for _ in range(n_stroke):
        width = rng.uniform(p.brush_width[0], p.brush_width[1]) * scale
        xs, ys, vel = _stroke_control_points(rng, p, H, W, scale)
        strokes.append([xs, ys, vel, width])
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        if t > 0 and not move:
            out[t] = out[0]
            continue
        if t > 0:
            for s in strokes:
                xs, ys, (v_speed, v_angle), _ = s
                # FFVI random_move_control_points: translate the whole stroke by its
                # velocity (FFVI never stores the accelerated velocity, so it stays
                # constant per stroke), then jitter half of the control points.
                xs = xs + int(v_speed * np.cos(v_angle))
                ys = ys + int(v_speed * np.sin(v_angle))
                k = int(len(xs) * p.move_point_ratio)
                chosen = rng.permutation(len(xs))[:k]
                m = max(1, int(round(p.max_point_move * scale)))
                xs[chosen] += rng.integers(-m, m, size=k)
                ys[chosen] += rng.integers(-m, m, size=k)
                s[0], s[1] = xs, ys
        for xs, ys, _, width in strokes:
            _draw_stroke(out[t], xs, ys, width)
    return out


# --------------------------------------------------------------------------- stationary


def _bezier_blob(rng, edge_num, ratio, n_samples=24):
    """Closed random shape, STTN ``get_random_shape``: ``edge_num`` cubic Bezier segments
    whose 3*edge_num+1 control points lie on the unit circle with radii perturbed by
    ``(2*ratio*u + 1 - ratio)``, u ~ U(0,1).  Returns an (N, 2) polygon in [-1.x, 1.x]."""
    n_pts = edge_num * 3 + 1
    ang = np.linspace(0, 2 * np.pi, n_pts)
    rad = 2 * ratio * rng.random(n_pts) + 1 - ratio
    verts = np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
    verts[-1] = verts[0]
    t = np.linspace(0, 1, n_samples, endpoint=False)[:, None]
    poly = []
    for i in range(edge_num):
        p0, p1, p2, p3 = verts[3 * i : 3 * i + 4]
        poly.append(
            (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        )
    return np.concatenate(poly, 0)


def _stationary(rng, T, H, W, area, move, max_tries):
    best, best_gap = None, math.inf
    shrink = 1.0
    for _ in range(max_tries if area is not None else 1):
        out = _moving_shape(rng, _blob_shape(rng, H, W, area, shrink), T, H, W, move)
        if area is None:
            return out
        r = hole_ratio(out)
        if area[0] <= r < area[1] and r > 0:
            return out
        gap = area[0] - r if r < area[0] else r - area[1] + 1e-12
        if gap < best_gap:
            best, best_gap = out, gap
        target = (area[0] + area[1]) / 2
        shrink *= math.sqrt(target / max(r, 1e-4))
    return best


def _blob_shape(rng, H: int, W: int, area, shrink: float) -> np.ndarray:
    """One random blob, ``(bh, bw)`` uint8 {0, 1}, sized towards ``area`` when given."""
    import cv2

    # STTN: height ~ U{H//3 .. H-1}, width ~ U{W//3 .. W-1}, edges 6-8, ratio 0.6-0.8
    bh = int(rng.integers(H // 3, H))
    bw = int(rng.integers(W // 3, W))
    if area is not None:
        # shrink/grow the bounding box towards the bucket (blob fills ~70 % of it)
        target = (area[0] + area[1]) / 2
        s = math.sqrt(max(target, 1e-3) / 0.7 * H * W / (bh * bw)) * shrink
        bh = int(np.clip(round(bh * s), 3, H))
        bw = int(np.clip(round(bw * s), 3, W))
    edge_num = int(rng.integers(6, 9))
    ratio = int(rng.integers(6, 9)) / 10
    poly = _bezier_blob(rng, edge_num, ratio)
    poly = (poly - poly.min(0)) / np.maximum(poly.max(0) - poly.min(0), 1e-9)
    poly = poly * [bw - 1, bh - 1]
    shape = np.zeros((bh, bw), np.uint8)
    cv2.fillPoly(shape, [np.round(poly).astype(np.int32)], 1)
    return shape


def _moving_shape(rng, shape: np.ndarray, T: int, H: int, W: int, move: bool) -> np.ndarray:
    """``shape`` placed at random and moved over ``T`` frames (or kept still): ``(T, H, W)``.

    Position and motion as STTN's random_move_control_points (max_speed 3, acceleration
    (3, 0.5) gaussian, a new random velocity when hitting the border)."""
    bh, bw = shape.shape
    y, x = rng.uniform(0, H - bh + 1e-9), rng.uniform(0, W - bw + 1e-9)
    speed, angle = rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)  # STTN: U(3) = U[1,3)
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        if t > 0 and not move:
            out[t] = out[0]
            continue
        if t > 0:
            y += speed * np.cos(angle)
            x += speed * np.sin(angle)
            speed, angle = _random_accelerate(rng, speed, angle, (3, 0.5), gaussian=True)
            if y > H - bh or y < 0 or x > W - bw or x < 0:
                speed, angle = abs(rng.normal(0, 1.5)), rng.uniform(0, 2 * np.pi)
            y, x = float(np.clip(y, 0, H - bh)), float(np.clip(x, 0, W - bw))
        iy, ix = int(round(y)), int(round(x))
        out[t, iy : iy + bh, ix : ix + bw] = shape
    return out
