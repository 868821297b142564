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

from tsam_cli.data.mask_gen import KINDS
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
) -> None:
    """Score video inpainting against ground truth: PSNR, SSIM, VFID (TSAM paper, Table 1), E_warp, LPIPS."""
    from tsam_cli.eval.evaluate import evaluate

    metric_names = _metric_names(metrics, more_metrics)
    spec = _mask_spec(masks, mask_kind, area, seed)
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {max_frames}")
    report = evaluate(
        dataset.value, root, results=results, metrics=metric_names, size=parse_size(size), masks=spec,
        i3d=i3d, lpips_alex=lpips_alex, lpips_lin=lpips_lin, max_videos=max_videos, max_frames=max_frames,
        device=device, keep_results=keep_results, command=_command_line(), progress=_progress_printer(quiet),
    )
    written = _write_reports(report, json_out, csv_out)
    _print_report(report)
    if not quiet:
        _print_to_stderr(*(f"wrote {path}" for path in written))


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


def _write_reports(report: dict, json_out: Path | None, csv_out: Path | None) -> list[Path]:
    """Write the ``--json`` / ``--csv`` files asked for; returns their paths."""
    from tsam_cli.eval.evaluate import write_csv, write_json

    written = []
    for path, write in ((json_out, write_json), (csv_out, write_csv)):
        if path is not None:
            write(report, path)
            written.append(path)
    return written


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
        table.add_row(v["name"], str(v["frames"]), f"{v['hole_ratio']:.1%}", *[_fmt(c, v.get(c)) for c in cols])
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
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace PNGs already in the folder."),
) -> None:
    """Write one seeded mask video as a folder of PNGs (white = region to fill)."""
    from tsam_cli.data.mask_gen import generate_masks, hole_ratio
    from tsam_cli.errors import OutputError
    from tsam_cli.eval.evaluate import write_frames

    if frames < 1:
        raise UsageError(f"--frames must be >= 1, got {frames}")
    w, h = parse_size(size)
    a = parse_area(area)
    if a == "mixed":
        raise UsageError("--area mixed applies to tsam eval only: give a bucket such as 30-40 or 'any'")
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output} exists and is not a folder: choose another -o")
    if output.is_dir() and any(output.glob("*.png")) and not overwrite:
        raise OutputError(f"{output} already holds PNG files: use --overwrite or another -o")
    m = generate_masks(kind.value, frames, h, w, seed=seed, area=a, moving=moving)
    write_frames(output, m)
    typer.echo(f"wrote {frames} masks {w}x{h} ({kind.value}, hole {hole_ratio(m):.1%}) to {output}")
