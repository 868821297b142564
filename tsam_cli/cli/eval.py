"""``tsam eval`` and ``tsam masks generate``.

Mounted by the main app as ``app.command("eval")(eval_command)`` and
``app.add_typer(masks_app, name="masks")``.  Nothing heavy (torch, cv2, av) is imported at
module level, so ``tsam --help`` stays instant.  Errors are raised as
``tsam_cli.errors.TsamError`` subclasses; the main entry point turns them into one line and
an exit code.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from tsam_cli.data.mask_kinds import KINDS
from tsam_cli.errors import UsageError
from tsam_cli.options import parse_size


class Dataset(str, Enum):
    davis = "davis"
    youtube_vos = "youtube-vos"
    folder = "folder"


#: the paper's mask kinds, as ``tsam_cli.data.mask_gen.KINDS`` names them
MaskKind = Enum("MaskKind", {k: k for k in KINDS}, type=str)


def parse_area(text: str | None):
    """``"mixed"`` / ``"any"`` / ``"30-40"`` (percent) / ``"0.3-0.4"`` (fraction)."""
    if text is None or text == "mixed":
        return "mixed" if text else None
    if text in ("any", "none"):
        return None
    try:
        lo, hi = (float(v) for v in text.replace("%", "").split("-"))
    except ValueError:
        raise UsageError(f"area must be 'mixed', 'any' or LO-HI such as 30-40 (percent), got {text!r}") from None
    if hi > 1.0:
        lo, hi = lo / 100, hi / 100
    if not 0 <= lo < hi <= 1:
        raise UsageError(f"area {text!r}: need 0 <= LO < HI <= 100 (percent)")
    return lo, hi


# ------------------------------------------------------------------ tsam eval
# Its options: each is the default of the eval_command parameter of the same name.
_ROOT = typer.Option(..., "--root", help="Dataset folder (see --dataset for the layout).")
_DATASET = typer.Option(
    Dataset.davis, "--dataset",
    help="davis: ROOT/JPEGImages/480p/<seq>/*.jpg; youtube-vos: ROOT/train/JPEGImages/<id>/ or "
    "ROOT/JPEGImages/<id>/; folder: videos and/or frame folders directly in ROOT.",
)
_RESULTS = typer.Option(
    None, "--results",
    help="Score another method's output: a folder with <clip>/ frame folders or <clip>.mp4 videos. "
    "Without it, tsam itself inpaints every clip first.",
)
_METRICS = typer.Option(
    ["psnr", "ssim", "vfid"], "--metrics", "-m",
    help="Metrics: psnr (also hole PSNR), ssim, vfid, ewarp, lpips: --metrics psnr ssim vfid, "
    "or repeat the option, or separate with commas.",
)
_MORE_METRICS = typer.Argument(
    None, metavar="[METRIC]...", help="More metric names following --metrics (as in --metrics psnr ssim vfid).",
    show_default=False,
)
_SIZE = typer.Option("432x240", "--size", help="Evaluation size WIDTHxHEIGHT (the papers use 432x240).")
_MASKS = typer.Option(
    "generate", "--masks",
    help="'generate' (seeded per clip) or a folder with <clip>/*.png masks (non-zero = hole).",
)
_MASK_KIND = typer.Option(MaskKind.object, "--mask-kind", help="Kind of generated masks.")
_AREA = typer.Option(
    "mixed", "--area",
    help="Hole area of generated masks: 'mixed' (one 10% bucket from 0-10..60-70 per clip), "
    "'any', or a bucket in percent such as 30-40.",
)
_SEED = typer.Option(0, "--seed", help="Base seed of the generated masks (per clip: from the clip name).")
_JSON_OUT = typer.Option(None, "--json", help="Write the full report (per video, means, versions) as JSON.")
_CSV_OUT = typer.Option(None, "--csv", help="Write per-video values and the means as CSV.")
_I3D = typer.Option(None, "--i3d", help="i3d_rgb_imagenet.pt for VFID (default: tsam's weight cache).")
_LPIPS_ALEX = typer.Option(
    None, "--lpips-alex", help="torchvision alexnet-owt-7be5be79.pth for LPIPS (default: tsam's weight cache)."
)
_LPIPS_LIN = typer.Option(
    None, "--lpips-lin", help="LPIPS v0.1 linear layers, the lpips package's weights/v0.1/alex.pth "
    "(default: tsam's weight cache).",
)
_MAX_VIDEOS = typer.Option(None, "--max-videos", help="Evaluate only the first N clips.")
_MAX_FRAMES = typer.Option(None, "--max-frames", help="Use only the first N frames of every clip.")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda (I3D, LPIPS and tsam's pipeline).")
_KEEP_RESULTS = typer.Option(
    None, "--keep-results", help="When tsam inpaints (no --results): keep its outputs in this folder."
)
_QUIET = typer.Option(False, "--quiet", "-q", help="Print only the final table.")
_OVERWRITE = typer.Option(
    False, "--overwrite", help="Replace existing --json/--csv files and --keep-results/<clip> folders tsam wrote.")
_ALLOW_PARTIAL = typer.Option(
    False, "--allow-partial", help="Score results with fewer frames than the ground truth on the frames they have "
    "(the table shows scored/total) instead of stopping.")
#: the largest evaluation side: every clip is held in memory at this size (4096x4096: ~50 MB a frame)
MAX_EVAL_SIDE = 4096


def eval_command(
    root: Path = _ROOT,
    dataset: Dataset = _DATASET,
    results: Path | None = _RESULTS,
    metrics: list[str] = _METRICS,
    more_metrics: list[str] | None = _MORE_METRICS,
    size: str = _SIZE,
    masks: str = _MASKS,
    mask_kind: MaskKind = _MASK_KIND,
    area: str = _AREA,
    seed: int = _SEED,
    json_out: Path | None = _JSON_OUT,
    csv_out: Path | None = _CSV_OUT,
    i3d: Path | None = _I3D,
    lpips_alex: Path | None = _LPIPS_ALEX,
    lpips_lin: Path | None = _LPIPS_LIN,
    max_videos: int | None = _MAX_VIDEOS,
    max_frames: int | None = _MAX_FRAMES,
    device: str = _DEVICE,
    keep_results: Path | None = _KEEP_RESULTS,
    quiet: bool = _QUIET,
    overwrite: bool = _OVERWRITE,
    allow_partial: bool = _ALLOW_PARTIAL,
) -> None:
    """Score video inpainting against ground truth: PSNR, SSIM, VFID (TSAM paper, Table 1), E_warp, LPIPS."""
    from contextlib import ExitStack

    from tsam_cli.eval.evaluate import evaluate, input_folders

    metric_names = _metric_names(metrics, more_metrics)
    spec = _mask_spec(masks, mask_kind, area, seed)
    _check_counts(max_videos, max_frames, device)
    eval_size = parse_size(size, maximum=MAX_EVAL_SIDE)
    inputs = input_folders(root, spec, results)

    def run() -> tuple[dict, list[Path]]:
        with ExitStack() as stack:  # report files: checked and locked now, before the scoring work
            targets = _report_targets(stack, json_out, csv_out, inputs, overwrite)
            report = evaluate(
                dataset.value, root, results=results, metrics=metric_names, size=eval_size, masks=spec,
                i3d=i3d, lpips_alex=lpips_alex, lpips_lin=lpips_lin, max_videos=max_videos, max_frames=max_frames,
                device=device, keep_results=keep_results, command=_command_line(),
                progress=_progress_printer(quiet), overwrite=overwrite, allow_partial=allow_partial)
            return report, _write_reports(report, targets)

    report, written = _interrupt_reported(run, keep_results)
    _print_report(report)
    if not quiet:
        _print_to_stderr(*(f"wrote {path}" for path in written))


def _check_counts(max_videos: int | None, max_frames: int | None, device: str) -> None:
    """The counts and the device name, before anything is read."""
    import re

    for flag, value in (("--max-videos", max_videos), ("--max-frames", max_frames)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise UsageError(f"--device {device!r} is not known: use auto, cpu, cuda or cuda:N")


def _report_targets(stack, json_out: Path | None, csv_out: Path | None, inputs: list, overwrite: bool) -> dict:
    """``--json``/``--csv`` as entered :class:`~tsam_cli.media.output.OutputTarget` s (checked,
    locked, temporaries made), never inside the dataset, masks or results read."""
    from tsam_cli.media.output import OutputTarget, refuse_inside

    wanted = {flag: path for flag, path in (("--json", json_out), ("--csv", csv_out)) if path is not None}
    if len(wanted) == 2 and Path(json_out).resolve() == Path(csv_out).resolve():
        raise UsageError(f"--json and --csv both name {json_out}: give two different files")
    targets = {}
    for flag, path in wanted.items():
        refuse_inside(path, inputs, flag)
        suffix = "." + flag.lstrip("-")
        targets[flag] = stack.enter_context(
            OutputTarget(path, inputs, overwrite, suffixes={suffix}, folders=False, flag=flag))
    return targets


def _interrupt_reported(work, keep_results: Path | None):
    """``work()``; a signal becomes one line that says what is on disk (no internal paths)."""
    from tsam_cli.errors import STOP_SIGNALS, Interrupted, signal_number

    kept = f"; finished clips are kept in {keep_results}" if keep_results is not None else ""
    try:
        return work()
    except Interrupted as exc:
        raise Interrupted(f"interrupted: no report was written{kept}", exc.exit_code - 128) from None
    except STOP_SIGNALS as exc:
        raise Interrupted(f"interrupted: no report was written{kept}", signal_number(exc)) from None


def _metric_names(metrics: list[str], more_metrics: list[str] | None) -> list[str]:
    """``--metrics`` values plus the metric names given as arguments after it."""
    if not more_metrics:
        return metrics
    from tsam_cli.eval.evaluate import ALL_METRICS

    unknown = [m for m in more_metrics if m.lower() not in ALL_METRICS]
    if unknown:
        raise UsageError(f"unexpected argument {unknown[0]!r}: metrics are {', '.join(ALL_METRICS)}")
    return list(metrics) + list(more_metrics)


def _mask_spec(masks: str, kind: MaskKind, area: str, seed: int):
    """``--masks``/``--mask-kind``/``--area``/``--seed`` as a :class:`tsam_cli.eval.evaluate.EvalMasks`."""
    from tsam_cli.eval.evaluate import EvalMasks

    source = "generate" if masks == "generate" else str(Path(masks).expanduser())
    return EvalMasks(source=source, kind=kind.value, area=parse_area(area), seed=seed)


def _command_line() -> str:
    """The command line as typed, for the report."""
    import shlex
    import sys

    return " ".join(shlex.quote(a) for a in ["tsam"] + sys.argv[1:])


def _print_to_stderr(*lines: str) -> None:
    from rich.console import Console

    err = Console(stderr=True)
    for line in lines:
        err.print(line, highlight=False)


def _progress_printer(quiet: bool):
    """Per-clip progress callback for :func:`tsam_cli.eval.evaluate.evaluate` (None when quiet)."""
    return None if quiet else _print_to_stderr


def _write_reports(report: dict, targets: dict) -> list[Path]:
    """Write the ``--json`` / ``--csv`` files into their targets and swap them in; returns their paths."""
    from tsam_cli.eval.evaluate import write_csv, write_json

    writers = {"--json": write_json, "--csv": write_csv}
    for flag, target in targets.items():
        target.write_with(lambda tmp, write=writers[flag]: write(report, tmp))
    return [target.path for target in targets.values()]


def _results_table(report: dict):
    """The per-video table with the mean row, as a rich ``Table``."""
    from rich.table import Table

    cols = [c for c in ("psnr", "psnr_hole", "ssim", "ewarp") if c in report["mean"]]
    if "lpips" in report["mean"] and "lpips" not in report["unavailable"]:
        cols.append("lpips")
    table = Table(title=f"tsam eval: {report['dataset']} ({len(report['videos'])} videos, "
                  f"{report['size'][0]}x{report['size'][1]})" if report["size"] else "tsam eval")
    table.add_column("video")
    table.add_column("frames", justify="right")
    table.add_column("hole", justify="right")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for v in report["videos"]:
        frames = f"{v['scored']}/{v['frames']}" if "scored" in v else str(v["frames"])
        table.add_row(v["name"], frames, f"{v['hole_ratio']:.1%}", *[_fmt(c, v.get(c)) for c in cols])
    mean = report["mean"]
    table.add_section()
    table.add_row("[bold]mean[/bold]", str(sum(v["frames"] for v in report["videos"])), "",
                  *[_fmt(c, mean.get(c)) for c in cols])
    return table


def _print_report(report: dict) -> None:
    """Print the table, then the VFID value and what was unavailable, to stdout."""
    from rich.console import Console

    console = Console()
    console.print(_results_table(report))
    unavailable = report["unavailable"]
    if "vfid" in report["metrics"]:
        if report["mean"].get("vfid") is not None:
            console.print(f"VFID: {report['mean']['vfid']:.4f}")
        else:
            console.print(f"VFID: unavailable ({unavailable.get('vfid', 'no value')})", highlight=False)
    if "lpips" in unavailable:
        console.print(f"LPIPS: unavailable ({unavailable['lpips']})", highlight=False)


def _fmt(col: str, v) -> str:
    if v is None:
        return "-"
    if col.startswith("psnr"):
        return f"{v:.2f}"
    if col in ("ssim", "lpips"):
        return f"{v:.4f}"
    return f"{v:.5f}"


masks_app = typer.Typer(no_args_is_help=True, help="Generate the paper's object / curve / stationary masks.")


@masks_app.command("generate")
def masks_generate(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write 00000.png, 00001.png, ... (255 = hole)."),
    kind: MaskKind = typer.Option(MaskKind.object, "--kind", help="object, curve or stationary."),
    frames: int = typer.Option(50, "--frames", "-T", help="Number of frames."),
    size: str = typer.Option("432x240", "--size", help="Mask size WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same masks)."),
    area: str = typer.Option("any", "--area", help="Hole area bucket in percent, e.g. 30-40, or 'any'."),
    moving: bool | None = typer.Option(
        None, "--moving/--static",
        help="Force motion on/off (default: object and curve move, stationary does not).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a mask folder tsam wrote before (swapped in whole, once complete)."),
) -> None:
    """Write one seeded mask video as a folder of PNGs (white = region to fill)."""
    from tsam_cli.data.mask_gen import generate_masks, hole_ratio
    from tsam_cli.media.images import write_png_frames
    from tsam_cli.media.output import OutputTarget
    from tsam_cli.ui import plural

    w, h = _check_mask_request(frames, size, seed)
    a = parse_area(area)
    if a == "mixed":
        raise UsageError("--area mixed applies to tsam eval only: give a bucket such as 30-40 or 'any'")
    with OutputTarget(output, [], overwrite, suffixes=(), flag="-o") as target:  # checked before the work
        m = generate_masks(kind.value, frames, h, w, seed=seed, area=a, moving=moving)
        target.write_with(lambda tmp: write_png_frames(tmp, m))
    typer.echo(f"wrote {plural(frames, 'mask')} {w}x{h} ({kind.value}, hole {hole_ratio(m):.1%}) to {output}")


#: at most this many bytes of masks are generated at once (T x H x W, one byte a pixel)
MASKS_MEMORY = 2 * 1024**3


def _check_mask_request(frames: int, size: str, seed: int) -> tuple[int, int]:
    """``--frames``, ``--size`` and ``--seed`` of ``masks generate``; returns (W, H)."""
    if frames < 1:
        raise UsageError(f"--frames must be >= 1, got {frames}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    w, h = parse_size(size, maximum=MAX_EVAL_SIDE)
    if frames * w * h > MASKS_MEMORY:
        raise UsageError(f"--frames {frames} at {w}x{h} needs {frames * w * h / 1024**3:.1f} GiB of memory "
                         f"(at most {MASKS_MEMORY / 1024**3:.0f}): give fewer --frames or a smaller --size")
    return w, h
