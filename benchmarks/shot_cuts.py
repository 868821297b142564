"""Shot-cut rule check: colour score and flow consistency within shots and across cuts.

    python benchmarks/shot_cuts.py [--frames 80]

For every clip of ``../shared/data`` (432x240, first ``--frames`` frames): the largest colour
score (``tsam_cli.core.shots.cut_score``) over neighbouring pairs, and at the pairs scoring
above 20 the flow-consistent fraction; then the first frames of ten clips against each other
(real cuts). Numbers recorded in docs/shot-cuts.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import SHARED
from fill_quality import CLIPS, clip_source, load_clip


def pair_stats(est, a, b) -> tuple[float, float]:
    from tsam_cli.core.shots import cut_score
    from tsam_cli.flow.pair import pair_flow

    z = np.zeros(a.shape[:2], bool)
    return cut_score(a, b, z, z), float(pair_flow(est, a, b, z, z).valid_f.mean())


def clip_names() -> list[str]:
    folder = SHARED / "train"
    train = sorted(p.name for p in folder.iterdir() if p.is_dir() or p.suffix == ".mp4") if folder.is_dir() else []
    return ["bmx-trees", "schoolgirls", *train]


def main() -> None:
    from tsam_cli.core.shots import CUT_MAX_VALID, CUT_THRESHOLD, cut_score
    from tsam_cli.flow.estimate import make_estimator

    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=80)
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"shot_cuts: {SHARED} not found (skipped)")
        return
    est = make_estimator("dis")
    print(f"rule: cut = colour score > {CUT_THRESHOLD} and flow-consistent fraction < {CUT_MAX_VALID}\n")
    print("| clip | max colour score | min consistent fraction at scores > 20 | cuts found |\n|---|---|---|---|")
    for name in clip_names():
        src = clip_source(name) or clip_source(Path(name).stem)
        if src is None:
            continue
        fr = load_clip(Path(src), args.frames)
        z = np.zeros(fr.shape[1:3], bool)
        scores = [cut_score(fr[t], fr[t + 1], z, z) for t in range(len(fr) - 1)]
        high = [pair_stats(est, fr[t], fr[t + 1]) for t, s in enumerate(scores) if s > 20]
        valid = min((v for _, v in high), default=float("nan"))
        cuts = sum(s > CUT_THRESHOLD and v < CUT_MAX_VALID for s, v in high)
        print(f"| {name} | {max(scores):.1f} | {valid:.2f} | {cuts} |")
    firsts = [load_clip(Path(clip_source(c)), 1)[0] for c in CLIPS[:10] if clip_source(c)]
    cross = [pair_stats(est, a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:]]
    s, v = np.array([c[0] for c in cross]), np.array([c[1] for c in cross])
    found = int(((s > CUT_THRESHOLD) & (v < CUT_MAX_VALID)).sum())
    print(f"\nreal cuts (first frames of {len(firsts)} clips, {len(cross)} pairs): colour score {s.min():.1f}-{s.max():.1f}, "
          f"consistent fraction max {v.max():.3f}; detected {found}/{len(cross)}")


if __name__ == "__main__":
    main()
