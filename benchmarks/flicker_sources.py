"""Where the flicker of the fill comes from: the same clips and holes as ``fill_quality.py``,
run in this process with one stage of the default pipeline replaced at a time.

    python benchmarks/flicker_sources.py [--set dev|held-out|all|shared] [--clips a,b] [--frames 60]
                                         [--variants default,true-flow,...] [--json PATH]

Variants (each a change to this tree's defaults, nothing else):

* ``default``: as shipped.
* ``true-flow``: the flow inside the holes is not discarded and completed; the pair flows are
  DIS on the input frames, which in this benchmark hold the true background under the hole,
  with paper Eq. 2's validity only. The gap to ``default`` is what flow completion and the
  layer checks cost; what remains is propagation, resampling, blending, filler and windows.
* ``one-window``: ``--window`` covers the whole clip (no window seams).
* ``telea``: ``--filler telea`` (a smooth filler, no texture).

Per variant, flicker (``fill_quality.flicker``: result warped along the true motion) over the
consistent hole pixels of each frame, split by what filled the pixel (the pipeline's hop count:
propagated from 1-2 frames away, from 3 or more, the filler's colour carried on from an earlier
frame, or made by the filler in this very frame) and by where the frame
pair lies (across a window seam or inside a window); all frames and fast-motion frames
(median true motion over the hole > 4 px/frame). "floor" is the originals' own flicker on the
same pixels: ratios are result / floor over exactly the same pixel sets.

Clip sets: ``dev`` / ``held-out`` / ``all`` read ``benchmarks/clips`` (``SOURCES.md`` gives each
clip's set); ``shared`` the 12 clips of ``fill_quality.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import CLIP_DIR, clip_sets
from fill_quality import (
    CLIPS,
    FAST,
    KINDS,
    MIN_PIXELS,
    clip_source,
    grey,
    load_clip,
    make_masks,
    true_motion,
    write_inputs,
)

VARIANTS = ["default", "true-flow", "one-window", "telea"]
CLASSES = ["near (1-2 hops)", "far (3+ hops)", "filler, carried", "filler, made here"]


# --------------------------------------------------------------------------- clips


def pick_clips(which: str, names: str | None) -> list[tuple[str, Path]]:
    """``(name, source)`` of the clips to run."""
    if which == "shared":
        found = [(c, clip_source(c)) for c in (names.split(",") if names else CLIPS)]
        return [(c, p) for c, p in found if p is not None]
    sets = clip_sets()
    pool = sets["dev"] + sets["held-out"] if which == "all" else sets[which]
    chosen = names.split(",") if names else pool
    return [(c, CLIP_DIR / c) for c in chosen if (CLIP_DIR / c).is_dir()]


# --------------------------------------------------------------------------- variants


class Recorder:
    """Wraps ``complete_window`` of the pipeline: keeps the hop count of every frame written."""

    def __init__(self, original) -> None:
        self.original, self.hops, self.starts = original, {}, []

    def __call__(self, win, fill, propagation, rep):
        completed, hops = self.original(win, fill, propagation, rep)
        first = len(self.hops)  # windows come in order; the kept frames are the next n_keep
        self.starts.append(first)
        for i in range(win.n_keep):
            self.hops[first + i] = hops[i].copy()
        return completed, hops


def true_pair_flow(a, b, estimator, delta: float, need_flow: bool):
    """The pipeline's ``_pair_flow`` with the measured flow kept inside the holes (Eq. 2 only)."""
    from tsam_cli.flow.pair import PairFlow
    from tsam_cli.flow.validity import validity

    if not need_flow or not (a.hole.any() or b.hole.any()):
        return None, False
    fwd, bwd = estimator(a.small, b.small), estimator(b.small, a.small)
    return PairFlow(fwd, bwd, validity(fwd, bwd, delta), validity(bwd, fwd, delta)), False


def run_variant(variant: str, video: Path, mask: Path, out: Path, n: int) -> tuple[np.ndarray, Recorder, float]:
    """One in-process run of ``variant``; the result frames, the recorded hops, seconds."""
    from unittest import mock

    from tsam_cli.core import pipeline
    from tsam_cli.media import iter_frames, probe
    from tsam_cli.options import InpaintOptions

    rec = Recorder(pipeline.complete_window)
    opts = {"mask": str(mask), "dilate": 0, "lossless": True, "fps": 24, "quiet": True, "overwrite": True}
    opts |= {"one-window": {"window": n}, "telea": {"filler": "telea"}}.get(variant, {})
    patches = [mock.patch.object(pipeline, "complete_window", rec)]
    if variant == "true-flow":
        patches.append(mock.patch.object(pipeline, "_pair_flow", true_pair_flow))
    t0 = time.perf_counter()
    for p in patches:
        p.start()
    try:
        pipeline.inpaint(video, out, InpaintOptions(**opts))
    finally:
        for p in patches:
            p.stop()
    secs = time.perf_counter() - t0
    return np.stack([f.rgb for f in iter_frames(probe(out))]), rec, secs


# --------------------------------------------------------------------------- measures


def pixel_errors(video: np.ndarray, frames: np.ndarray, holes: np.ndarray, motion: dict):
    """Per frame t: the consistent hole pixels ``sel`` (H, W) bool and, on them, the result's and
    the original's |grey(t) - grey(t+1) warped back| (1-D float arrays, same order)."""
    import cv2

    out = []
    for t, ((mx, my), ok) in enumerate(zip(motion["maps"], motion["ok"], strict=True)):
        sel = holes[t] & ok
        err_r = np.abs(grey(video[t]) - cv2.remap(grey(video[t + 1]), mx, my, cv2.INTER_LINEAR))[sel]
        err_o = np.abs(grey(frames[t]) - cv2.remap(grey(frames[t + 1]), mx, my, cv2.INTER_LINEAR))[sel]
        out.append((sel, err_r, err_o))
    return out


def pixel_class(hops: np.ndarray) -> np.ndarray:
    """``(H, W) int`` index into CLASSES: 0 near (1-2 hops), 1 far (3+ hops), 2 the filler's
    colour carried from an earlier frame, 3 made by the filler in this frame."""
    from tsam_cli.core.propagate import FILLER_HOPS

    return np.select([hops == FILLER_HOPS, hops > FILLER_HOPS, hops >= 3], [3, 2, 1], 0)


def accumulate(acc: dict, key: tuple, err_r: np.ndarray, err_o: np.ndarray) -> None:
    """Add sums of result and floor errors and the pixel count under ``key``."""
    s = acc.setdefault(key, [0.0, 0.0, 0])
    s[0] += float(err_r.sum())
    s[1] += float(err_o.sum())
    s[2] += int(err_r.size)


def decompose(video, frames, holes, motion, rec: Recorder, acc: dict, variant: str) -> None:
    """Sums per (variant, group, part): groups ``all`` / ``fast``, parts ``total``, each pixel
    class, ``seam`` / ``inside`` (pair t, t+1 across a window start or not)."""
    starts = set(rec.starts)
    for t, (sel, err_r, err_o) in enumerate(pixel_errors(video, frames, holes, motion)):
        if err_r.size < MIN_PIXELS:
            continue
        speed = float(np.median(motion["speed"][t][holes[t]]))
        cls = pixel_class(rec.hops[t])[sel] if t in rec.hops else np.full(err_r.size, 3)
        for group in ("all", "fast") if speed > FAST else ("all",):
            accumulate(acc, (variant, group, "total"), err_r, err_o)
            accumulate(acc, (variant, group, "seam" if t + 1 in starts else "inside"), err_r, err_o)
            for c, name in enumerate(CLASSES):
                accumulate(acc, (variant, group, name), err_r[cls == c], err_o[cls == c])


# --------------------------------------------------------------------------- main


def table(acc: dict, variants: list[str]) -> str:
    parts = ["total", *CLASSES, "inside", "seam"]
    lines = ["| frames | variant | " + " | ".join(parts) + " |", "|" + "---|" * (2 + len(parts))]
    for group in ("all", "fast"):
        for v in variants:
            cells = []
            for p in parts:
                r, o, n = acc.get((v, group, p), (0.0, 0.0, 0))
                cells.append(f"{r / n:.2f} / {o / n:.2f} = {r / o:.2f}x ({n / 1000:.0f}k)" if n and o else "—")
            lines.append(f"| {group} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="dev", choices=["dev", "held-out", "all", "shared"])
    ap.add_argument("--clips", default=None, help="comma-separated clip names (default: the whole set)")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated mask kinds")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    variants, kinds = args.variants.split(","), args.kinds.split(",")
    clips = pick_clips(args.set, args.clips)
    if not clips:
        print("flicker_sources: no clips found (skipped)")
        return
    acc: dict = {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in clips:
            frames = load_clip(src, args.frames)
            motion = true_motion(frames)
            for k, kind in enumerate(kinds):
                holes = make_masks(kind, len(frames), name, args.seed)
                video, mask = write_inputs(Path(tmp) / name / str(k), frames, holes)
                for v in variants:
                    out, rec, secs = run_variant(v, video, mask, Path(tmp) / name / str(k) / f"{v}.mkv", len(frames))
                    before = len(acc)
                    decompose(out, frames, holes, motion, rec, acc, v)
                    key = (v, "all", "total")
                    r, o, n = acc.get(key, (0, 1, 0))
                    print(f"  {name:<28}{kind:<16}{v:<12}{secs / len(frames):.3f} s/fr  running total "
                          f"{r / max(o, 1e-9):.2f}x ({before})", file=sys.stderr, flush=True)
    print(f"clips: {', '.join(c for c, _ in clips)}; kinds: {', '.join(kinds)}; {time.time() - t0:.0f} s\n")
    print("flicker result / floor = ratio (pixels), same pixels for both\n")
    print(table(acc, variants))
    if args.json:
        args.json.write_text(json.dumps({"|".join(k): v for k, v in acc.items()}, indent=1))


if __name__ == "__main__":
    main()
