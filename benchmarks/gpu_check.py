"""GPU check of the TSAM network (docs/benchmarks.md, "GPU check"): parity, precision, speed and VRAM on CUDA.

    python benchmarks/gpu_check.py [--json out.json]          # one CUDA GPU, a few minutes
    python benchmarks/gpu_check.py --device cpu --quick       # dry run of everything but CUDA

1. **Parity (fp32).** The fixture ``../shared/reference/tsam_parity/`` (see its README): an
   official-layout checkpoint with seeded random weights, loaded through the real loader
   (restricted unpickler, official quirks on), run on the cases ``main`` / ``stress`` /
   ``noflow`` of ``parity_inputs.npz`` and compared with the official code's outputs. Strict
   fp32 (TF32 off) passes when max |diff| <= the fixture's tolerance 1e-4. On CUDA also with
   PyTorch's default (cuDNN convolutions may use TF32: what a user run gets) and strict again
   with the model in ``channels_last`` (as ``ModelRunner`` runs it on CUDA).
2. **Precision.** The same cases under fp16 and bf16 autocast (``--precision fp16/bf16``;
   ``channels_last`` on CUDA): max / mean |diff| against the fp32 official outputs, and how many
   8-bit hole values change.
3. **Speed and memory.** bmx-trees (its real masks; ``examples/`` when ``../shared`` is absent)
   upscaled to 432x240, 960x540 and 1920x1080, ``--frames`` frames, official-shaped random weights
   (speed does not depend on the values):
   - the generator alone (``ModelRunner``; every window has holes), at the video size, fp32 and
     ``--precision auto``, beside the memory model's estimate (``model_fill.window_bytes``);
   - the whole ``inpaint`` pipeline with ``--model FILE`` (default ``--max-size``, so 1080p is
     processed at 960x540 and pasted back), next to the classical pipeline on the same clip
     (the ratio model / classical is printed).
   Each with the default window (12 frames every 8) and, where it differs, the automatic window
   (``model_fill.fit_window``) for the GPU's free memory and for ``--budget-gib`` free (a smaller
   GPU). s/frame and peak VRAM (``torch.cuda.max_memory_allocated``) per row; on the CPU dry run
   the VRAM column is empty.

Without CUDA (and ``--device cuda``, the default) it stops at once with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

#: the parity fixture: ``../shared`` beside the checkout, or a ``shared/`` inside it (how a
#: device machine receives it)
FIXTURE = next((p for p in (ROOT.parent / "shared" / "reference" / "tsam_parity",
                            ROOT / "shared" / "reference" / "tsam_parity") if p.is_dir()),
               ROOT.parent / "shared" / "reference" / "tsam_parity")
#: max |diff| the fixture's manifest allows in fp32 ("tolerance_max_abs")
FP32_TOLERANCE = 1e-4
SIZES = [(432, 240), (960, 540), (1920, 1080)]
QUICK_SIZES = [(96, 56), (160, 96)]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (dry run)")
    ap.add_argument("--quick", action="store_true", help=f"tiny sizes {QUICK_SIZES} and 6 frames (dry run)")
    ap.add_argument("--frames", type=int, default=None, help="frames per speed run (default 24, quick 6)")
    ap.add_argument("--fixture", type=Path, default=FIXTURE, help="the tsam_parity fixture folder")
    ap.add_argument("--skip", nargs="*", default=[], choices=["parity", "precision", "generator", "pipeline"])
    ap.add_argument("--budget-gib", type=float, default=None,
                    help="also run the automatic window as if only this much memory were free (default 8, quick 0.1)")
    ap.add_argument("--json", type=Path, default=None, help="also write every number to this file")
    args = ap.parse_args(argv)
    args.frames = args.frames or (6 if args.quick else 24)
    args.sizes = QUICK_SIZES if args.quick else SIZES
    args.budget_gib = args.budget_gib or (0.1 if args.quick else 8.0)
    return args


def require_device(name: str) -> None:
    """Exit 2 at once, with the fix, when a CUDA device is asked for and PyTorch sees none."""
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        built = torch.version.cuda or "none: a CPU-only build"
        print(f"error: no CUDA GPU (torch {torch.__version__}, CUDA {built}): run this on a machine with a GPU, "
              "or `python benchmarks/gpu_check.py --device cpu --quick` for a dry run", file=sys.stderr)
        raise SystemExit(2)


# ----------------------------------------------------------------------------------- parity
@contextlib.contextmanager
def tf32(enabled: bool):
    """cuDNN convolutions with or without TF32 (PyTorch's default is on), restored afterwards.
    Uses ``torch.backends.cudnn.conv.fp32_precision`` where this torch has it (2.9+), else
    the older ``allow_tf32`` flag."""
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        before = conv.fp32_precision
        conv.fp32_precision = "tf32" if enabled else "ieee"
        restore = lambda: setattr(conv, "fp32_precision", before)
    else:
        before = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = enabled
        restore = lambda: setattr(torch.backends.cudnn, "allow_tf32", before)
    try:
        yield
    finally:
        restore()


def case_inputs(data, case: str, device):
    """One fixture case -> (frames (1,L,3,H,W), holes 1 = hole, flows dict or None, expected)."""
    import torch

    def get(key):
        return torch.from_numpy(data[f"{case}/{key}"]).to(device)

    holes = 1.0 - get("masks")  # the fixture's masks are 1 = known (official polarity)
    flows = None
    if f"{case}/forward_flow" in data:
        flows = {"forward": get("forward_flow"), "backward": get("backward_flow"),
                 "forward_valid": 1.0 - get("forward_flowmask"), "backward_valid": 1.0 - get("backward_flowmask")}
    return get("imgs"), holes, flows, get("expected_outputs")


def levels8(t):
    """The 8-bit values a user sees: clamp to [0, 1], scale, round."""
    return (t.clamp(0, 1) * 255).round()


def compare(out, expected, holes) -> dict:
    """max/mean |diff| (all pixels and holes) and the 8-bit hole values that change."""
    diff = (out.float() - expected).abs()
    in_hole = holes.expand_as(diff) > 0.5
    levels = (levels8(out.float()) - levels8(expected)).abs()[in_hole]
    return {"max_abs": float(diff.max()), "mean_abs_holes": float(diff[in_hole].mean()),
            "max_abs_ref": float(expected.abs().max()), "max_level_diff": int(levels.max()),
            "n_level_diff": int((levels > 0).sum()), "n_hole_values": int(in_hole.sum())}


def run_cases(models: dict, data, device, dtype=None) -> dict:
    """Every fixture case through its model (``noflow`` has its own config), optionally in autocast."""
    import torch

    rows = {}
    for case, model in models.items():
        frames, holes, flows, expected = case_inputs(data, case, device)
        ctx = torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            out = model(frames, holes, flows, clamp=False)
        rows[case] = compare(out, expected, holes)
    return rows


def fixture_models(folder: Path, device) -> tuple[dict, dict]:
    """The fixture's generator through the real loader: the flow config for ``main``/``stress``,
    the same weights with ``use_flow=False`` for ``noflow`` (the official no-flow config)."""
    import torch

    from tsam_cli.model.generator import TSAMGenerator
    from tsam_cli.model.tsam_format import load_generator

    model = load_generator(folder / "tsam_official_random_generator.pth").to(device).eval()
    noflow = TSAMGenerator(model.config.replace(use_flow=False))
    noflow.load_state_dict(model.state_dict())
    data = dict(np.load(folder / "parity_inputs.npz"))
    torch.manual_seed(0)
    return {"main": model, "stress": model, "noflow": noflow.to(device).eval()}, data


def parity_and_precision(args, device, results: dict) -> None:
    """Sections 1 and 2. Skipped with a note when the fixture is absent."""
    import torch

    if not (args.fixture / "parity_inputs.npz").is_file():
        print(f"\nparity/precision: skipped, fixture not found at {args.fixture} (pass --fixture)")
        return
    models, data = fixture_models(args.fixture, device)
    for label, dtype, allow in parity_runs(args, device):
        if label.startswith("channels_last"):  # what ModelRunner does on CUDA, from here on
            models = {case: m.to(memory_format=torch.channels_last) for case, m in models.items()}
        try:
            with tf32(allow):
                results["parity"][label] = run_cases(models, data, device, dtype)
        except RuntimeError as exc:  # e.g. fp16 autocast not supported on this CPU build
            results["parity"][label] = {"error": str(exc).splitlines()[0][:120]}
    print_parity(results["parity"])


def parity_runs(args, device) -> list[tuple[str, object, bool]]:
    """(label, autocast dtype or None, TF32 allowed) of each parity / precision run. On CUDA the
    strict fp32 run is repeated with PyTorch's TF32 default and, like every later run, with the
    model in ``channels_last`` (as ``ModelRunner`` runs it there)."""
    import torch

    runs: list[tuple[str, object, bool]] = []
    cuda = device.type == "cuda"
    if "parity" not in args.skip:
        runs.append(("fp32, TF32 off", None, False))
        if cuda:
            runs += [("fp32, PyTorch default (TF32 convs)", None, True),
                     ("channels_last fp32, TF32 off", None, False)]
    if "precision" not in args.skip:
        prefix = "channels_last " if cuda else ""
        runs += [(f"{prefix}fp16 autocast", torch.float16, True), (f"{prefix}bf16 autocast", torch.bfloat16, True)]
    return runs


def print_parity(rows: dict) -> None:
    print("\n| parity / precision | case | max abs diff | mean abs diff (holes) | max abs output | "
          "8-bit hole values changed | max level diff | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for label, cases in rows.items():
        if "error" in cases:
            print(f"| {label} | all | n/a | | | | | {cases['error']} |")
            continue
        for case, r in cases.items():
            verdict = ""
            if label.endswith("fp32, TF32 off"):
                verdict = "PASS" if r["max_abs"] <= FP32_TOLERANCE else f"FAIL (> {FP32_TOLERANCE:g})"
            print(f"| {label} | {case} | {r['max_abs']:.3g} | {r['mean_abs_holes']:.3g} | {r['max_abs_ref']:.3g} | "
                  f"{r['n_level_diff']} / {r['n_hole_values']} | {r['max_level_diff']} | {verdict} |")


# ----------------------------------------------------------------------------------- speed
def clip(size: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """bmx-trees ``(n, H, W, 3) uint8`` frames and ``(n, H, W) bool`` masks (True = hole) at ``size``."""
    import cv2
    from _common import bmx_frames, loop_index

    frames, masks = bmx_frames()
    idx = loop_index(len(frames), n)
    f = np.stack([cv2.resize(frames[i], size, interpolation=cv2.INTER_CUBIC) for i in idx])
    m = np.stack([cv2.resize(masks[i].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0 for i in idx])
    return f, m


def random_full_model(tmp: Path):
    """Official-shaped (``FULL``) generator with seeded random weights, and its safetensors file."""
    import torch

    from tsam_cli.model.config import FULL
    from tsam_cli.model.generator import TSAMGenerator
    from tsam_cli.model.tsam_format import save_generator

    torch.manual_seed(0)
    model = TSAMGenerator(FULL).eval()
    return model, save_generator(model, tmp / "full_random.safetensors")


def measure(fn, device) -> tuple[float, float | None]:
    """Seconds of ``fn()`` and its peak VRAM in GiB (None on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated(device) / 2**30
    return time.perf_counter() - t0, None


def time_runner(model, device, frames, holes, length: int, stride: int, precision: str):
    """(seconds, peak VRAM GiB) of ModelRunner over ``frames``, after a one-window warm-up
    (cuDNN picks its algorithms there)."""
    from tsam_cli.core.model_fill import ModelRunner

    runner = ModelRunner(model, str(device), length, stride, precision)
    n = min(length, len(frames))
    runner(frames[:n], holes[:n], [None] * (n - 1))
    return measure(lambda: runner(frames, holes, [None] * (len(frames) - 1)), device)


def window_choices(size, device, budget_gib: float, notes: list[str]) -> list[tuple[str, int, int]]:
    """(label, length, stride): the default window (12 frames every 8), then the automatic
    window of this tree (``model_fill.fit_window``) with the device's free memory and as if only
    ``budget_gib`` were free (a smaller GPU), each only where it differs from the default. What
    the automatic choice gave is added to ``notes``; nothing when the tree has no such function."""
    from tsam_cli.core import model_fill
    from tsam_cli.errors import UsageError
    from tsam_cli.options import InpaintOptions

    d = InpaintOptions()
    # the paper-sized default; 12/8 should --model-window ever default to "automatic"
    default = (d.model_window, d.model_stride) if isinstance(d.model_window, int) else (12, 8)
    windows = [("default", *default)]
    fit, free = getattr(model_fill, "fit_window", None), getattr(model_fill, "available_memory", None)
    if fit is None or free is None:
        return windows
    avail = free(device) or int(budget_gib * 2**30)
    for label, budget in (("auto", avail), (f"auto @ {budget_gib:g} GiB free", min(avail, int(budget_gib * 2**30)))):
        try:
            length, stride = fit(*default, size[1], size[0], budget)
        except UsageError as exc:
            notes.append(f"{size[0]}x{size[1]} {label}: {exc}")
            continue
        notes.append(f"{size[0]}x{size[1]} {label}: window {length}/{stride} ({budget / 2**30:.1f} GiB free)")
        if (length, stride) not in [(n, s) for _, n, s in windows]:
            windows.append((label, length, stride))
    return windows


def estimate_gib(length: int, size) -> float | None:
    """The tree's memory model for a window (``model_fill.window_bytes``, measured on the CPU)."""
    from tsam_cli.core import model_fill

    est = getattr(model_fill, "window_bytes", None)
    return None if est is None else est(length, size[1], size[0]) / 2**30


def generator_rows(args, model, device, results: dict) -> None:
    """The generator alone (ModelRunner) at each size: fp32 and --precision auto, default and
    automatic windows. Every window has holes, so every frame goes through the network."""
    notes: list[str] = []
    for size in args.sizes:
        frames, holes = clip(size, args.frames)
        for precision in ("fp32", "auto") if device.type == "cuda" else ("fp32",):
            for label, length, stride in window_choices(size, device, args.budget_gib, notes):
                sec, vram = time_runner(model, device, frames, holes, length, stride, precision)
                results["generator"].append({"size": f"{size[0]}x{size[1]}", "precision": precision, "window": label,
                                             "length": length, "stride": stride, "frames": len(frames),
                                             "s_per_frame": sec / len(frames), "peak_vram_gib": vram,
                                             "estimate_gib": estimate_gib(length, size)})
    results["window_notes"] = sorted(set(notes))
    print("\n| generator alone (ModelRunner) | precision | window | s/frame | peak VRAM GiB | estimate GiB |")
    print("|---|---|---|---|---|---|")
    for r in results["generator"]:
        est = "" if r["estimate_gib"] is None else f"{r['estimate_gib']:.2f}"
        print(f"| {r['size']} | {r['precision']} | {r['window']} ({r['length']}/{r['stride']}) | "
              f"{r['s_per_frame']:.3f} | {_gib(r['peak_vram_gib'])} | {est} |")
    print("".join(f"\n- automatic window, {n}" for n in results["window_notes"]))


def _gib(v: float | None) -> str:
    return "n/a (CPU)" if v is None else f"{v:.2f}"


def pipeline_run(video: Path, mask: Path, out: Path, device, **opts) -> tuple[float, float | None, dict]:
    """One ``inpaint`` in this process: (seconds, peak VRAM GiB, per-stage seconds)."""
    from tsam_cli.core.pipeline import InpaintOptions, inpaint
    from tsam_cli.ui import NullReporter

    rep = NullReporter()
    o = InpaintOptions(mask=str(mask), overwrite=True, quiet=True, device=str(device), **opts)
    report = {}
    sec, vram = measure(lambda: report.update(r=inpaint(video, out, o, rep)), device)
    return sec / report["r"].n_frames, vram, dict(rep.timings)


def pipeline_rows(args, weights_file: Path, device, tmp: Path, results: dict) -> None:
    """The whole pipeline per size: classical, then --model FILE with default and auto window."""
    from _common import write_inputs

    from tsam_cli.core.pipeline import processing_size
    from tsam_cli.options import InpaintOptions

    d = InpaintOptions()
    for size in args.sizes:
        frames, masks = clip(size, args.frames)
        folder = tmp / f"{size[0]}x{size[1]}"
        folder.mkdir()
        video, mask = write_inputs(folder, frames, masks, len(frames))
        runs = [("classical", {"model": "classical"})]
        proc = processing_size(*size, d.max_size)  # the generator runs at the processing size
        for label, length, stride in window_choices(proc, device, args.budget_gib, []):
            runs.append((f"model, {label} window ({length}/{stride})",
                         {"model": str(weights_file), "model_window": length, "model_stride": stride}))
        base = None
        for label, opts in runs:
            spf, vram, stages = pipeline_run(video, mask, folder / "out.mp4", device, **opts)
            base = spf if base is None else base
            results["pipeline"].append({"size": f"{size[0]}x{size[1]}", "run": label, "s_per_frame": spf,
                                        "ratio_to_classical": spf / base, "peak_vram_gib": vram,
                                        "model_s_per_frame": stages.get("model", 0.0) / len(frames)})
    print(f"\n| pipeline ({args.frames} frames, --max-size {d.max_size}) | run | s/frame | x classical | "
          "model s/frame | peak VRAM GiB |")
    print("|---|---|---|---|---|---|")
    for r in results["pipeline"]:
        print(f"| {r['size']} | {r['run']} | {r['s_per_frame']:.3f} | {r['ratio_to_classical']:.1f} | "
              f"{r['model_s_per_frame']:.3f} | {_gib(r['peak_vram_gib'])} |")


def environment(device) -> dict:
    import platform

    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    return env


def main(argv=None) -> int:
    args = parse_args(argv)
    require_device(args.device)  # before anything heavy
    import torch

    device = torch.device(args.device)
    t0 = time.perf_counter()
    results = {"command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "env": environment(device), "parity": {}, "generator": [], "speed": [], "pipeline": []}
    print(results["command"])
    print(json.dumps(results["env"]))
    if not {"parity", "precision"} <= set(args.skip):
        parity_and_precision(args, device, results)
    with tempfile.TemporaryDirectory() as tmp:
        model, weights_file = random_full_model(Path(tmp))
        if "generator" not in args.skip:
            generator_rows(args, model, device, results)
        if "pipeline" not in args.skip:
            pipeline_rows(args, weights_file, device, Path(tmp), results)
    results["speed"] = results["generator"] + results["pipeline"]
    results["seconds"] = time.perf_counter() - t0
    print(f"\n| speed | total {results['seconds']:.0f} s |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
