"""Are this tree's outputs bit-identical to a baseline revision's? (restructuring check)

Every case inpaints a clip to a folder of PNG frames (lossless) with this tree and with the
``tsam_cli`` of ``--baseline REV`` (a temporary git worktree), each in a fresh interpreter,
and compares the frames byte for byte. Cases cover every path of the filling loop: the
default (texture filler), Telea, no propagation, full-resolution propagation, the generator
(shipped compact weights) with and without propagation, short windows (window borders and the
previous frame carried across them), and the real clips of ``../shared`` when present.

    python benchmarks/identical.py --baseline HEAD~1 [--frames 24]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from _common import SHARED, baseline_tree, bmx_frames, run_inpaint, write_inputs

CASES = {
    "default": {},
    "telea": {"filler": "telea"},
    "no-propagation": {"propagation": False},
    "full-res": {"max_size": 216, "full_res": True},
    "short windows": {"window": 6, "lookahead": 3},
    "compact": {"model": "compact"},
    "compact, no propagation": {"model": "compact", "propagation": False},
    "compact, short windows": {"model": "compact", "window": 6, "lookahead": 3},
}


def digests(folder: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))]


def shared_clips(work: Path, frames: int) -> list[tuple[str, Path, Path]]:
    """schoolgirls (its object masks) and running_car (its square mask on every frame) from
    ../shared, cut to ``frames`` and written as inputs like bmx-trees."""
    import cv2
    import numpy as np

    from tsam_cli.media import iter_frames, list_images, probe

    clips = []
    for name, masks_of in (("schoolgirls", lambda d: list_images(d / "masks")),
                           ("running_car", lambda d: [d / "mask_square.png"] * frames)):
        src = SHARED / name
        if not (src / f"{name}.mp4").is_file():
            continue
        rgb = [f.rgb for _, f in zip(range(frames), iter_frames(probe(src / f"{name}.mp4")), strict=False)]
        files = masks_of(src)[: len(rgb)]
        masks = np.stack([cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), rgb[0].shape[1::-1],
                                     interpolation=cv2.INTER_NEAREST) > 127 for p in files])
        (work / name).mkdir()
        video, mask = write_inputs(work / name, np.stack(rgb[: len(masks)]), masks, len(masks))
        clips.append((name, video, mask))
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare with")
    ap.add_argument("--frames", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, baseline_tree(args.baseline) as base:
        work = Path(tmp)
        frames, masks = bmx_frames(args.frames)
        video, mask = write_inputs(work, frames, masks, len(frames))
        runs = [(f"bmx-trees {case}", video, mask, opts) for case, opts in CASES.items()]
        runs += [(f"{name} default", v, m, {}) for name, v, m in shared_clips(work, args.frames)]
        print(f"{'case':<34} {'frames':>6}  identical to {args.baseline}")
        bad = 0
        for label, v, m, opts in runs:
            got = {}
            for tag, root in (("new", None), ("base", base)):
                out = work / f"{label}-{tag}".replace(" ", "_").replace(",", "")
                run_inpaint(v, m, out, **({"root": root} if root else {}), **opts)
                got[tag] = digests(out)
            same = got["new"] == got["base"]
            bad += not same
            differ = sum(a != b for a, b in zip(got["new"], got["base"], strict=False))
            print(f"{label:<34} {len(got['new']):>6}  {'yes' if same else f'NO ({differ} frames differ)'}")
        print("all identical" if not bad else f"{bad} case(s) differ")


if __name__ == "__main__":
    main()
