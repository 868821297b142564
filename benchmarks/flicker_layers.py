"""Is the fill's flicker a fill that jitters, or a fill that follows the background where the
truth under the hole moved with something else? The flicker of ``fill_quality.py`` warps the
result along the *true* motion of the original under the hole. When a synthetic hole covers a
moving subject (a skater, a dog), the truth there moves with the subject, while a removal fills
it with the background, which moves with the camera: warped along the subject's motion, even a
perfectly steady background fill differs from frame to frame.

This splits each frame's consistent hole pixels by the truth's own motion layer: "background"
where the true flow is within ``LAYER_INLIER_TOL`` (1 px) of the frame's dominant motion
(``tsam_cli.flow.GlobalMotion``, the RANSAC affine map the pipeline uses, fitted to the true
flow outside the hole), "subject" elsewhere, and gives the flicker ratio (result / original,
pixel-weighted over the same pixels) of each part, all frames and fast-motion frames.

    python benchmarks/flicker_layers.py [--set dev|held-out|shared] [--frames 60] [--methods default,telea]

Same clips, holes, inputs and runs as ``fill_quality.py`` (``--dilate 0``, lossless).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import fill_quality as fq
import numpy as np
from _common import clip_sets

LAYERS = ["background", "subject"]


def layer_of_truth(motion: dict, holes: np.ndarray) -> list[np.ndarray | None]:
    """Per pair t: ``(H, W) bool`` True = the true flow at t follows the frame's dominant motion
    (fitted outside the hole), or None when no model could be fitted."""
    from tsam_cli.flow import GlobalMotion
    from tsam_cli.flow.complete import LAYER_INLIER_TOL

    gx, gy = np.meshgrid(np.arange(fq.W, dtype=np.float32), np.arange(fq.H, dtype=np.float32))
    fit, out = GlobalMotion(), []
    for t, (mx, my) in enumerate(motion["maps"]):
        fwd = np.stack([mx - gx, my - gy], axis=2)
        model = fit(fwd, ~holes[t])
        out.append(None if model is None else np.linalg.norm(fwd - model, axis=2) < LAYER_INLIER_TOL)
    return out


def diffs(video: np.ndarray, motion: dict) -> list[np.ndarray]:
    """Per pair t: ``(H, W)`` |grey(v_t) - grey(v_t+1) warped back along the true flow|."""
    import cv2

    return [np.abs(fq.grey(video[t]) - cv2.remap(fq.grey(video[t + 1]), mx, my, cv2.INTER_LINEAR))
            for t, (mx, my) in enumerate(motion["maps"])]


def tally(acc: dict, key: tuple, res_d: np.ndarray, truth_d: np.ndarray, sel: np.ndarray) -> None:
    if sel.sum() >= fq.MIN_PIXELS:
        a = acc.setdefault(key, [0.0, 0.0, 0])
        a[0] += float(res_d[sel].sum())
        a[1] += float(truth_d[sel].sum())
        a[2] += int(sel.sum())


def score_clip(name: str, frames: np.ndarray, methods: dict, tmp: Path, acc: dict) -> None:
    motion = fq.true_motion(frames)
    truth_d = diffs(frames, motion)
    for k, kind in enumerate(fq.KINDS):
        holes = fq.make_masks(kind, len(frames), name, 0)
        layers = layer_of_truth(motion, holes)
        video, mask = fq.write_inputs(tmp / name / str(k), frames, holes)
        for label, (opts, root) in methods.items():
            out, _ = fq.run_method(opts, root, video, mask, tmp / name / str(k) / f"{label}.mkv")
            res_d = diffs(out, motion)
            for t, bg in enumerate(layers):
                if bg is None:
                    continue
                sel = holes[t] & motion["ok"][t]
                fast = float(np.median(motion["speed"][t][holes[t]])) > fq.FAST
                for layer, part in (("background", bg), ("subject", ~bg)):
                    for frames_kind in ["all", "fast"] if fast else ["all"]:
                        tally(acc, (kind, label, layer, frames_kind), res_d[t], truth_d[t], sel & part)
                        tally(acc, (kind, label, "both", frames_kind), res_d[t], truth_d[t], sel & part)
        print(f"  {name} {kind} done", flush=True)


def table(acc: dict, methods: list[str]) -> str:
    lines = ["| mask | method | frames | background: ratio (share) | subject: ratio (share) | both |",
             "|---|---|---|---|---|---|"]
    for kind in fq.KINDS:
        for label in methods:
            for frames_kind in ("all", "fast"):
                both = acc.get((kind, label, "both", frames_kind))
                if not both:
                    continue
                cells = []
                for layer in LAYERS:
                    a = acc.get((kind, label, layer, frames_kind), [0.0, 0.0, 0])
                    cells.append(f"{a[0] / max(a[1], 1e-9):.2f}x ({a[2] / both[2]:.0%})" if a[2] else "-")
                lines.append(f"| {kind} | {label} | {frames_kind} | {cells[0]} | {cells[1]} | "
                             f"{both[0] / max(both[1], 1e-9):.2f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="dev", choices=["shared", "dev", "held-out"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--methods", default="default,telea")
    args = ap.parse_args()
    names = fq.CLIPS if args.set == "shared" else clip_sets()[args.set]
    methods = fq.method_table(args.methods.split(","), None, None)
    acc: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            src = fq.clip_source(name)
            if src is not None:
                score_clip(name, fq.load_clip(src, args.frames), methods, Path(tmp), acc)
    print(f"\n{args.set} set, {args.frames} frames; flicker ratio = result / original over the same pixels "
          "(pixel-weighted), share = the layer's part of the consistent hole pixels\n")
    print(table(acc, list(methods)))


if __name__ == "__main__":
    main()
