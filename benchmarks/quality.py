"""Quality of the classical path vs per-frame Telea, on bmx-trees with a synthetic moving mask.

The hole is a synthetic ellipse that moves across the *background* (the rider's own mask is
removed from it), so the original frames are the ground truth for every hole pixel. Both
methods get the same (undilated) hole; PSNR is measured inside it, in float from uint8.

    python benchmarks/quality.py [--frames 80] [--max-size 960] [--model weights/tsam-compact.safetensors]

With ``--model`` two more rows: the pipeline with that generator filling what propagation
cannot reach, and the generator alone (``--no-propagation``, the pure paper model).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import bmx_frames, psnr, run_inpaint


def moving_ellipse_masks(frames: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """``(T, H, W) bool``: a 70x50 ellipse sweeping left to right, minus the (dilated) objects."""
    import cv2

    T, H, W = frames.shape[:3]
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        cx = int(60 + (W - 120) * t / max(T - 1, 1))
        cy = int(H * 0.35 + 20 * np.sin(t / 6))
        cv2.ellipse(out[t], (cx, cy), (35, 25), 0, 0, 360, 1, -1)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    obj = np.stack([cv2.dilate(o.astype(np.uint8), k) > 0 for o in objects])
    return (out > 0) & ~obj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--max-size", type=int, default=960)
    ap.add_argument("--model", default=None, help="a generator weight file (or compact/full) to compare too")
    args = ap.parse_args()
    import cv2

    from tsam_cli.core.propagate import TeleaFiller
    from tsam_cli.media import create_video, iter_frames, probe

    frames, objects = bmx_frames(args.frames)
    holes = moving_ellipse_masks(frames, objects)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from fractions import Fraction

        with create_video(tmp / "in", 432, 240, Fraction(24)) as w:  # PNG frames: lossless input
            for f in frames:
                w.write(f)
        for i, h in enumerate(holes):
            (tmp / "mask").mkdir(exist_ok=True)
            cv2.imwrite(str(tmp / "mask" / f"{i:05d}.png"), h.astype(np.uint8) * 255)
        stats = run_inpaint(tmp / "in", tmp / "mask", tmp / "out", dilate=0, max_size=args.max_size, fps=24)
        ours = np.stack([f.rgb for f in iter_frames(probe(tmp / "out", fps=24))])
        extra = []
        if args.model:
            for label, opts in [("tsam + model", {}), ("model alone (no propagation)", {"propagation": False})]:
                r = run_inpaint(tmp / "in", tmp / "mask", tmp / "out_m", dilate=0, max_size=args.max_size, fps=24,
                                model=args.model, **opts)
                res = np.stack([f.rgb for f in iter_frames(probe(tmp / "out_m", fps=24))])
                extra.append((label, psnr(res, frames, holes), r["seconds"] / len(frames)))
    telea = np.stack([TeleaFiller()(np.where(h[..., None], 0, f).astype(np.uint8), h) for f, h in zip(frames, holes, strict=True)])
    p_ours, p_telea = psnr(ours, frames, holes), psnr(telea, frames, holes)
    assert np.array_equal(ours[~holes], frames[~holes]), "known pixels changed"
    print(f"clip: bmx-trees, {len(frames)} frames 432x240, synthetic moving hole "
          f"({holes.mean() * 100:.1f}% of pixels)")
    print(f"{'method':<32}{'hole PSNR (dB)':>16}")
    print(f"{'per-frame Telea':<32}{p_telea:>16.2f}")
    print(f"{'tsam (flow propagation)':<32}{p_ours:>16.2f}")
    for label, p, spf in extra:
        print(f"{label:<32}{p:>16.2f}   ({spf:.3f} s/frame)")
    print(f"difference: {p_ours - p_telea:+.2f} dB; tsam run {stats['seconds'] / len(frames):.3f} s/frame")


if __name__ == "__main__":
    main()
