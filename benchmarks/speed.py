"""Speed per stage and peak memory of ``tsam inpaint`` at 432x240, for a short and a long video.

1. Classical path (default): the bmx-trees clip (80 frames, 432x240, its real object masks)
   looped ping-pong to each length; every run is a fresh interpreter, so its peak RSS is its
   own. Peak RSS must not grow with the number of frames (the pipeline streams).
2. ``--generator``: the TSAM generator alone, s/frame for the ``compact`` and ``full``
   configs at 432x240 (random weights: speed does not depend on the values), CPU, fp32,
   ``torch.inference_mode``, one window of ``--gen-frames`` frames.
3. ``--model compact``: the whole pipeline with a generator (random compact weights unless a
   file is given), per stage and peak RSS by length.

With ``--baseline REV`` (a git revision) every run is repeated, alternating, with the
``tsam_cli`` of that revision on the same inputs, and both are printed side by side.

    python benchmarks/speed.py [--lengths 80 400] [--flow dis] [--generator] [--model compact|PATH]
                               [--baseline REV] [--repeats-pipeline 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import baseline_tree, bmx_frames, run_inpaint, write_inputs

STAGES = ["decode", "resize", "flow", "propagate", "fill", "model", "paste", "encode"]


def generator_speed(frames: int, repeats: int) -> None:
    import time

    import torch

    from tsam_cli.model import TSAMGenerator, get_preset

    torch.manual_seed(0)
    B, T, H, W = 1, frames, 240, 432
    x = torch.rand(B, T, 3, H, W)
    m = (torch.rand(B, T, 1, H, W) > 0.8).float()
    fl = {"forward": torch.randn(B, T - 1, 2, H, W), "backward": torch.randn(B, T - 1, 2, H, W),
          "forward_valid": torch.ones(B, T - 1, 1, H, W), "backward_valid": torch.ones(B, T - 1, 1, H, W)}
    print(f"generator alone, 432x240, window of {T} frames, CPU fp32, {torch.get_num_threads()} threads")
    print(f"{'config':<10}{'params':>12}{'best s/f':>10}{'median s/f':>12}")
    for name in ("compact", "full"):
        g = TSAMGenerator(get_preset(name)).eval()
        n = sum(p.numel() for p in g.parameters())
        times = []
        with torch.inference_mode():
            g(x, m, fl)  # warm-up
            for _ in range(repeats if name == "compact" else max(1, repeats // 3)):
                t0 = time.perf_counter()
                g(x, m, fl)
                times.append((time.perf_counter() - t0) / T)
        times.sort()
        print(f"{name:<10}{n:>12,}{times[0]:>10.3f}{times[len(times) // 2]:>12.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[80, 400])
    ap.add_argument("--flow", default="dis")
    ap.add_argument("--max-size", type=int, default=960)
    ap.add_argument("--generator", action="store_true", help="time the generator alone instead")
    ap.add_argument("--gen-frames", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--model", default="classical", help="classical, compact (random weights) or a weight file")
    ap.add_argument("--baseline", default=None, help="git revision to run side by side (e.g. HEAD~5)")
    ap.add_argument("--repeats-pipeline", type=int, default=1, help="runs per length and tree")
    args = ap.parse_args()
    if args.generator:
        generator_speed(args.gen_frames, args.repeats)
        return
    frames, masks = bmx_frames()
    with tempfile.TemporaryDirectory() as tmp, baseline_tree(args.baseline) as base:
        model = _model_file(args.model, Path(tmp))
        rows = []
        for n in args.lengths:
            video, mask = write_inputs(Path(tmp), frames, masks, n)
            for _rep in range(args.repeats_pipeline):  # alternate, so a busy moment hits both alike
                for label, root in [("this tree", None), (f"baseline {args.baseline}", base)]:
                    if label != "this tree" and root is None:
                        continue
                    r = run_inpaint(video, mask, Path(tmp) / f"out_{n}.mp4", flow=args.flow,
                                    max_size=args.max_size, model=model, **({"root": root} if root else {}))
                    rows.append((label, n, r))
    _print_rows(rows, args)


def _model_file(model: str, tmp: Path) -> str:
    """``compact`` without a file: random compact weights (speed does not depend on values)."""
    if model != "compact" or Path(model).is_file():
        return model
    import torch

    from tsam_cli.model import TSAMGenerator, get_preset
    from tsam_cli.model.tsam_format import save_generator

    torch.manual_seed(0)
    return str(save_generator(TSAMGenerator(get_preset("compact")).eval(), tmp / "compact.safetensors"))


def _print_rows(rows, args) -> None:
    print(f"432x240, bmx-trees looped, flow={args.flow}, model={args.model}; seconds per frame by stage "
          f"(fill runs inside propagate)")
    head = f"{'tree':<22}{'frames':>7}{'total s/f':>11}" + "".join(f"{s:>10}" for s in STAGES) + f"{'peak RSS MiB':>14}"
    print(head)
    for label, n, r in rows:
        t = r["timings"]
        print(f"{label:<22}{n:>7}{r['seconds'] / n:>11.4f}" + "".join(f"{t.get(s, 0) / n:>10.4f}" for s in STAGES)
              + f"{r['peak_rss_mib']:>14.0f}")
    mine = [(n, r) for label, n, r in rows if label == "this tree"]
    if len(args.lengths) > 1:
        a, b = mine[0], mine[-1]
        print(f"peak RSS ratio {b[0]} vs {a[0]} frames: {b[1]['peak_rss_mib'] / a[1]['peak_rss_mib']:.3f}")


if __name__ == "__main__":
    main()
