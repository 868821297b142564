"""Speed and peak memory of ``tsam inpaint`` with the full TSAM generator on the CPU, fp32 and bf16,
side by side with the classical default (and, with ``--baseline REV``, the same runs on the
``tsam_cli`` of another git revision).

Weights: the official-layout random checkpoint of ``../shared/reference/tsam_parity`` when present
(official shapes, seeded random values; speed does not depend on the values), else a ``FULL``
generator with seeded random weights saved as safetensors. Input: the bmx-trees clip at 432x240
with its object masks, looped ping-pong to each length. Every run is a fresh interpreter (its
peak RSS is its own, read from VmHWM; its CPU seconds, user + system, from the children's
``os.times``, printed with the 1-minute load average after the run: other jobs on the machine
inflate wall time far more than CPU time). Default model options (``--model-window 12
--model-stride 8``) unless given.

    python benchmarks/model_speed.py [--lengths 24 80] [--precisions fp32 bf16] [--baseline REV] [--no-propagation]
                                     [--model-window N] [--model-stride N] [--no-classical]

``--layers N [--chunk C]``: instead, the generator alone on N random frames at 432x240 (fp32,
official quirks, decoder chunks of C frames, 0 = whole clip), printing the output size, the
current RSS and the peak RSS after each layer (forward hooks), to see where the memory goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import ROOT, baseline_tree, bmx_frames, run_inpaint, write_inputs

PARITY_CKPT = ROOT.parent / "shared" / "reference" / "tsam_parity" / "tsam_official_random_generator.pth"


def full_weights(tmp: Path) -> str:
    """A weight file with the official architecture: the parity fixture, else random ``FULL``."""
    if PARITY_CKPT.is_file():
        return str(PARITY_CKPT)
    import torch

    from tsam_cli.model import FULL, TSAMGenerator
    from tsam_cli.model.tsam_format import save_generator

    torch.manual_seed(0)
    return str(save_generator(TSAMGenerator(FULL.replace(official_quirks=True)).eval(), tmp / "full.safetensors"))


def layer_profile(frames: int, chunk: int) -> None:
    """Per-layer output MB, current and peak RSS (MiB) of one generator forward."""
    import resource

    import torch

    from tsam_cli.core.model_fill import release_freed_memory
    from tsam_cli.model import FULL, TSAMGenerator

    def rss() -> float:
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) / 1024

    torch.manual_seed(0)
    release_freed_memory()  # as ModelRunner does on the CPU
    g = TSAMGenerator(FULL.replace(official_quirks=True)).eval()
    T, H, W = frames, 240, 432
    x, m = torch.rand(1, T, 3, H, W), (torch.rand(1, T, 1, H, W) > 0.8).float()
    fl = {"forward": torch.randn(1, T - 1, 2, H, W), "backward": torch.randn(1, T - 1, 2, H, W)}
    for name, mod in g.named_modules():
        if 0 < name.count(".") <= 4 and ("layer" in name or "upsample_module." in name):
            mod.register_forward_hook(lambda mod, i, out, name=name: print(
                f"{name:<52}{str(tuple(out.shape)):<22}{out.numel() * 4 / 2**20:7.0f} MB{rss():9.0f}"
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:9.0f}"))
    print(f"{'layer':<52}{'output':<22}{'size':>10}{'RSS':>9}{'peak':>9}   (base {rss():.0f} MiB)")
    with torch.inference_mode():
        g(x, m, fl, frame_chunk=chunk or None)


def configs(args, weights: str) -> list[tuple[str, dict]]:
    """(label, inpaint options) of every run, classical first."""
    out = [] if args.no_classical else [("classical", {})]
    extra = {k: v for k, v in (("model_window", args.model_window), ("model_stride", args.model_stride)) if v}
    if args.no_propagation:  # the worst case: every frame keeps its holes for the generator
        extra["propagation"] = False
    for p in args.precisions:
        out.append((f"full {p}", {"model": weights, "device": "cpu", "precision": p, **extra}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[24, 80])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--model-window", type=int, default=None)
    ap.add_argument("--model-stride", type=int, default=None)
    ap.add_argument("--no-classical", action="store_true")
    ap.add_argument("--no-propagation", action="store_true",
                    help="model runs without propagation: the generator fills every hole of every frame")
    ap.add_argument("--baseline", default=None, help="git revision to run side by side (fp32 only: bf16 was refused)")
    ap.add_argument("--layers", type=int, default=0, help="per-layer memory profile of the generator on N frames")
    ap.add_argument("--chunk", type=int, default=1, help="with --layers: decoder frame chunk (0 = whole clip)")
    args = ap.parse_args()
    print("command: python benchmarks/model_speed.py " + " ".join(sys.argv[1:]))
    if args.layers:
        layer_profile(args.layers, args.chunk)
        return
    print(f"CPU threads: {os.cpu_count()}; 432x240 bmx-trees looped; s/frame = whole run / frames")
    frames, masks = bmx_frames()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, baseline_tree(args.baseline) as base:
        weights = full_weights(Path(tmp))
        print(f"weights: {weights}")
        for n in args.lengths:
            video, mask = write_inputs(Path(tmp), frames, masks, n)
            for label, opts in configs(args, weights):
                trees = [("this tree", None)] + ([(f"baseline {args.baseline}", base)] if base else [])
                for tree, root in trees:
                    if root is not None and opts.get("precision") == "bf16":
                        continue
                    t0 = os.times()
                    r = run_inpaint(video, mask, Path(tmp) / f"out_{n}.mp4", **({"root": root} if root else {}), **opts)
                    t1 = os.times()
                    # CPU seconds of the run's process (user + system): less sensitive to other jobs than wall time
                    r["cpu_s"] = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
                    r["load"] = os.getloadavg()[0]
                    rows.append((tree, label, n, r))
                    _print_row(*rows[-1])


def _print_row(tree: str, label: str, n: int, r: dict) -> None:
    if not hasattr(_print_row, "done"):
        print(f"{'tree':<20}{'run':<12}{'frames':>7}{'s/frame':>9}{'model s/f':>11}{'CPU s/f':>9}{'peak RSS MiB':>14}"
              f"{'load':>6}")
        _print_row.done = True
    model = r["timings"].get("model", 0.0) / n
    print(f"{tree:<20}{label:<12}{n:>7}{r['seconds'] / n:>9.3f}{model:>11.3f}{r['cpu_s'] / n:>9.3f}"
          f"{r['peak_rss_mib']:>14.0f}{r['load']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
