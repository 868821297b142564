"""Peak memory (and speed) of ``tsam inpaint`` by video length and resolution.

* 432x240, bmx-trees looped ping-pong to 80, 500 and 2000 frames: peak RSS must grow by
  less than 10 % from the shortest to the longest (the pipeline streams).
* 1920x1080, 100 frames (bmx-trees upscaled, masks scaled with it): peak RSS below 4 GiB,
  with the speed per frame and per stage.

Every run is a fresh interpreter (its peak RSS is its own).

    python benchmarks/memory.py [--lengths 80 500 2000] [--hd-frames 100] [--skip-hd] [--baseline REV]

``--baseline REV``: every run is repeated with the ``tsam_cli`` of that git revision, printed
below it ("base" rows).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import baseline_tree, bmx_frames, run_inpaint, write_inputs

STAGES = ["decode", "flow", "propagate", "fill", "paste", "encode"]


def row(label: str, n: int, r: dict) -> str:
    t = r["timings"]
    return (f"{label:<12}{n:>7}{r['peak_rss_mib']:>10.0f}{r['seconds'] / n:>10.3f}"
            + "".join(f"{t.get(s, 0) / n:>10.3f}" for s in STAGES))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[80, 500, 2000])
    ap.add_argument("--hd-frames", type=int, default=100)
    ap.add_argument("--skip-hd", action="store_true")
    ap.add_argument("--max-size", type=int, default=960)
    ap.add_argument("--baseline", default=None, metavar="REV", help="also run each case with this git revision")
    args = ap.parse_args()
    with baseline_tree(args.baseline) as tree:
        measure(args, tree)


def measure(args, tree) -> None:
    """The runs of :func:`main`; ``tree``: a baseline checkout run after each case, or None."""
    import cv2

    frames, masks = bmx_frames()
    print(f"{'input':<12}{'frames':>7}{'peak MiB':>10}{'s/frame':>10}" + "".join(f"{s:>10}" for s in STAGES))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.lengths:
            video, mask = write_inputs(tmp, frames, masks, n)
            r = run_inpaint(video, mask, tmp / f"out_{n}.mp4", max_size=args.max_size)
            results.append((n, r))
            print(row("432x240", n, r), flush=True)
            if tree is not None:
                print(row("  base", n, run_inpaint(video, mask, tmp / f"out_{n}.mp4", root=tree, max_size=args.max_size)),
                      flush=True)
            video.unlink()
            mask.unlink()
        if len(results) > 1:
            (n0, r0), (n1, r1) = results[0], results[-1]
            growth = r1["peak_rss_mib"] / r0["peak_rss_mib"] - 1
            print(f"peak RSS growth {n0} -> {n1} frames: {growth * 100:+.1f} % (target < 10 %)")
        if not args.skip_hd:
            hd = np.stack([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in frames])
            hm = np.stack([cv2.resize(m.astype(np.uint8), (1920, 1080), interpolation=cv2.INTER_NEAREST) > 0 for m in masks])
            (tmp / "hd").mkdir()
            video, mask = write_inputs(tmp / "hd", hd, hm, args.hd_frames)
            del hd, hm
            r = run_inpaint(video, mask, tmp / "out_hd.mp4", max_size=args.max_size)
            print(row("1920x1080", args.hd_frames, r), flush=True)
            if tree is not None:
                print(row("  base", args.hd_frames,
                          run_inpaint(video, mask, tmp / "out_hd.mp4", root=tree, max_size=args.max_size)), flush=True)
            print(f"1080p peak RSS {r['peak_rss_mib'] / 1024:.2f} GiB (target < 4 GiB), "
                  f"{r['seconds'] / args.hd_frames:.3f} s/frame (target <= 1), --max-size {args.max_size}")


if __name__ == "__main__":
    main()
