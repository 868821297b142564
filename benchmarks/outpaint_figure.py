"""The README's outpainting picture: a real clip cropped to its centre 75 %, widened back by
``tsam outpaint`` with default options, next to the crop and the true frame.

    python benchmarks/outpaint_figure.py [--clip bmx-trees] [--still gsam2_highway_cars] [--frame 20]
                                         [-o examples/outpaint_before_after.jpg]

Two rows: a clip whose camera pans (the new area was in view in other frames: real pixels) and
a clip with a still camera (nothing outside the frame is ever seen: the texture filler invents
it). Columns: the input (the crop, the new area grey), ``tsam outpaint``, the truth. Uses the
examples' clip when ``../shared/data`` is absent (pan row only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import ROOT
from fill_quality import H, W, clip_source, load_clip

CROP = 324  # the centre 75 % of 432: 54 new pixels on each side


def row(frames: np.ndarray, t: int) -> np.ndarray:
    """``(H, 3 W + 8, 3) uint8``: input on the canvas | outpainted | truth, for frame ``t``."""
    import tsam_cli as tsam

    x0 = (W - CROP) // 2
    crop = np.ascontiguousarray(frames[:, :, x0:x0 + CROP])
    out = tsam.outpaint(crop, pad=f"{x0},0,{W - CROP - x0},0")
    shown = np.full_like(frames[t], 96)
    shown[:, x0:x0 + CROP] = crop[t]
    gap = np.full((H, 4, 3), 255, np.uint8)
    return np.concatenate([shown, gap, out[t], gap, frames[t]], axis=1)


def label(img: np.ndarray, texts: list[str]) -> np.ndarray:
    """A white band with one caption above each of the three columns."""
    import cv2

    band = np.full((22, img.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(texts):
        cv2.putText(band, text, (i * (W + 4) + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, img], axis=0)


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="bmx-trees")
    ap.add_argument("--still", default="gsam2_highway_cars")
    ap.add_argument("--frame", type=int, default=20)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("-o", type=Path, default=ROOT / "examples" / "outpaint_before_after.jpg")
    args = ap.parse_args()
    rows = []
    for name in (args.clip, args.still):
        src = clip_source(name) or (ROOT / "examples" / "bmx-trees.mp4" if name == "bmx-trees" else None)
        if src is None:
            print(f"{name}: not found, row left out")
            continue
        rows.append(row(load_clip(src, args.frames), args.frame))
    img = label(np.concatenate(rows, axis=0), ["input (75% crop)", "tsam outpaint", "truth"])
    cv2.imwrite(str(args.o), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.o}")


if __name__ == "__main__":
    main()
