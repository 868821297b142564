"""How ``tsam inpaint`` (classical path) scales from one CPU to all, next to a baseline revision.

Inputs: bmx-trees with its object masks, 432x240 looped to ``--frames``, and the same upscaled
to 1920x1080 (``--hd-frames``; masks scaled with it). Each run is a fresh interpreter. Modes:

* ``1 cpu``: ``taskset -c 0`` (the process may use one CPU: tsam's default threads is then 1,
  and OpenCV, numpy and the encoder see one CPU too);
* ``--threads 1``: every CPU allowed, tsam's own work on one thread;
* ``all``: every CPU allowed, the default thread count (``usable_cpus()``).

Runs alternate between trees and modes ``--repeats`` times, so drifting machine load meets
every column alike; the best of the repeats is printed with all of them. Timed runs write the
default H.264 mp4. Then ``--threads 1`` and ``all`` run once more with ``--lossless`` (FFV1)
and their frames are compared: they must be identical (x264's own output is not compared: two
runs of this machine's libx264 with the same frames and settings were seen to differ).

    python benchmarks/scaling.py [--frames 80] [--hd-frames 30] [--skip-hd] [--repeats 3] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _common import baseline_tree, bmx_frames, read_frames, run_inpaint, write_inputs

MODES = {"1 cpu": (("taskset", "-c", "0"), {}), "--threads 1": ((), {"threads": 1}), "all": ((), {})}


def measure(video: Path, mask: Path, tmp: Path, trees: list[tuple[str, Path]], repeats: int) -> dict:
    """``{(tree, mode): [s/frame, ...]}``, plus ``(tree, "same")``: the lossless frames of
    ``--threads 1`` and ``all`` identical."""
    times: dict = {}
    for _ in range(repeats):
        for tree, root in trees:
            for mode, (prefix, opts) in MODES.items():
                r = run_inpaint(video, mask, tmp / "timed.mp4", root=root, prefix=prefix, **opts)
                times.setdefault((tree, mode), []).append(r["seconds"] / r["frames"])
    for tree, root in trees:
        outs = []
        for mode in ("--threads 1", "all"):
            run_inpaint(video, mask, tmp / "same.mkv", root=root, lossless=True, **MODES[mode][1])
            outs.append(read_frames(tmp / "same.mkv"))
        times[(tree, "same")] = bool(np.array_equal(*outs))
    return times


def report(label: str, times: dict, trees: list[tuple[str, Path]]) -> None:
    print(f"\n{label}, s/frame (best; all runs), {os.cpu_count()} CPUs:\n")
    print("| tree | " + " | ".join(MODES) + " | 1 cpu -> all | --threads 1 and all identical |")
    print("|---" * (len(MODES) + 3) + "|")
    for tree, _ in trees:
        best = {m: min(times[(tree, m)]) for m in MODES}
        cells = " | ".join(f"{best[m]:.3f} ({' / '.join(f'{v:.3f}' for v in times[(tree, m)])})" for m in MODES)
        print(f"| {tree} | {cells} | {best['1 cpu'] / best['all']:.2f}x | {'yes' if times[(tree, 'same')] else 'NO'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--hd-frames", type=int, default=30)
    ap.add_argument("--skip-hd", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="git revision to run side by side")
    args = ap.parse_args()
    frames, masks = bmx_frames()
    with baseline_tree(args.baseline) as base, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = [("this tree", Path(__file__).resolve().parents[1])]
        trees += [] if base is None else [(f"baseline {args.baseline}", base)]
        video, mask = write_inputs(tmp, frames, masks, args.frames)
        report(f"432x240, {args.frames} frames", measure(video, mask, tmp, trees, args.repeats), trees)
        if not args.skip_hd:
            import cv2

            hd = np.stack([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in frames[:args.hd_frames]])
            hm = np.stack([cv2.resize(m.astype(np.uint8), (1920, 1080), interpolation=cv2.INTER_NEAREST) > 0
                           for m in masks[:args.hd_frames]])
            (tmp / "hd").mkdir()
            video, mask = write_inputs(tmp / "hd", hd, hm, args.hd_frames)
            del hd, hm
            report(f"1920x1080, {args.hd_frames} frames", measure(video, mask, tmp, trees, args.repeats), trees)


if __name__ == "__main__":
    main()
