"""Before/after figure for docs/benchmarks.md: the hole over 8 consecutive frames.

One stationary-blob case of the never-seen-region benchmark (``fill_quality.py``: same clip
loading, same seeded mask, ``--dilate 0``, lossless). Three rows of crops around the hole:
the original frames (the truth), this tree's default, and the default of ``--baseline REV``;
the hole is outlined in every crop.

    python benchmarks/fill_strip_figure.py --baseline REV [--clip ta_aquarium] [--start 8]
                                           [--out docs/fill_strip.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from _common import ROOT, baseline_tree
from fill_quality import clip_source, load_clip, make_masks, run_method, write_inputs

N_SHOWN = 8  # consecutive frames in the strip
SCALE = 1  # crops at the processing size (432x240 frames): a 2x strip is a 1.5 MB PNG


def crop_box(hole: np.ndarray, margin: int = 12) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the hole's bounding box plus ``margin`` px, inside the frame."""
    ys, xs = np.nonzero(hole)
    H, W = hole.shape
    return max(0, ys.min() - margin), min(H, ys.max() + margin + 1), max(0, xs.min() - margin), min(W, xs.max() + margin + 1)


def row(frames: np.ndarray, holes: np.ndarray, box, label: str) -> np.ndarray:
    """One labelled row: the crops of ``frames`` side by side, hole outlined in red."""
    y0, y1, x0, x1 = box
    tiles = []
    for f, h in zip(frames, holes, strict=True):
        tile = np.ascontiguousarray(f[y0:y1, x0:x1])
        edge = h[y0:y1, x0:x1].astype(np.uint8)
        contours, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        tile = cv2.resize(tile, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
        cv2.drawContours(tile, [c * SCALE for c in contours], -1, (255, 0, 0), 1)
        tiles.append(np.pad(tile, ((0, 0), (0, 4), (0, 0)), constant_values=255))
    strip = np.concatenate(tiles, axis=1)
    head = np.full((22, strip.shape[1], 3), 255, np.uint8)
    cv2.putText(head, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([head, strip])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, metavar="REV")
    ap.add_argument("--clip", default="ta_aquarium")
    ap.add_argument("--start", type=int, default=8, help="first frame shown")
    ap.add_argument("--frames", type=int, default=40, help="frames processed (the benchmark's --frames)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "fill_strip.png")
    args = ap.parse_args()
    src = clip_source(args.clip)
    if src is None:
        sys.exit(f"{args.clip} not found in ../shared (skipped)")
    frames = load_clip(src, args.frames)
    holes = make_masks("stationary blob", len(frames), args.clip, 0)
    shown = slice(args.start, args.start + N_SHOWN)
    box = crop_box(holes[args.start])
    rows = [row(frames[shown], holes[shown], box, f"{args.clip}: original frames {args.start}-{args.start + N_SHOWN - 1}")]
    with baseline_tree(args.baseline) as tree, tempfile.TemporaryDirectory() as tmp:
        video, mask = write_inputs(Path(tmp) / "in", frames, holes)
        for label, root in ((f"before ({args.baseline})", tree), ("after (this tree)", None)):
            out, _ = run_method({}, root, video, mask, Path(tmp) / f"{len(rows)}.mkv")
            rows.append(row(out[shown], holes[shown], box, f"{label}: tsam inpaint --dilate 0"))
    img = np.concatenate(rows)
    cv2.imwrite(str(args.out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
