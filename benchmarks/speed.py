"""Speed per stage and peak memory of ``tsam inpaint`` at 432x240, for a short and a long video.

The bmx-trees clip (80 frames, 432x240, its real object masks) is looped ping-pong to each
length; every run is a fresh interpreter, so its peak RSS is its own. Peak RSS must not
grow with the number of frames (the pipeline streams).

    python benchmarks/speed.py [--lengths 80 400] [--flow dis]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import bmx_frames, run_inpaint, write_inputs

STAGES = ["decode", "resize", "flow", "propagate", "fill", "paste", "encode"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[80, 400])
    ap.add_argument("--flow", default="dis")
    ap.add_argument("--max-size", type=int, default=960)
    args = ap.parse_args()
    frames, masks = bmx_frames()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lengths:
            video, mask = write_inputs(Path(tmp), frames, masks, n)
            r = run_inpaint(video, mask, Path(tmp) / f"out_{n}.mp4", flow=args.flow, max_size=args.max_size)
            rows.append((n, r))
    print(f"432x240, bmx-trees looped, flow={args.flow}; seconds per frame by stage "
          f"(fill runs inside propagate)")
    head = f"{'frames':>7}{'total s/f':>11}" + "".join(f"{s:>10}" for s in STAGES) + f"{'peak RSS MiB':>14}"
    print(head)
    for n, r in rows:
        t = r["timings"]
        print(f"{n:>7}{r['seconds'] / n:>11.4f}" + "".join(f"{t.get(s, 0) / n:>10.4f}" for s in STAGES)
              + f"{r['peak_rss_mib']:>14.0f}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"peak RSS ratio {b[0]} vs {a[0]} frames: {b[1]['peak_rss_mib'] / a[1]['peak_rss_mib']:.3f}")


if __name__ == "__main__":
    main()
