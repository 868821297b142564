"""Mask tracking (``tsam mask track``): IoU against ground truth, speed, and what it costs inpainting.

Measures the outline mode (``--tight``); the default removal mode, recall first, is measured
by ``benchmarks/removal.py``.

1. IoU: seeded with the ground-truth mask of frame 0 of ``../shared/data/bmx-trees`` (JPEG
   frames + PNG masks) and ``../shared/data/schoolgirls`` (mp4 + palette PNG masks), the
   tracker's masks are compared with the ground truth of every frame (IoU at the video
   size, frame 0 excluded from the mean since it is the seed). Baseline, side by side: the
   flow warp alone (``motion="flow", refine=False``), and the default before the learned
   re-fit (one shift per frame + GrabCut). Printed: mean IoU, the per-frame curve every
   ``--every`` frames, seconds per tracked frame (wall, seed-frame training included) and CPU
   seconds per tracked frame (``time.process_time``: less sensitive to other load).
2. Inpainting: a synthetic clip (a real background clip of ``../shared/data/train``,
   :data:`BACKGROUND_CLIP`, with a textured object pasted on it, moving across the frame)
   whose clean background is known.
   The object is tracked from its frame-0 mask, then ``tsam inpaint`` runs (defaults) with the
   tracked mask and with the ground-truth mask; printed: hole PSNR over the object's pixels
   against the clean background for both.

3. Ceiling: the IoU of the ground truth against itself one pixel off (grown, shrunk, moved):
   what a tracker with a boundary one pixel off everywhere would score (``--ceiling-only``).

    python benchmarks/mask_track.py [--clips bmx-trees,schoolgirls] [--every 5] [--no-inpaint] [--ceiling-only]

Needs ``../shared/data``; prints what it skips when that is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import SHARED, psnr  # puts the repository on sys.path

from tsam_cli.masking.track import TrackOptions, iou, track_frames
from tsam_cli.media import iter_frames, list_images, probe
from tsam_cli.ui import NullReporter

CLIPS = {
    "bmx-trees": ("bmx-trees/frames", "bmx-trees/masks"),
    "schoolgirls": ("schoolgirls/schoolgirls.mp4", "schoolgirls/masks"),
}


def load_clip(name: str) -> tuple[list[np.ndarray], np.ndarray, tuple[int, int]]:
    """Frames (list of ``(H, W, 3) uint8``), ground-truth masks ``(T, H, W) bool`` and ``(W, H)``."""
    from tsam_cli.media.masks import read_mask_image

    video, masks = CLIPS[name]
    info = probe(SHARED / video, fps=24 if (SHARED / video).is_dir() else None)
    frames = [f.rgb for f in iter_frames(info)]
    gt = np.stack([read_mask_image(p, None)[0] for p in list_images(SHARED / masks)])
    n = min(len(frames), len(gt))
    return frames[:n], gt[:n], (info.width, info.height)


def run_tracker(frames, gt, size, **overrides) -> tuple[list[float], float, float]:
    """Per-frame IoU (frames 1..T-1), wall and CPU seconds per tracked frame."""
    opts = TrackOptions(box="0,0,1,1", **{"tight": True, **overrides})  # the outline (removal: removal.py)
    c0 = time.process_time()
    res = track_frames(iter(frames), len(frames), size, gt[0], 0, opts, NullReporter())
    cpu = (time.process_time() - c0) / (len(frames) - 1)
    ious = [iou(m, g) for m, g in zip(res.full_masks(), gt, strict=True)][1:]
    return ious, res.seconds_per_frame, cpu


#: the variants compared: the plain flow warp is the baseline, the last one is the default
VARIANTS = [
    ("flow warp (baseline)", {"motion": "flow", "refine": False}),
    ("object shift + GrabCut (default before)", {"motion": "object", "refit": "grabcut"}),
    ("own-motion carry", {"refine": False}),
    ("own-motion carry + GrabCut", {"refit": "grabcut"}),
    ("own-motion carry + colour only", {"net_steps": 0}),
    ("own-motion carry + colour + net (default)", {}),
]


def iou_table(clips: list[str], every: int) -> None:
    print("| clip | method | mean IoU | min IoU | last IoU | frames with IoU >= 0.5 | s/frame | CPU s/frame |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    curves = {}
    for name in clips:
        frames, gt, size = load_clip(name)
        for label, kw in VARIANTS:
            ious, spf, cpu = run_tracker(frames, gt, size, **kw)
            curves[(name, label)] = ious
            good = sum(v >= 0.5 for v in ious)
            print(f"| {name} | {label} | {np.mean(ious):.3f} | {min(ious):.3f} | {ious[-1]:.3f} | "
                  f"{good}/{len(ious)} | {spf:.3f} | {cpu:.3f} |", flush=True)
    print(f"\nper-frame IoU every {every} frames (frame: baseline / default before / default):")
    for name in clips:
        base, before, ours = (curves[(name, VARIANTS[k][0])] for k in (0, 1, -1))
        pts = [f"{i + 1}: {base[i]:.2f}/{before[i]:.2f}/{ours[i]:.2f}" for i in range(0, len(ours), every)]
        print(f"{name}: " + ", ".join(pts))


def one_pixel_off(gt: np.ndarray) -> dict[str, list[float]]:
    """Per-frame IoU (frames 1..T-1) of the ground truth against itself one pixel off: grown,
    shrunk (3x3 square) and moved right by one pixel. A tracker whose boundary is one pixel
    off everywhere scores this: the ceiling the IoU goal sets on boundary accuracy."""
    import cv2

    kernel = np.ones((3, 3), np.uint8)
    out: dict[str, list[float]] = {"grown 1 px": [], "shrunk 1 px": [], "moved 1 px": []}
    for g in gt[1:]:
        u8 = g.astype(np.uint8)
        moved = np.zeros_like(g)
        moved[:, 1:] = g[:, :-1]
        out["grown 1 px"].append(iou(cv2.dilate(u8, kernel) > 0, g))
        out["shrunk 1 px"].append(iou(cv2.erode(u8, kernel) > 0, g))
        out["moved 1 px"].append(iou(moved, g))
    return out


def ceiling_table(clips: list[str]) -> None:
    print("\n| clip | mean object area (px) | IoU, ground truth grown 1 px | shrunk 1 px | moved 1 px |")
    print("| --- | --- | --- | --- | --- |")
    for name in clips:
        _, gt, _ = load_clip(name)
        off = one_pixel_off(gt)
        print(f"| {name} | {gt[1:].sum(axis=(1, 2)).mean():.0f} | " +
              " | ".join(f"{np.mean(v):.3f}" for v in off.values()) + " |", flush=True)


# ---------------------------------------------------------------------------- inpainting
#: a real clip with a moving camera (569x320, 70 frames), resized and cropped to 416x240
BACKGROUND_CLIP = "da_rollercoaster"


def synthetic_clip(n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean background ``(T, 240, 416, 3)``, the same with the object pasted, the object masks
    ``(T, 240, 416) bool``. The object: a 70x90 ellipse of smooth red-orange texture walking
    right 7 px/frame and bobbing 10 px."""
    import cv2

    info = probe(SHARED / "train" / BACKGROUND_CLIP, fps=24)
    bg = []
    for f in iter_frames(info):
        h, w = f.rgb.shape[:2]
        img = cv2.resize(f.rgb, (round(w * 240 / h), 240), interpolation=cv2.INTER_AREA)
        x0 = (img.shape[1] - 416) // 2
        bg.append(img[:, x0 : x0 + 416])
        if len(bg) == n:
            break
    bg = np.stack(bg)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8), (0, 0), 3)
    texture = np.clip(texture.astype(np.int16) - 128 + np.array([200, 60, 40]), 0, 255).astype(np.uint8)
    shape = np.zeros((90, 70), np.uint8)
    cv2.ellipse(shape, (35, 45), (30, 42), 0, 0, 360, 1, -1)
    out, masks = bg.copy(), np.zeros(bg.shape[:3], bool)
    for t in range(len(bg)):
        x, y = 40 + 7 * t, 90 + round(10 * np.sin(t / 5))  # walks right, bobbing
        region = shape[:, : max(0, min(70, 416 - x))] > 0
        sub = out[t, y : y + 90, x : x + region.shape[1]]
        sub[region] = texture[:, : region.shape[1]][region]
        masks[t, y : y + 90, x : x + region.shape[1]] = region
    return bg, out, masks


def inpaint_table() -> None:
    from _common import run_inpaint

    from tsam_cli.media import create_video

    bg, clip, gt = synthetic_clip()
    size = (clip.shape[2], clip.shape[1])
    t0 = time.perf_counter()
    res = track_frames(iter(clip), len(clip), size, gt[0], 0, TrackOptions(box="0,0,1,1", tight=True), NullReporter())
    tracked = np.stack(list(res.full_masks()))
    print(f"\nsynthetic clip ({len(clip)} frames {size[0]}x{size[1]}): tracking {time.perf_counter() - t0:.1f} s, "
          f"mean IoU {np.mean([iou(a, b) for a, b in zip(tracked[1:], gt[1:], strict=True)]):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "in.mkv"
        with create_video(video, *size, Fraction(24), lossless=True) as wr:
            for f in clip:
                wr.write(f)
        print("| mask | hole PSNR (dB, object pixels vs clean background) |")
        print("| --- | --- |")
        for label, masks in [("ground truth", gt), ("tracked", tracked)]:
            mfile = tmp / f"mask_{label[:2]}.mkv"
            with create_video(mfile, *size, Fraction(24), lossless=True) as wr:
                for m in masks:
                    wr.write(np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2))
            out = tmp / f"out_{label[:2]}.mkv"
            run_inpaint(video, mfile, out, lossless=True)
            result = np.stack([f.rgb for f in iter_frames(probe(out))])
            print(f"| {label} | {psnr(result, bg, gt):.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="bmx-trees,schoolgirls")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--no-inpaint", action="store_true")
    ap.add_argument("--ceiling-only", action="store_true",
                    help="only the IoU of the ground truth one pixel off (seconds; no tracking)")
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent")
        return
    print("command: python benchmarks/mask_track.py " + " ".join(sys.argv[1:]))
    clips = args.clips.split(",")
    if not args.ceiling_only:
        iou_table(clips, args.every)
    ceiling_table(clips)
    if not args.no_inpaint and not args.ceiling_only:
        inpaint_table()


if __name__ == "__main__":
    main()
