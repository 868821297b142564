"""Outpainting quality against ground truth made by cropping (``tsam outpaint``).

Each clip (``../shared/data``, loaded and centre-cropped to 432x240 by ``fill_quality.load_clip``)
is cropped to its centre and outpainted back to 432x240, so the cropped-away pixels are the
ground truth of the new area. Two crops: ``75%`` (the centre 324x240, 54 px new on each side)
and ``9:16`` (the centre 135x240 of the 16:9 frame, 148-149 px new on each side). Inputs are
given in memory (lossless PNG folders underneath); nothing is compressed.

    python benchmarks/outpaint.py [--frames 40] [--clips name,name] [--crops 75%,9:16] [--json PATH]
                                  [--baseline REV]

Methods, on the same crops: ``tsam`` (the defaults: flow completed outside the frame with the
background's affine model, propagation, the texture filler for the never-seen rest), ``no
motion`` (the same without the motion model: ``pair_flow(motion=False)``, every outside-the-frame
flow a smooth fill of the border's), ``telea`` (OpenCV Telea per frame on the canvas), ``edge``
(edge replication, what the canvas holds before filling).

Metrics, per clip (means over frames): new-area PSNR and SSIM (``fill_quality``'s SSIM around
the holes), band PSNR (the new pixels within 16 px of the seam), flicker in the new area over
the original's own flicker there (``fill_quality.flicker``: the result warped along the true
motion), sharpness (``fill_quality.sharpness``: Sobel magnitude, result over truth), s/frame
(tsam methods: the run's own seconds, 2 threads). A clip counts as "camera motion" when the
median over frames of the median true flow magnitude is above ``MOVING`` px/frame.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from _common import baseline_tree
from fill_quality import H, W, clip_source, flicker, load_clip, sharpness, ssim_around_holes, true_motion

#: clips with camera motion and with a still camera (classified by measurement, see MOVING)
CLIPS = ["bmx-trees", "cotracker_paraglide_air", "da_rollercoaster", "tav_car_turn", "gsam2_highway_cars",
         "sam2_coffee_pour", "ta_aquarium", "fresco_headphones_girl"]
CROPS = {"75%": 324, "9:16": 135}
#: px/frame of median true motion above which a clip is "camera motion"
MOVING = 0.5
#: width of the band along the seam whose PSNR is reported (px)
BAND = 16


def crop_centre(frames: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    x0 = (frames.shape[2] - width) // 2
    return np.ascontiguousarray(frames[:, :, x0:x0 + width]), x0


def new_area(width: int, x0: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W) bool`` new area of a centre crop of ``width`` at ``x0``, and its seam band."""
    new = np.ones((H, W), bool)
    new[:, x0:x0 + width] = False
    cols = np.arange(W)
    dist = np.where(cols < x0, x0 - cols, cols - (x0 + width - 1))
    return new, new & (dist <= BAND)[None, :]


def run_tsam(crop: np.ndarray, motion: bool = True) -> tuple[np.ndarray, float]:
    """tsam's outpainting of ``crop`` back to W x H; ``motion=False``: without the background model."""
    import tsam_cli as tsam
    from tsam_cli.flow import pair

    saved = pair.DEFAULT_MOTION
    if not motion:
        pair.DEFAULT_MOTION = False  # pair_flow(motion=None) -> no model: the `motion=False` ablation
    try:
        t0 = time.perf_counter()
        out = tsam.outpaint(crop, size=f"{W}x{H}", threads=2)
        return out, (time.perf_counter() - t0) / len(crop)
    finally:
        pair.DEFAULT_MOTION = saved


BASELINE_RUN = r"""
import sys, time
import numpy as np
# serve tsam_cli from this tree only, not from the venv's editable install (see _common.RUNNER)
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
import tsam_cli as tsam
crop = np.load(sys.argv[1])
t0 = time.perf_counter()
out = tsam.outpaint(crop, size=sys.argv[3], threads=2)
np.save(sys.argv[2], out)
print((time.perf_counter() - t0) / len(crop))
"""


def run_baseline(crop: np.ndarray, root: Path, size: str = f"{W}x{H}") -> tuple[np.ndarray, float]:
    """``tsam``'s outpainting of ``crop`` to ``size`` by the ``tsam_cli`` of the checkout ``root``
    (another revision for ``--baseline``), in a fresh interpreter: ``(result, s/frame)``."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "crop.npy", Path(tmp) / "out.npy"
        np.save(src, crop)
        r = subprocess.run([sys.executable, "-c", BASELINE_RUN, str(src), str(dst), size],
                           capture_output=True, text=True, cwd=root, check=True)
        return np.load(dst), float(r.stdout.strip().splitlines()[-1])


def run_simple(crop: np.ndarray, x0: int, kind: str) -> tuple[np.ndarray, float]:
    """Edge replication, or OpenCV Telea per frame on the edge-replicated canvas."""
    import cv2

    t0 = time.perf_counter()
    new, _ = new_area(crop.shape[2], x0)
    out = []
    for f in crop:
        canvas = cv2.copyMakeBorder(f, 0, 0, x0, W - x0 - f.shape[1], cv2.BORDER_REPLICATE)
        out.append(canvas if kind == "edge" else cv2.inpaint(canvas, new.astype(np.uint8), 5, cv2.INPAINT_TELEA))
    return np.stack(out), (time.perf_counter() - t0) / len(crop)


def psnr_where(truth: np.ndarray, result: np.ndarray, where: np.ndarray) -> float:
    """Mean over frames of the PSNR over ``where`` (H, W) pixels."""
    d = (truth[:, where].astype(np.float64) - result[:, where]) ** 2
    return float(np.mean([10 * math.log10(255**2 / max(m, 1e-10)) for m in d.reshape(len(d), -1).mean(axis=1)]))


def metrics(truth, result, new, band, motion, floor) -> dict:
    holes = np.broadcast_to(new, truth.shape[:3])
    fl = np.nanmean(flicker(result, holes, motion))
    return {"psnr": psnr_where(truth, result, new), "ssim": float(np.mean(ssim_around_holes(truth, result, holes))),
            "band": psnr_where(truth, result, band), "flicker": float(fl / floor),
            "sharp": float(np.nanmean(sharpness(result, truth, holes)))}


def evaluate(name: str, frames: np.ndarray, crops: list[str], base: tuple[str, Path] | None = None) -> list[dict]:
    motion = true_motion(frames)
    speed = float(np.median([np.median(s) for s in motion["speed"]]))
    rows = []
    for crop_name in crops:
        crop, x0 = crop_centre(frames, CROPS[crop_name])
        new, band = new_area(crop.shape[2], x0)
        floor = float(np.nanmean(flicker(frames, np.broadcast_to(new, frames.shape[:3]), motion)))
        runs = {"tsam": run_tsam(crop), "no motion": run_tsam(crop, motion=False),
                "telea": run_simple(crop, x0, "telea"), "edge": run_simple(crop, x0, "edge")}
        if base is not None:
            runs[f"tsam {base[0]}"] = run_baseline(crop, base[1])
        for method, (result, spf) in runs.items():
            assert np.array_equal(result[:, :, x0:x0 + crop.shape[2]], crop), f"{method} changed the original"
            row = {"clip": name, "camera": "moving" if speed > MOVING else "still", "speed": speed,
                   "crop": crop_name, "method": method, "s/frame": spf, "floor": floor}
            rows.append(row | metrics(frames, result, new, band, motion, floor))
            print(_line(row | rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    return (f"| {r['clip']} | {r['camera']} ({r['speed']:.1f}) | {r['crop']} | {r['method']} | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['band']:.2f} | {r['flicker']:.2f} | {r['sharp']:.2f} | {r['s/frame']:.3f} |")


HEADER = ("| clip | camera (px/frame) | crop | method | new-area PSNR | SSIM | band PSNR | flicker / original's | "
          "sharpness | s/frame |\n|---|---|---|---|---|---|---|---|---|---|")


def means(rows: list[dict]) -> list[str]:
    """Mean rows per (camera, crop, method)."""
    out = []
    keys = sorted({(r["camera"], r["crop"], r["method"]) for r in rows})
    for camera, crop, method in keys:
        sel = [r for r in rows if (r["camera"], r["crop"], r["method"]) == (camera, crop, method)]
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("psnr", "ssim", "band", "flicker", "sharp", "s/frame")}
        out.append(_line({"clip": f"**mean of {len(sel)}**", "camera": camera, "speed": math.nan, "crop": crop,
                          "method": method, **m}).replace(" (nan)", ""))
    return out


def speed_table(names: list[str], frames_n: int, base: tuple[str, Path] | None, repeats: int) -> None:
    """s/frame of 432x240 -> 576x240 for this tree and ``base`` (a revision and its checkout), each
    run in a fresh interpreter, alternating ``repeats`` times (wall time on a shared machine
    drifts, so the two trees meet the same load), and whether their outputs are identical."""
    from _common import ROOT

    trees = [("this tree", ROOT)] + ([] if base is None else [(f"baseline {base[0]}", base[1])])
    print("| clip | " + " | ".join(f"{t} s/frame" for t, _ in trees) + " | identical |")
    print("|---" * (len(trees) + 2) + "|")
    for name in names:
        src = clip_source(name)
        if src is None:
            continue
        frames = load_clip(src, frames_n)
        times: dict[str, list[float]] = {t: [] for t, _ in trees}
        outs = {}
        for _ in range(repeats):
            for t, root in trees:
                outs[t], sec = run_baseline(frames, root, "576x240")
                times[t].append(sec)
        same = "" if base is None else ("yes" if np.array_equal(*outs.values()) else "no")
        cells = " | ".join(" / ".join(f"{v:.3f}" for v in times[t]) for t, _ in trees)
        print(f"| {name} | {cells} | {same} |", flush=True)


def speed_check(frames: np.ndarray) -> float:
    """s/frame of 432x240 -> 576x240 (``--size 576x240``), 2 threads."""
    import tsam_cli as tsam

    t0 = time.perf_counter()
    tsam.outpaint(frames, size="576x240", threads=2)
    return (time.perf_counter() - t0) / len(frames)


MEMORY_RUN = r"""
import json, sys
import tsam_cli
kind, src, out, arg = sys.argv[1:5]
if kind == "outpaint":
    rep = tsam_cli.outpaint(src, out, pad=arg, quiet=True, overwrite=True)
else:  # inpaint of the same canvas, its new area given as the mask
    rep = tsam_cli.inpaint(src, arg, out, quiet=True, overwrite=True)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"frames": rep.n_frames, "seconds": rep.seconds, "peak_rss_mib": peak}))
"""


def memory_check(lengths: list[int], hd: bool = False) -> None:
    """Peak RSS of ``tsam outpaint`` 432x240 -> 576x240 (``hd``: the clip upscaled to 1920x1080,
    widened to 2.4:1, 2592x1080), bmx-trees looped ping-pong to each length, a fresh interpreter
    per run, next to ``tsam inpaint`` of the same canvas with the new area as its mask:
    outpainting must stay flat in length and within inpaint's memory at that size."""
    import subprocess
    import tempfile

    import cv2
    from _common import ROOT, bmx_frames, write_inputs

    frames, _ = bmx_frames()
    if hd:
        frames = np.stack([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in frames])
    pad = 336 if hd else 72
    wide = np.pad(frames, ((0, 0), (0, 0), (pad, pad), (0, 0)), mode="edge")
    holes = np.zeros(wide.shape[:3], bool)
    holes[:, :, :pad], holes[:, :, -pad:] = True, True
    print(f"{frames.shape[2]}x{frames.shape[1]} -> {wide.shape[2]}x{wide.shape[1]}\n")
    print("| frames | outpaint peak MiB | outpaint s/frame | inpaint (same canvas) peak MiB | inpaint s/frame |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            (Path(tmp) / f"wide{n}").mkdir()
            src, _ = write_inputs(Path(tmp), frames, holes[:, :, pad:-pad], n)
            big, mask = write_inputs(Path(tmp) / f"wide{n}", wide, holes, n)
            res = []
            for kind, inp, arg in (("outpaint", src, f"{pad},0,{pad},0"), ("inpaint", big, str(mask))):
                r = subprocess.run([sys.executable, "-c", MEMORY_RUN, kind, str(inp), str(Path(tmp) / f"{kind}.mp4"), arg],
                                   capture_output=True, text=True, cwd=ROOT, check=True)
                res.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"| {n} | {res[0]['peak_rss_mib']:.0f} | {res[0]['seconds'] / n:.3f} | "
                  f"{res[1]['peak_rss_mib']:.0f} | {res[1]['seconds'] / n:.3f} |", flush=True)


def still_table(names: list[str], frames_n: int) -> None:
    """Per clip, the 75 % crop's per-pair fraction of unchanged textured pixels along the seam
    (``tsam_cli.flow.beyond``'s still test: median, min, max over pairs) next to the true motion
    past the seam (median over pairs of the median true flow there): where STILL_FRACTION comes from."""
    from tsam_cli.flow.beyond import STILL_BAND, STILL_FRACTION, grey, textured, unchanged_fraction

    print(f"| clip | true motion past the seam (px/frame) | unchanged fraction median / min / max | "
          f"pairs held still (>= {STILL_FRACTION}) |\n|---|---|---|---|")
    for name in names:
        src = clip_source(name)
        if src is None:
            continue
        frames = load_clip(src, frames_n)
        motion = true_motion(frames)
        crop, x0 = crop_centre(frames, CROPS["75%"])
        new, _ = new_area(crop.shape[2], x0)
        band = np.zeros(crop.shape[1:3], np.uint8)
        band[:, :STILL_BAND], band[:, -STILL_BAND:] = 1, 1
        fr = [unchanged_fraction(grey(a), grey(b), (band > 0) & textured(grey(a)))
              for a, b in zip(crop[:-1], crop[1:], strict=True)]
        fr = np.array([np.nan if f is None else f for f in fr])
        if np.isnan(fr).all():
            print(f"| {name} | | too little texture along the seam: never decided | 0% |")
            continue
        truth = np.median([np.median(sp[new]) for sp in motion["speed"]])
        print(f"| {name} | {truth:.2f} | {np.nanmedian(fr):.2f} / {np.nanmin(fr):.2f} / {np.nanmax(fr):.2f} | "
              f"{np.mean(fr >= STILL_FRACTION):.0%} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--crops", default=",".join(CROPS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory", default=None, metavar="N,N", help="only the memory check, at these lengths")
    ap.add_argument("--hd", action="store_true", help="memory check at 1920x1080 -> 2.4:1 (2592x1080)")
    ap.add_argument("--baseline", default=None, metavar="REV", help="also run tsam of this git revision")
    ap.add_argument("--still-table", action="store_true", help="only the seam still test's numbers per clip")
    ap.add_argument("--speed", type=int, default=0, metavar="N",
                    help="only the 576x240 speed, N alternating runs per tree (with --baseline), outputs compared")
    args = ap.parse_args()
    if args.speed:
        with baseline_tree(args.baseline) as tree:
            speed_table(args.clips.split(","), args.frames, None if tree is None else (args.baseline, tree), args.speed)
        return
    if args.still_table:
        still_table(args.clips.split(","), args.frames)
        return
    if args.memory:
        memory_check([int(n) for n in args.memory.split(",")], args.hd)
        return
    with baseline_tree(args.baseline) as tree:
        rows, speeds = quality(args, None if tree is None else (args.baseline, tree))
    print("\n" + HEADER + "\n" + "\n".join(means(rows)))
    print("\n432x240 -> 576x240, s/frame: " + ", ".join(f"{k} {v:.3f}" for k, v in speeds.items()))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "speed_576": speeds}, indent=1))


def quality(args, base: tuple[str, Path] | None) -> tuple[list[dict], dict]:
    """Rows of every clip and crop, and the 576x240 s/frame per clip."""
    rows, speeds = [], {}
    print(HEADER)
    for name in args.clips.split(","):
        src = clip_source(name)
        if src is None:
            print(f"skip {name}: not in ../shared/data", file=sys.stderr)
            continue
        frames = load_clip(src, args.frames)
        for crop in args.crops.split(","):
            try:
                rows += evaluate(name, frames, [crop], base)
            except Exception as exc:  # a failing case is reported and the others still run
                print(f"| {name} | | {crop} | tsam | failed: {str(exc).splitlines()[-1][:120]} |", flush=True)
        speeds[name] = speed_check(frames)
    return rows, speeds


if __name__ == "__main__":
    main()
