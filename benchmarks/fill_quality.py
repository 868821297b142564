"""Fill quality: accuracy, temporal flicker and sharpness of the filled hole, per mask kind and method.

Twelve clips (bmx-trees, schoolgirls and ten clips of ``../shared/data/train``), each centre-cropped
to 16:9 and resized to 432x240, at most ``--frames`` frames. Three seeded synthetic hole kinds
(a stationary blob, a moving blob, three moving thin strokes) are drawn over whole frames, so
the original frames are the ground truth of every hole pixel. Inputs are PNG folders, outputs
lossless FFV1 .mkv, every run uses ``--dilate 0``: compression never enters the numbers.

    python benchmarks/fill_quality.py [--set shared|dev|held-out] [--frames 60] [--clips N|name,name]
                                      [--baseline REV] [--methods telea,default,baseline,compact] [--json PATH]

``--set shared`` (default): the twelve clips above. ``dev`` / ``held-out``: the fast-motion clips
of ``benchmarks/clips`` from sources no other benchmark uses (``SOURCES.md`` there: licences,
motion, and which clips are held out; tuning looks at ``dev`` only).

Methods, side by side in one run (each in a fresh interpreter, see ``_common.run_inpaint``):
``telea`` per-frame OpenCV Telea (classical model, ``--no-propagation``), ``default`` this
tree's defaults, ``baseline`` the defaults of ``--baseline REV`` (a temporary git worktree),
``compact`` the shipped compact generator (``--model compact``, on this machine's device).

Metrics (frame-weighted means over all frames of all clips of a mask kind; per clip in ``--json``):

* PSNR / SSIM: whole frame, ``tsam_cli.metrics`` (PSNR capped at 100 dB for identical frames);
  hole PSNR: the same PSNR over the hole pixels of each frame only.
* flicker: grey-level (0-255) difference between the result at t and the result at t+1 warped
  back along the *true* motion (DIS flow of the original frames), over hole pixels of t whose
  flow passes the forward-backward check; "floor" is the same measure on the original frames.
* sharpness: mean Sobel gradient magnitude inside the hole, result over original (1.0 = as
  much detail as the truth; below 1 = blurred, above 1 = noise or seams).
* fast motion: the frames whose median true motion over the hole exceeds 4 px/frame only.
* s/frame: the run's own ``seconds`` (decode to encode) per frame, on a shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import CLIP_DIR, SHARED, baseline_tree, clip_sets, run_inpaint

W, H, FPS = 432, 240, 24
CLIPS = ["bmx-trees", "schoolgirls", "aot_market_stall", "cotracker_bear", "cotracker_paraglide_air",
         "da_rollercoaster", "fresco_corgi", "gsam2_highway_cars", "sam2_coffee_pour", "ta_aquarium",
         "tav_car_turn", "tav_man_surfing"]
KINDS = ["stationary blob", "moving blob", "thin strokes"]
METHODS = ["telea", "default", "baseline", "compact"]
FB_MAX = 0.5  # px: forward-backward flow error above which a pixel is left out of flicker
MIN_PIXELS = 20  # flicker of frame t needs at least this many consistent hole pixels
FAST = 4.0  # px/frame: median true motion over the hole above which a frame is "fast"


# --------------------------------------------------------------------------- clips


def clip_source(name: str) -> Path | None:
    """Frames folder or video file of a clip in ``../shared/data`` or ``benchmarks/clips`` (None when absent)."""
    for p in (SHARED / name / "frames", SHARED / name / f"{name}.mp4", SHARED / "train" / name, CLIP_DIR / name):
        if p.exists():
            return p
    return None


def fit(rgb: np.ndarray) -> np.ndarray:
    """Centre-crop to the 432:240 aspect (no stretching), then resize to 432x240 (area filter)."""
    import cv2

    h, w = rgb.shape[:2]
    cw, ch = min(w, round(h * W / H)), min(h, round(w * H / W))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    return crop if crop.shape[:2] == (H, W) else cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA)


def load_clip(src: Path, n: int) -> np.ndarray:
    """The first ``n`` frames of ``src`` as ``(T, 240, 432, 3) uint8`` RGB."""
    from tsam_cli.media import iter_frames, probe

    return np.stack([fit(f.rgb) for f in itertools.islice(iter_frames(probe(src, fps=FPS if src.is_dir() else None)), n)])


# --------------------------------------------------------------------------- masks


def blob_outline(rng: np.random.Generator, radius: float) -> np.ndarray:
    """``(48, 2)`` offsets of a smooth random blob of mean radius ``radius`` (two low harmonics)."""
    th = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    a2, a3 = rng.uniform(0, 0.15, 2)
    p2, p3 = rng.uniform(0, 2 * np.pi, 2)
    r = radius * (1 + a2 * np.sin(2 * th + p2) + a3 * np.sin(3 * th + p3))
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1)


def bounce(pos: np.ndarray, vel: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Move ``pos`` by ``vel`` in place, reflecting off the box ``[lo, hi]`` (per axis)."""
    pos += vel
    for i in range(2):
        if not lo[i] <= pos[i] <= hi[i]:
            vel[i] = -vel[i]
            pos[i] = np.clip(pos[i], lo[i], hi[i])


def random_velocity(rng: np.random.Generator) -> np.ndarray:
    """A velocity of 1-3 px/frame in a uniformly random direction."""
    speed, ang = rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)
    return np.array([speed * np.cos(ang), speed * np.sin(ang)])


def blob_masks(rng: np.random.Generator, T: int, radius: tuple[float, float], moving: bool) -> np.ndarray:
    """``(T, H, W) bool``: one blob, still or bouncing around the frame at 1-3 px/frame."""
    import cv2

    outline = blob_outline(rng, rng.uniform(*radius))
    reach = np.abs(outline).max(axis=0)
    lo, hi = reach, np.array([W, H]) - 1 - reach
    pos = rng.uniform(lo, hi)
    vel = random_velocity(rng) if moving else np.zeros(2)
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        # shift=4: sub-pixel vertices (1/16 px), so a slow blob moves smoothly
        cv2.fillPoly(out[t], [np.round((outline + pos) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        bounce(pos, vel, lo, hi)
    return out > 0


def stroke_masks(rng: np.random.Generator, T: int, n: int = 3, width: tuple[int, int] = (8, 16)) -> np.ndarray:
    """``(T, H, W) bool``: ``n`` thin polylines (8-16 px wide) each drifting at 1-3 px/frame."""
    import cv2

    strokes = []
    for _ in range(n):
        ang, pts = rng.uniform(0, 2 * np.pi), [np.zeros(2)]
        for _ in range(int(rng.integers(3, 6))):  # 3-5 segments of 25-60 px, turning by up to 0.8 rad
            ang += rng.uniform(-0.8, 0.8)
            pts.append(pts[-1] + rng.uniform(25, 60) * np.array([np.cos(ang), np.sin(ang)]))
        shape = np.array(pts) - np.mean(pts, axis=0)
        strokes.append((shape, rng.uniform([20, 20], [W - 20, H - 20]), random_velocity(rng),
                        int(rng.integers(width[0], width[1] + 1))))
    out = np.zeros((T, H, W), np.uint8)
    lo, hi = np.array([20.0, 20.0]), np.array([W - 20.0, H - 20.0])  # the centre stays in the frame
    for t in range(T):
        for shape, pos, vel, w in strokes:
            pts = np.round((shape + pos) * 16).astype(np.int32)
            cv2.polylines(out[t], [pts], False, 1, w, cv2.LINE_8, 4)
            bounce(pos, vel, lo, hi)
    return out > 0


def make_masks(kind: str, T: int, clip: str, seed: int) -> np.ndarray:
    """The seeded hole of ``kind`` for ``clip``: same clip, kind and seed, same masks."""
    from tsam_cli.data.mask_gen import clip_seed

    rng = np.random.default_rng(clip_seed(clip, seed, salt=kind))
    if kind == "stationary blob":
        return blob_masks(rng, T, (35, 55), moving=False)
    if kind == "moving blob":
        return blob_masks(rng, T, (30, 50), moving=True)
    return stroke_masks(rng, T)


# --------------------------------------------------------------------------- motion of the truth


def grey(rgb: np.ndarray) -> np.ndarray:
    """Grey levels 0-255 as float32 (ITU-R BT.601 weights, OpenCV's RGB2GRAY)."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def true_motion(frames: np.ndarray) -> dict:
    """DIS flow (medium preset) of the original frames, t->t+1 and t+1->t, and for each t the
    sampling maps of the forward flow and the pixels passing the forward-backward check:
    ``|f(x) + b(x + f(x))| < FB_MAX`` (Sundaram, Brox, Keutzer, "Dense point trajectories by
    GPU-accelerated large displacement optical flow", ECCV 2010, eq. 5, as a fixed threshold)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    maps, ok, speed = [], [], []
    for t in range(len(frames) - 1):
        fwd, bwd = dis.calc(g[t], g[t + 1], None), dis.calc(g[t + 1], g[t], None)
        mx, my = gx + fwd[..., 0], gy + fwd[..., 1]
        bwd_at = cv2.remap(bwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
        maps.append((mx, my))
        ok.append(inside & (np.linalg.norm(fwd + bwd_at, axis=2) < FB_MAX))
        speed.append(np.linalg.norm(fwd, axis=2))
    return {"maps": maps, "ok": ok, "speed": speed}


def fast_frames(motion: dict, holes: np.ndarray) -> np.ndarray:
    """``(T,) bool``: frames whose median true motion over the hole exceeds FAST px/frame
    (the last frame has no forward flow and never counts)."""
    fast = np.zeros(len(holes), bool)
    for t, sp in enumerate(motion["speed"]):
        fast[t] = holes[t].any() and float(np.median(sp[holes[t]])) > FAST
    return fast


# --------------------------------------------------------------------------- metrics


def flicker(video: np.ndarray, holes: np.ndarray, motion: dict) -> np.ndarray:
    """``(T,)``: mean |grey(v_t) - grey(v_{t+1}) warped back to t by the true forward flow|
    (bilinear ``cv2.remap``) over the consistent hole pixels of t; NaN where fewer than
    MIN_PIXELS (and for the last frame). The warping-error idea of Lai et al., "Learning
    Blind Video Temporal Consistency", ECCV 2018 (eq. 8), with flow of the truth, not the result."""
    import cv2

    out = np.full(len(video), np.nan)
    for t, ((mx, my), ok) in enumerate(zip(motion["maps"], motion["ok"], strict=True)):
        sel = holes[t] & ok
        if sel.sum() >= MIN_PIXELS:
            back = cv2.remap(grey(video[t + 1]), mx, my, cv2.INTER_LINEAR)
            out[t] = float(np.abs(grey(video[t]) - back)[sel].mean())
    return out


def sobel_mag(rgb: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey frame, 3x3 Sobel (float32)."""
    import cv2

    g = grey(rgb)
    return cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))


def sharpness(result: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``(T,)``: mean Sobel magnitude in the hole of the result / the same of the truth (NaN: no hole)."""
    out = np.full(len(result), np.nan)
    for t in range(len(result)):
        if holes[t].any():
            den = float(sobel_mag(truth[t])[holes[t]].mean())
            out[t] = float(sobel_mag(result[t])[holes[t]].mean()) / den if den > 0 else np.nan
    return out


def ssim_around_holes(truth: np.ndarray, result: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``(T,)``: the same numbers as ``tsam_cli.metrics.ssim.ssim_frames`` when the result equals
    the truth outside the holes, computed on the hole's bounding box grown by the window size
    only: a window without a changed pixel has x == y, hence num == den bit for bit, SSIM 1.0."""
    from tsam_cli.metrics.ssim import WIN_SIZE, ssim_frames, ssim_map

    if not np.array_equal(truth[~holes], result[~holes]):
        return ssim_frames(truth, result)
    n_valid = (H - WIN_SIZE + 1) * (W - WIN_SIZE + 1)
    out = np.ones(len(truth))
    for t in np.flatnonzero(holes.any(axis=(1, 2))):
        ys, xs = np.flatnonzero(holes[t].any(axis=1)), np.flatnonzero(holes[t].any(axis=0))
        y0, y1 = max(0, ys[0] - WIN_SIZE + 1), min(H, ys[-1] + WIN_SIZE)
        x0, x1 = max(0, xs[0] - WIN_SIZE + 1), min(W, xs[-1] + WIN_SIZE)
        m = ssim_map(np.moveaxis(truth[t, y0:y1, x0:x1], -1, 0), np.moveaxis(result[t, y0:y1, x0:x1], -1, 0))
        per_channel = (m.reshape(3, -1).sum(axis=1) + n_valid - m[0].size) / n_valid
        out[t] = per_channel.mean()
    return out


def frame_metrics(result: np.ndarray, truth: np.ndarray, holes: np.ndarray, motion: dict) -> dict:
    """Per-frame arrays of every metric of one result."""
    from tsam_cli.metrics.psnr import psnr_frames

    return {"psnr": psnr_frames(truth, result), "ssim": ssim_around_holes(truth, result, holes),
            "hole_psnr": psnr_frames(truth, result, holes), "flicker": flicker(result, holes, motion),
            "sharpness": sharpness(result, truth, holes)}


# --------------------------------------------------------------------------- runs


def write_inputs(folder: Path, frames: np.ndarray, holes: np.ndarray) -> tuple[Path, Path]:
    """Frames and masks (255 = hole) as PNG folders: lossless inputs."""
    import cv2

    from tsam_cli.media import create_video

    folder.mkdir(parents=True)
    with create_video(folder / "in", W, H, Fraction(FPS)) as wr:
        for f in frames:
            wr.write(f)
    (folder / "mask").mkdir()
    for i, h in enumerate(holes):
        cv2.imwrite(str(folder / "mask" / f"{i:05d}.png"), h.astype(np.uint8) * 255)
    return folder / "in", folder / "mask"


def run_method(opts: dict, root: Path | None, video: Path, mask: Path, out: Path) -> tuple[np.ndarray, float]:
    """One tsam run with ``opts`` (and the tree ``root``); the result frames and its seconds."""
    from tsam_cli.media import iter_frames, probe

    extra = {"root": root} if root is not None else {}
    # only options every revision since 3e87966 knows (old InpaintOptions reject unknown fields);
    # ``opts`` may also carry run_inpaint's ``constants`` and another ``dilate``
    rep = run_inpaint(video, mask, out, **{"dilate": 0, "lossless": True, "fps": FPS, **opts}, **extra)
    return np.stack([f.rgb for f in iter_frames(probe(out))]), float(rep["seconds"])


def method_table(methods: list[str], rev: str | None, tree: Path | None) -> dict[str, tuple[dict, Path | None]]:
    """Label -> (InpaintOptions fields, source tree or None for this one); the baseline's label names ``rev``."""
    spec = {"telea": ({"propagation": False}, None), "default": ({}, None),
            "baseline": ({}, tree), "compact": ({"model": "compact"}, None)}
    return {(f"baseline {rev}" if m == "baseline" else m): spec[m] for m in methods if m != "baseline" or rev}


def shown_in_holes(frames: np.ndarray, holes: np.ndarray, content: str) -> np.ndarray:
    """The input video: ``frames`` ``(T, H, W, 3) uint8`` with ``holes`` ``(T, H, W) bool`` showing
    ``content``: ``truth`` (the frames as they are) or ``grey`` (mid grey, 128)."""
    if content == "truth":
        return frames
    shown = frames.copy()
    shown[holes] = 128
    return shown


def evaluate_clip(clip: str, frames: np.ndarray, methods: dict, seed: int, tmp: Path, content: str = "truth") -> dict:
    """Every mask kind x method on one clip: ``{kind: {"floor":…, "fast":…, method: per-frame…}}``.
    ``content``: what the input shows inside the holes (:func:`shown_in_holes`)."""
    motion = true_motion(frames)
    res = {}
    for k, kind in enumerate(KINDS):
        holes = make_masks(kind, len(frames), clip, seed)
        video, mask = write_inputs(tmp / f"{k}", shown_in_holes(frames, holes, content), holes)
        res[kind] = {"floor": flicker(frames, holes, motion), "fast": fast_frames(motion, holes),
                     "hole_ratio": float(holes.mean())}
        for label, (opts, root) in methods.items():
            out, secs = run_method(opts, root, video, mask, tmp / f"{k}" / f"{label}.mkv")
            changed = int((out != frames)[~holes].sum())
            if changed:
                print(f"  warning: {label} changed {changed} known pixel values", file=sys.stderr)
            m = frame_metrics(out, frames, holes, motion)
            res[kind][label] = {**m, "seconds": secs, "frames": len(frames)}
            print(f"  {clip:<24}{kind:<16}{label:<18}hole PSNR {capped(m['hole_psnr']):6.2f}  flicker "
                  f"{nanmean(m['flicker']):5.2f}  sharp {nanmean(m['sharpness']):4.2f}  {secs / len(frames):.3f} s/fr",
                  file=sys.stderr, flush=True)
    return res


# --------------------------------------------------------------------------- summary


def nanmean(v) -> float:
    v = np.asarray(v, np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def capped(v) -> float:
    from tsam_cli.metrics.psnr import capped_mean

    return capped_mean(np.asarray(v, np.float64))


def pool(per_clip: dict, kind: str, label: str, key: str, pick: str | None = None) -> float:
    """Frame-weighted mean of ``key`` over all clips (``pick="fast"``: fast-motion frames only)."""
    vals = []
    for r in per_clip.values():
        v = np.asarray(r[kind][label][key] if label != "floor" else r[kind]["floor"], np.float64)
        vals.append(v[r[kind]["fast"]] if pick else v)
    v = np.concatenate(vals) if vals else np.zeros(0)
    return capped(v) if "psnr" in key else nanmean(v)


def summary(per_clip: dict, labels: list[str]) -> list[dict]:
    """Rows of the table: all frames, then fast motion; the floor after the methods of each kind."""
    rows = []
    for group in ("all", "fast"):
        pick = "fast" if group == "fast" else None
        for kind in KINDS:
            n = sum(int(r[kind]["fast"].sum()) for r in per_clip.values())
            name = f"fast motion ({n} fr)" if pick else "all frames"
            for label in labels:
                row = {"group": name, "mask": kind, "method": label,
                       "hole_psnr": pool(per_clip, kind, label, "hole_psnr", pick),
                       "flicker": pool(per_clip, kind, label, "flicker", pick)}
                if not pick:
                    secs = sum(r[kind][label]["seconds"] for r in per_clip.values())
                    row.update(psnr=pool(per_clip, kind, label, "psnr"), ssim=pool(per_clip, kind, label, "ssim"),
                               sharpness=pool(per_clip, kind, label, "sharpness"),
                               s_per_frame=secs / sum(r[kind][label]["frames"] for r in per_clip.values()))
                rows.append(row)
            rows.append({"group": name, "mask": kind, "method": "floor (original)", "sharpness": None if pick else 1.0,
                         "flicker": pool(per_clip, kind, "floor", "flicker", pick)})
    return rows


def markdown(rows: list[dict]) -> str:
    cols = [("psnr", "PSNR", ".2f"), ("ssim", "SSIM", ".4f"), ("hole_psnr", "hole PSNR", ".2f"),
            ("flicker", "flicker", ".2f"), ("sharpness", "sharpness", ".3f"), ("s_per_frame", "s/frame", ".3f")]
    lines = ["| rows | mask | method | " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * (3 + len(cols))]
    for r in rows:
        cells = [format(r[k], f) if r.get(k) is not None and not math.isnan(r[k]) else "—" for k, _, f in cols]
        lines.append(f"| {r['group']} | {r['mask']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def clip_ratio(d: dict, label: str, fast: bool) -> float:
    """Mean flicker of ``label`` over the mean of the floor, on one clip and kind (fast frames only)."""
    f, floor = np.asarray(d[label]["flicker"], np.float64), np.asarray(d["floor"], np.float64)
    keep = np.isfinite(f) & np.isfinite(floor) & (d["fast"] if fast else True)
    return float(f[keep].mean() / floor[keep].mean()) if keep.any() and floor[keep].mean() > 0 else math.nan


def per_clip_markdown(per_clip: dict, labels: list[str]) -> str:
    """One row per clip and mask kind: each method's flicker ratio (all / fast frames) and hole PSNR."""
    head = "| clip | mask | fast fr | " + " | ".join(f"{m} flicker (all / fast) | {m} hole PSNR" for m in labels)
    lines = [head + " |", "|" + "---|" * (3 + 2 * len(labels))]
    for clip, r in per_clip.items():
        for kind, d in r.items():
            cells = []
            for m in labels:
                cells += [f"{clip_ratio(d, m, False):.2f}x / {clip_ratio(d, m, True):.2f}x",
                          f"{capped(d[m]['hole_psnr']):.2f}"]
            lines.append(f"| {clip} | {kind} | {int(d['fast'].sum())} | " + " | ".join(cells) + " |")
    return "\n".join(lines).replace("nanx", "—")


def no_nan(x):
    """``x`` with every NaN float replaced by None (strict JSON)."""
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def per_clip_json(per_clip: dict) -> dict:
    """Per clip, kind and method: the mean of each metric (and the floor, fast frame count)."""
    out = {}
    for clip, r in per_clip.items():
        out[clip] = {}
        for kind, d in r.items():
            e = {"hole_ratio": d["hole_ratio"], "fast_frames": int(d["fast"].sum()), "floor_flicker": nanmean(d["floor"])}
            for label, m in d.items():
                if isinstance(m, dict):
                    e[label] = {k: (capped(v) if "psnr" in k else nanmean(v)) if isinstance(v, np.ndarray) else v
                                for k, v in m.items()}
            out[clip][kind] = e
    return out


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="shared", choices=["shared", "dev", "held-out"],
                    help="clip set: the 12 shared clips (default) or benchmarks/clips dev / held-out")
    ap.add_argument("--frames", type=int, default=60, help="at most this many frames per clip (default 60)")
    ap.add_argument("--clips", default=None, help="the first N clips, or comma-separated clip names (default: the set)")
    ap.add_argument("--baseline", default=None, metavar="REV", help="also run the defaults of this git revision")
    ap.add_argument("--methods", default=",".join(METHODS), help="subset of " + ",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows and per-clip means here")
    ap.add_argument("--hole-content", default="truth", choices=["truth", "grey"],
                    help="what the input shows in the holes: the original frames (default: their flow is "
                         "then measured on the truth) or mid grey (nothing of the truth, as in a real removal)")
    args = ap.parse_args()
    pool = CLIPS if args.set == "shared" else clip_sets()[args.set]
    if args.clips is None:
        args.clips = pool
    elif args.clips.isdigit():
        args.clips = pool[:int(args.clips)]
    else:
        args.clips = args.clips.split(",")
    args.methods = [m for m in args.methods.split(",") if m]
    if unknown := set(args.methods) - set(METHODS):
        ap.error(f"unknown method(s) {', '.join(sorted(unknown))}: use {', '.join(METHODS)}")
    return args


def main() -> None:
    args = parse_args()
    if args.set == "shared" and not SHARED.is_dir():
        print(f"fill_quality: {SHARED} not found, nothing to measure (skipped)")
        return
    t0, per_clip = time.time(), {}
    with baseline_tree(args.baseline) as tree, tempfile.TemporaryDirectory() as tmp:
        methods = method_table(args.methods, args.baseline, tree)
        for clip in args.clips:
            src = clip_source(clip)
            if src is None:
                print(f"  {clip}: not in {SHARED}, skipped", file=sys.stderr)
                continue
            per_clip[clip] = evaluate_clip(clip, load_clip(src, args.frames), methods, args.seed, Path(tmp) / clip,
                                           args.hole_content)
    if not per_clip:
        print("fill_quality: none of the clips found (skipped)")
        return
    rows = summary(per_clip, list(methods))
    n = sum(len(next(iter(r.values()))["fast"]) for r in per_clip.values())
    print(f"clips: {len(per_clip)} ({n} frames, 432x240), masks seed {args.seed}, holes show {args.hole_content}, "
          "--dilate 0, lossless in/out; "
          f"{time.time() - t0:.0f} s\n")
    print(markdown(rows))
    print("\nper clip: flicker over the originals' own on the same frames, all frames / fast-motion frames "
          "(fast frame count); hole PSNR\n")
    print(per_clip_markdown(per_clip, list(methods)))
    if args.json:
        doc = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "per_clip": per_clip_json(per_clip)}
        args.json.write_text(json.dumps(no_nan(doc), indent=1))


if __name__ == "__main__":
    main()
