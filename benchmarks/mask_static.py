"""Benchmark of ``tsam mask static``: logos composited onto real clips, IoU with the logo's mask.

Logos (drawn here, no image files): ``solid`` is an opaque channel bug (a rounded box in one
colour with a letter mark in another); ``alpha50`` / ``alpha80`` are a white ring + bar +
letters watermark blended at 50 % / 80 % opacity. Each is put at the top-right corner
(about 15 % of the width) of ``../shared/data/running_car`` (972x540, moving camera), of
two clips of ``../shared/data/train`` with moving cameras and of a hard one, written as H.264 .mp4 (crf 18, as a real video
would be), then ``tsam mask static`` runs on the file. The truth is the logo's own pixels
(alpha > 0). On running_car also the logo whose mask ships beside it
(``mask_logo.png``, ProPainter's round logo, 44 % of the width, centred where the car
drives): white at 60 % and opaque blue. Printed: IoU of the mask with the truth (``--pad 0``, so the mask is compared
as found) and seconds per frame; the baseline row is the naive rule "pixels whose colour
stays within --tolerance in most frames" (the same cleaning-up, no gradient median).

    python benchmarks/mask_static.py [--clips running_car,monst3r_lady_running,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED

#: running_car and two train clips with a moving camera (most of the picture changes); the
#: last one is the hard case: a glider in an almost uniform sky (32 % of the picture changes)
CLIPS = ("running_car", "da_dolphins", "samtrack_blackswan", "cotracker_paraglide_air")
#: "none": the clip as it is, to see false detections (the mask should be empty)
LOGOS = ("solid", "alpha50", "alpha80", "none")
#: on running_car also the logo whose mask ships beside it (mask_logo.png, large, centred)
SHARED_LOGOS = ("shared60", "shared_solid")


def load(name: str) -> tuple[list[np.ndarray], float]:
    """RGB frames of a shared clip at its own size, and its frame rate."""
    from tsam_cli.media import iter_frames, probe

    src = SHARED / name / f"{name}.mp4" if name == "running_car" else SHARED / "train" / name
    info = probe(src, fps=25) if src.is_dir() else probe(src)
    return [f.rgb for f in iter_frames(info)], float(info.fps)


def draw_logo(kind: str, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb (h, w, 3) float32, alpha (h, w) float32)`` of a logo filling a ``w x h`` box."""
    import cv2

    shape = np.zeros((h, w), np.uint8)
    rgb = np.zeros((h, w, 3), np.float32)
    font, scale = cv2.FONT_HERSHEY_DUPLEX, h / 40
    if kind == "solid":
        r = h // 4
        cv2.rectangle(shape, (r, 0), (w - 1 - r, h - 1), 1, -1)
        cv2.rectangle(shape, (0, r), (w - 1, h - 1 - r), 1, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(shape, (cx, cy), r, 1, -1)
        rgb[:] = (200, 30, 40)
        letters = np.zeros((h, w), np.uint8)
        cv2.putText(letters, "TV7", (int(w * 0.12), int(h * 0.72)), font, scale, 1, max(1, h // 16))
        rgb[letters > 0] = (255, 230, 90)
        return rgb, shape.astype(np.float32)
    opacity = 0.5 if kind == "alpha50" else 0.8
    cv2.circle(shape, (h // 2, h // 2), h // 2 - 1, 1, max(2, h // 8))
    cv2.rectangle(shape, (h // 2 - 1, h // 2 - h // 12), (h + 2, h // 2 + h // 12), 1, -1)
    thick = max(1, h // 14)
    fit = (w - h - 8) / cv2.getTextSize("NEWS", font, 1.0, thick)[0][0]  # the word fills the rest
    cv2.putText(shape, "NEWS", (h + 4, int(h * 0.68)), font, min(scale, fit), 1, thick)
    rgb[:] = 255
    return rgb, shape.astype(np.float32) * opacity


def shared_logo(kind: str, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """``../shared/data/running_car/mask_logo.png`` (ProPainter's round logo, centred) as a logo
    over the whole ``w x h`` frame: white at 60 % (``shared60``) or opaque blue (``shared_solid``)."""
    import cv2

    shape = cv2.imread(str(SHARED / "running_car" / "mask_logo.png"), cv2.IMREAD_GRAYSCALE)
    cover = cv2.resize((shape > 127).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[:] = (255, 255, 255) if kind == "shared60" else (30, 60, 200)
    return rgb, cover.astype(np.float32) * (0.6 if kind == "shared60" else 1.0)


def composite(frames: list[np.ndarray], kind: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The logo over every frame (top-right, margin 4 % of the height; the shared logo where its
    mask image puts it) -> (frames, truth mask)."""
    H, W = frames[0].shape[:2]
    truth = np.zeros((H, W), bool)
    if kind == "none":
        return frames, truth
    if kind.startswith("shared"):
        (rgb, alpha), x, y, lw, lh = shared_logo(kind, W, H), 0, 0, W, H
    else:
        lw, lh = round(W * 0.15) // 2 * 2, round(W * 0.15 * 0.45)
        x, y = W - lw - round(H * 0.04), round(H * 0.04)
        rgb, alpha = draw_logo(kind, lw, lh)
    truth[y : y + lh, x : x + lw] = alpha > 0
    out = []
    for f in frames:
        g = f.astype(np.float32)
        patch = g[y : y + lh, x : x + lw]
        g[y : y + lh, x : x + lw] = patch * (1 - alpha[..., None]) + rgb * alpha[..., None]
        out.append(np.clip(np.rint(g), 0, 255).astype(np.uint8))
    return out, truth


def naive_mask(rgb: np.ndarray, opts) -> np.ndarray:
    """Baseline: pixels that do not change (MAD <= tolerance), opened, holes filled, small parts dropped."""
    import cv2

    from tsam_cli.masking.static import changing

    grey = rgb.mean(axis=3, dtype=np.float32)
    still = cv2.morphologyEx((~changing(grey, opts.tolerance)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(still, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    keep = [c for c in contours if cv2.contourArea(c) >= opts.min_area * still.size]
    filled = np.zeros_like(still)
    cv2.drawContours(filled, keep, -1, 1, thickness=cv2.FILLED)
    return filled > 0


def run(path: Path, method: str) -> tuple[np.ndarray, float]:
    """``(H, W) bool`` mask of one method on one video, seconds per frame."""
    import cv2

    from tsam_cli.errors import MaskError
    from tsam_cli.masking.options import StaticMaskOptions
    from tsam_cli.masking.static import read_samples, static_masks
    from tsam_cli.media import probe
    from tsam_cli.ui import NullReporter

    info = probe(path)
    opts = StaticMaskOptions(pad=0)
    t0 = time.perf_counter()
    try:
        if method == "tsam":
            mask = static_masks(info, opts, NullReporter()).mask
        else:
            small = naive_mask(read_samples(info, opts, [], NullReporter()), opts)
            mask = cv2.resize(small.astype(np.float32), (info.width, info.height)) >= 0.5
    except MaskError as exc:
        print(f"    ({method}: {exc})")
        mask = np.zeros((info.height, info.width), bool)
    return mask, (time.perf_counter() - t0) / info.n_frames


def _cell(mask: np.ndarray, truth: np.ndarray) -> tuple[str, float | None]:
    """IoU with the logo; without a logo, the share of the picture masked (should be 0)."""
    if not truth.any():
        return f"{mask.mean():.1%} mask", None
    iou = float((mask & truth).sum() / (mask | truth).sum())
    return f"{iou:.3f}", iou


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(CLIPS))
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is missing: this benchmark needs the shared clips")
    from tsam_cli.media import create_video

    print("command: python benchmarks/mask_static.py " + " ".join(sys.argv[1:]))
    print(f"{'clip':<26}{'logo':<9}{'size':>10}{'IoU naive':>12}{'IoU tsam':>12}{'s/frame':>9}")
    ious: dict[str, list] = {"naive": [], "tsam": []}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            frames, fps = load(clip)
            for kind in LOGOS + (SHARED_LOGOS if clip == "running_car" else ()):
                out, truth = composite(frames, kind)
                path = Path(tmp) / f"{clip}-{kind}.mp4"
                with create_video(path, out[0].shape[1], out[0].shape[0], fps) as writer:
                    for f in out:
                        writer.write(f)
                cells = {}
                for method in ("naive", "tsam"):
                    mask, spf = run(path, method)
                    cells[method], iou = _cell(mask, truth)
                    if iou is not None:
                        ious[method].append(iou)
                size = f"{out[0].shape[1]}x{out[0].shape[0]}"
                print(f"{clip:<26}{kind:<9}{size:>10}{cells['naive']:>12}{cells['tsam']:>12}{spf:>9.3f}")
    for name, fn in (("mean", np.mean), ("min", np.min)):
        print(f"{name + ' IoU':<26}{'':<9}{'':>10}{fn(ious['naive']):>12.3f}{fn(ious['tsam']):>12.3f}")


if __name__ == "__main__":
    main()
