"""Never-seen-region fillers on single frames: Telea against PatchFiller (``tsam_cli/core/texture.py``).

One frame of each of the twelve clips of ``benchmarks/fill_quality.py`` (432x240, same
loading), with that benchmark's seeded "stationary blob" hole (radius 35-55 px) drawn over it,
so the original frame is the truth of every hole pixel. The defaults (``--frame 0 --seed 0``)
are the first frames and the masks of the fill-quality runs; ``--frame 30 --seed 1`` is a
held-out set (other frames, other holes) that the settings were not chosen on.

    python benchmarks/texture_fill.py [--frame 0] [--seed 0] [--clips N|name,name]
                                      [--mixes 0.5:0.5:1.5,0.5:0.3:1.5] [--set texture=0,margin=16]

Printed per filler: hole PSNR (dB, mean over frames), sharpness (mean Sobel magnitude in the
hole, result / truth, mean over frames; 1.0 = as much detail as the truth) and seconds per
call (mean and max; wall time on this machine, which may be shared). Rows: ``telea``
(``TeleaFiller``, the baseline), ``patch`` (``PatchFiller()`` with its defaults, timed),
``patch raw`` (the exemplar fill alone, m = 1, d = 0) and one row per ``--mixes`` entry
``m:d:sigma`` of ``(1 - m) telea + m patch + d (patch - blur_sigma(patch))`` on the same
exemplar fill. ``--set`` changes ``PatchSettings`` fields for every patch row (ablations).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from dataclasses import replace

import numpy as np
from _common import SHARED
from fill_quality import CLIPS, clip_source, load_clip, make_masks, sharpness


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frame", type=int, default=0, help="frame index of each clip (0 = the first)")
    ap.add_argument("--seed", type=int, default=0, help="mask seed (0 = fill_quality.py's)")
    ap.add_argument("--clips", default=None, help="a count (the first N of the twelve) or names, comma-separated")
    ap.add_argument("--mixes", default="0.2:0.3:2.0,0.5:0.3:1.5,0.5:0.5:1.5,0.5:0.7:1.5,0.7:0.3:3.0",
                    help="extra mix rows m:d:sigma, comma-separated")
    ap.add_argument("--set", default="", help="PatchSettings overrides key=value,... (values as Python literals)")
    return ap.parse_args()


def pick_clips(spec: str | None) -> list[str]:
    if spec is None:
        return CLIPS
    return CLIPS[:int(spec)] if spec.isdigit() else spec.split(",")


def hole_psnr(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the hole pixels only."""
    mse = float(np.mean((out.astype(np.float64) - truth)[hole] ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def frames_and_holes(clips: list[str], frame: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(clip, frame (240, 432, 3) uint8, hole (240, 432) bool)`` for each clip found in ../shared."""
    out = []
    for clip in clips:
        src = clip_source(clip)
        if src is None:
            print(f"  {clip}: not in {SHARED} (skipped)")
            continue
        out.append((clip, load_clip(src, frame + 1)[frame], make_masks("stationary blob", 1, clip, seed)[0]))
    return out


def settings(spec: str):
    """``PatchSettings`` with the ``key=value,...`` overrides of ``--set`` (values: Python literals)."""
    import ast

    from tsam_cli.core.texture import PatchSettings

    pairs = [kv.split("=", 1) for kv in re.split(r",(?=[a-z_]+=)", spec) if kv]
    return PatchSettings(**{k: ast.literal_eval(v) for k, v in pairs})


def run_fillers(data, mixes: list[tuple[float, float, float]], s) -> dict[str, list[tuple[float, float, float]]]:
    """``{row: [(hole PSNR, sharpness, seconds), ...]}`` over the frames (seconds NaN: not timed)."""
    from tsam_cli.core.propagate import TeleaFiller
    from tsam_cli.core.texture import PatchFiller, exemplar_fill, mix_with_telea
    from tsam_cli.flow.warp import bounding_box

    rows: dict[str, list] = {"telea": [], "patch": [], "patch raw (m=1, d=0)": []}
    rows.update({f"mix m={m} d={d} sigma={g}": [] for m, d, g in mixes})
    for _, img, hole in data:
        for name, filler in (("telea", TeleaFiller()), ("patch", PatchFiller(s))):
            t0 = time.perf_counter()
            out = filler(img, hole)
            dt = time.perf_counter() - t0
            rows[name].append((hole_psnr(out, img, hole), float(sharpness(out[None], img[None], hole[None])[0]), dt))
        telea = TeleaFiller()(img, hole)
        y0, y1, x0, x1 = bounding_box(hole, s.margin + s.patch)
        crop, chole, ctelea = img[y0:y1, x0:x1], hole[y0:y1, x0:x1], telea[y0:y1, x0:x1]
        raw = exemplar_fill(crop, chole, ctelea, s)  # seeded: the same fill the timed call made
        for (m, d, g), name in zip([(1.0, 0.0, 1.5), *mixes], list(rows)[2:], strict=True):
            out = telea.copy()
            out[y0:y1, x0:x1] = mix_with_telea(raw, ctelea, chole, replace(s, mix=m, detail=d, detail_sigma=g))
            out[~hole] = img[~hole]
            rows[name].append((hole_psnr(out, img, hole), float(sharpness(out[None], img[None], hole[None])[0]),
                               float("nan")))
    return rows


def main() -> None:
    args = parse_args()
    mixes = [tuple(float(v) for v in m.split(":")) for m in args.mixes.split(",") if m]
    data = frames_and_holes(pick_clips(args.clips), args.frame, args.seed)
    if not data:
        print(f"texture_fill: no clip found under {SHARED} (nothing measured)")
        return
    print("command: " + shlex.join(["python", "benchmarks/texture_fill.py", *sys.argv[1:]]))
    print(f"{len(data)} frames (frame {args.frame}, mask seed {args.seed}), "
          f"hole {min(int(h.sum()) for *_, h in data)}-{max(int(h.sum()) for *_, h in data)} px at 432x240")
    s = settings(args.set)
    print(f"PatchSettings: {s}\n")
    print("| filler | hole PSNR (dB) | sharpness | s/call mean | s/call max |\n|---|---|---|---|---|")
    for name, vals in run_fillers(data, mixes, s).items():
        v = np.array(vals)
        t = "" if np.isnan(v[:, 2]).all() else f"{v[:, 2].mean():.3f} | {v[:, 2].max():.3f}"
        print(f"| {name} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.3f} | {t or ' | '} |")


if __name__ == "__main__":
    main()
