"""Removing an object from fast footage: flicker and accuracy where the truth under the hole is
the background by construction.

``fill_quality.py``'s holes lie anywhere, often on a moving subject, where no removal can be
steady along the truth's motion (``flicker_layers.py``). Here a real moving object with its
exact mask is pasted onto each fast-motion clip of ``benchmarks/clips`` (so the clean clip is
the truth under the hole, and it moves with the camera): the bmx-trees rider and bike, and the
tall schoolgirl (``removal.py``'s cut-outs, at their own positions in their own clips, looped
back and forth when shorter). ``tsam inpaint`` (``--dilate 0``: the mask is exact; lossless) then
removes it.

Metrics as in ``fill_quality.py``: hole PSNR against the clean clip, flicker of the result in
the hole (warped along the clean clip's true motion) over the clean clip's own there
("x original"), sharpness; all frames and fast-motion frames (median true motion over the hole
above 4 px/frame); frame-weighted means over every frame of every clip of the set.

    python benchmarks/fast_removal.py [--set dev|held-out] [--frames 60] [--methods default,telea,baseline]
                                      [--baseline REV] [--try module:NAME=value ...] [--dilate 0]

``baseline`` (with ``--baseline REV``): the defaults of that git revision, in the same run.
``--try tsam_cli.flow.pair:FLOW_MARGIN=3`` (repeatable): the defaults with that module constant
set to the value, one more method each (several constants in one run: join them with ``+``).
``--dilate N``: every method with ``--dilate N`` (the benchmark's masks are exact: 0; inpaint's
default is 4).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import baseline_tree, clip_sets, loop_index, parse_constant
from fill_quality import (
    clip_source,
    fast_frames,
    flicker,
    frame_metrics,
    load_clip,
    method_table,
    nanmean,
    run_method,
    true_motion,
    write_inputs,
)
from removal import real_object

OBJECTS = {"rider": ("bmx-trees", None), "girl": ("schoolgirls", (1,))}


def composite(bg: np.ndarray, obj: str) -> tuple[np.ndarray, np.ndarray]:
    """``bg`` ``(T, 240, 432, 3)`` with the object pasted on: frames and exact masks (True = object)."""
    name, labels = OBJECTS[obj]
    frames, masks = real_object(name, len(bg), labels)
    idx = loop_index(len(frames), len(bg))
    frames, masks = frames[idx], masks[idx]
    return np.where(masks[..., None], frames, bg), masks


def score(bg: np.ndarray, obj: str, methods: dict, tmp: Path) -> dict:
    """Per method, the per-frame metrics of one composite; with the floor and the fast frames."""
    comp, holes = composite(bg, obj)
    motion = true_motion(bg)
    out = {"floor": flicker(bg, holes, motion), "fast": fast_frames(motion, holes)}
    video, mask = write_inputs(tmp, comp, holes)
    for label, (opts, root) in methods.items():
        result, _ = run_method(opts, root, video, mask, tmp / f"{label}.mkv")
        out[label] = frame_metrics(result, bg, holes, motion)
    return out


def pooled(runs: list[dict], label: str, key: str, fast: bool) -> float:
    vals = [np.asarray(r[label][key] if label != "floor" else r["floor"], np.float64) for r in runs]
    vals = [v[r["fast"]] if fast else v for v, r in zip(vals, runs, strict=True)]
    return nanmean(np.concatenate(vals)) if vals else float("nan")


def report(runs: dict, methods: list[str]) -> None:
    print("| object | frames | method | hole PSNR | flicker x original | sharpness |\n|---|---|---|---|---|---|")
    for obj in OBJECTS:
        sel = [r for (clip, o), r in runs.items() if o == obj]
        for fast in (False, True):
            n = sum(int(r["fast"].sum()) if fast else len(r["floor"]) for r in sel)
            floor = pooled(sel, "floor", "flicker", fast)
            for label in methods:
                print(f"| {obj} | {'fast' if fast else 'all'} ({n}) | {label} | "
                      f"{pooled(sel, label, 'hole_psnr', fast):.2f} | "
                      f"{pooled(sel, label, 'flicker', fast) / floor:.2f}x | {pooled(sel, label, 'sharpness', fast):.2f} |")
    print("\nper clip, all frames (flicker x original, hole PSNR):")
    for (clip, obj), r in runs.items():
        floor = nanmean(r["floor"])
        cells = ", ".join(f"{m} {nanmean(r[m]['flicker']) / floor:.2f}x {nanmean(r[m]['hole_psnr']):.1f} dB"
                          for m in methods)
        print(f"  {clip:<26}{obj:<7}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="dev", choices=["dev", "held-out"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--methods", default="default,telea", help="default, telea, baseline (with --baseline)")
    ap.add_argument("--baseline", default=None, metavar="REV", help="also run the defaults of this git revision")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="module:NAME=value[+...]",
                    help="also run the defaults with these module constants changed")
    ap.add_argument("--dilate", type=int, default=0, help="--dilate of every method (default 0: exact masks)")
    args = ap.parse_args()
    names = args.methods.split(",") + (["baseline"] if args.baseline and "baseline" not in args.methods else [])
    tries = {spec: dict(parse_constant(one) for one in spec.split("+")) for spec in args.tries}
    runs = {}
    with baseline_tree(args.baseline) as tree, tempfile.TemporaryDirectory() as tmp:
        methods = method_table(names, args.baseline, tree)
        methods.update({spec: ({"constants": c}, None) for spec, c in tries.items()})
        methods = {label: ({**opts, "dilate": args.dilate}, root) for label, (opts, root) in methods.items()}
        for clip in clip_sets()[args.set]:
            src = clip_source(clip)
            if src is None:
                continue
            bg = load_clip(src, args.frames)
            for obj in OBJECTS:
                runs[(clip, obj)] = score(bg, obj, methods, Path(tmp) / clip / obj)
                print(f"  {clip} {obj} done", flush=True)
    print(f"\n{args.set} set, {args.frames} frames, exact masks, --dilate {args.dilate}\n")
    report(runs, list(methods))


if __name__ == "__main__":
    main()
