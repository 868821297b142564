"""Trade-off of full-resolution propagation (``--full-res``) on a larger video.

running_car (972x540, real footage with a moving camera), first ``--frames`` frames, with a
synthetic 140x100 ellipse sweeping across the frame as the hole (so the original frames
are ground truth). Compared: processing at full size, at a reduced ``--max-size`` with
paste-back, and at the reduced size with ``--full-res`` (flows upscaled, full-resolution
pixels propagated). Prints hole PSNR, s/frame and peak RSS per setting.

    python benchmarks/hires.py [--frames 80] [--small 480]
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import SHARED, psnr, run_inpaint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--small", type=int, default=480)
    args = ap.parse_args()
    import cv2

    from tsam_cli.media import create_video, iter_frames, probe

    src = SHARED / "running_car" / "running_car.mp4"
    if not src.is_file():
        raise SystemExit(f"needs {src} (../shared)")
    frames = []
    for f in iter_frames(probe(src)):
        frames.append(f.rgb)
        if len(frames) == args.frames:
            break
    frames = np.stack(frames)
    T, H, W = frames.shape[:3]
    holes = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        cx = int(120 + (W - 240) * t / max(T - 1, 1))
        cv2.ellipse(holes[t], (cx, int(H * 0.45 + 30 * np.sin(t / 7))), (70, 50), 0, 0, 360, 1, -1)
    holes = holes > 0
    settings = [(f"--max-size {max(W, H)} (full size)", dict(max_size=max(W, H))),
                (f"--max-size {args.small} + paste-back", dict(max_size=args.small)),
                (f"--max-size {args.small} --full-res", dict(max_size=args.small, full_res=True))]
    print(f"running_car {W}x{H}, {T} frames, synthetic moving hole ({holes.mean() * 100:.1f}% of pixels)")
    print(f"{'setting':<36}{'hole PSNR dB':>14}{'s/frame':>10}{'peak MiB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with create_video(tmp / "in", W, H, Fraction(25)) as w:
            for f in frames:
                w.write(f)
        (tmp / "mask").mkdir()
        for i, h in enumerate(holes):
            cv2.imwrite(str(tmp / "mask" / f"{i:05d}.png"), h.astype(np.uint8) * 255)
        for name, opts in settings:
            r = run_inpaint(tmp / "in", tmp / "mask", tmp / "out", dilate=0, fps=25, **opts)
            out = np.stack([f.rgb for f in iter_frames(probe(tmp / "out", fps=25))])
            print(f"{name:<36}{psnr(out, frames, holes):>14.2f}{r['seconds'] / T:>10.3f}{r['peak_rss_mib']:>10.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
