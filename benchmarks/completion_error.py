"""How far the completed flow inside the holes is from the true flow, for several ways of
completing it: the measurement behind "where the flicker comes from" (docs/benchmarks.md).

Same clips and holes as ``fill_quality.py`` / ``flicker_sources.py``. For each pair (t, t+1) the
true flow is DIS on the original frames (which this benchmark keeps under the hole); end-point
error (px) is averaged over the hole pixels of t whose true flow passes a 0.5 px forward-backward
check, over all pairs and over fast-motion pairs (median true motion in the hole > 4 px/frame).

Completions compared (the measured flow outside the hole is the same for all):

* ``default``: :func:`tsam_cli.flow.pair.pair_flow` as shipped (affine background model plus
  the smooth residual of the pixels that follow it, other layers smooth, layer checks);
* ``smooth``: push-pull smooth fill of the whole border (no motion model);
* ``affine``: the affine model alone; ``affine+residual``: the model plus the smooth residual
  everywhere; ``homography+residual``: the same with a homography;
* ``temporal mean``: the default completion averaged with the completions of the pairs before
  and after, each read at the same scene point (a random per-pair error would average out).

    python benchmarks/completion_error.py [--set dev|held-out|shared] [--clips a,b] [--frames 30]
"""

from __future__ import annotations

import argparse

import numpy as np
from fill_quality import FAST, KINDS, load_clip, make_masks
from flicker_sources import pick_clips

from tsam_cli.flow import complete as C
from tsam_cli.flow.estimate import make_estimator
from tsam_cli.flow.pair import pair_flow
from tsam_cli.flow.validity import validity
from tsam_cli.flow.warp import grow, sample

FB_TRUTH = 0.5  # px: the true flow's own forward-backward check (as fill_quality.FB_MAX)


def spatial_variants(raw_f: np.ndarray, raw_b: np.ndarray, hole_a: np.ndarray, hole_b: np.ndarray) -> dict:
    """The completions that use this pair only, ``{name: (H, W, 2) flow a -> b}``."""
    grown_a, grown_b = grow(hole_a, C.FLOW_MARGIN), grow(hole_b, C.FLOW_MARGIN)
    model = C.DEFAULT_MOTION(raw_f, ~grown_a)
    region = C.untrusted(grown_a, raw_f, grown_b, raw_b, model)
    out = {"smooth": C.smooth_fill(raw_f, region)}
    inside = region[..., None]
    if model is not None:
        out["affine"] = np.where(inside, model, raw_f)
        out["affine+residual"] = np.where(inside, model + C.smooth_fill(raw_f - model, region), raw_f)
    homography = C.GlobalMotion("homography")(raw_f, ~grown_a)
    if homography is not None:
        out["homography+residual"] = np.where(inside, homography + C.smooth_fill(raw_f - homography, region), raw_f)
    return out


def clip_errors(frames: np.ndarray, holes: np.ndarray, est, acc: dict) -> None:
    """Add ``[error sum, pixel count]`` per (variant, all|fast) for one clip and hole kind."""
    T = len(frames)
    pairs = [pair_flow(est, frames[t], frames[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    for t in range(1, T - 2):
        raw_f, raw_b = est(frames[t], frames[t + 1]), est(frames[t + 1], frames[t])
        sel = holes[t] & validity(raw_f, raw_b, FB_TRUTH)
        if sel.sum() < 50:
            continue
        fast = float(np.median(np.linalg.norm(raw_f, axis=2)[holes[t]])) > FAST
        cur = pairs[t].fwd
        before = sample(pairs[t - 1].fwd, pairs[t - 1].bwd)  # pair t-1's vector at the point that lands on p
        after = sample(pairs[t + 1].fwd, cur)  # pair t+1's vector where p lands
        variants = {"default": cur, **spatial_variants(raw_f, raw_b, holes[t], holes[t + 1]),
                    "temporal mean": (before + cur + after) / 3}
        for name, flow in variants.items():
            err = float(np.linalg.norm(flow - raw_f, axis=2)[sel].sum())
            for group in ("all", "fast") if fast else ("all",):
                s = acc.setdefault((name, group), [0.0, 0])
                s[0], s[1] = s[0] + err, s[1] + int(sel.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="dev", choices=["dev", "held-out", "all", "shared"])
    ap.add_argument("--clips", default=None)
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()
    clips = pick_clips(args.set, args.clips)
    est, acc = make_estimator("dis"), {}
    for name, src in clips:
        frames = load_clip(src, args.frames)
        for kind in KINDS:
            clip_errors(frames, make_masks(kind, len(frames), name, 0), est, acc)
    print(f"clips: {', '.join(c for c, _ in clips)}; {args.frames} frames; end-point error (px) in the holes\n")
    print("| completion | all pairs | fast-motion pairs |\n|---|---|---|")
    for name in dict.fromkeys(k[0] for k in acc):
        cells = [f"{acc[(name, g)][0] / acc[(name, g)][1]:.3f}" if (name, g) in acc else "—" for g in ("all", "fast")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
