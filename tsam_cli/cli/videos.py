"""What ``tsam inpaint`` and ``tsam outpaint`` share: VIDEO(S), -o, --mask-dir and --shard, one
run or a batch (:mod:`tsam_cli.batch`), and the summary line.

Standard library and typer only at load time (``tsam --help`` imports this).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import typer

from tsam_cli.errors import STOP_SIGNALS, Interrupted, signal_number
from tsam_cli.ui import plural


def video_parameters() -> list[inspect.Parameter]:
    """The parameters before the options: inputs, output and the batch options."""
    P = inspect.Parameter
    return [
        P("videos", P.POSITIONAL_OR_KEYWORD, annotation=list[str], default=typer.Argument(
            ..., metavar="VIDEO", help="Input video file(s) (mp4, mov, mkv, webm, avi, ...) or folder(s) of frames; glob patterns allowed.")),
        P("output", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Option(
            ..., "-o", "--output", help="Output .mp4/.mov/.mkv, or a folder for PNG frames. With several inputs: the output folder.")),
        P("mask_dir", P.POSITIONAL_OR_KEYWORD, annotation=Path | None, default=typer.Option(
            None, "--mask-dir", help="Batch: folder with one mask per input, matched by name (<stem>/, <stem>.png, <stem>_mask.mp4 ...).")),
        P("shard", P.POSITIONAL_OR_KEYWORD, annotation=str | None, default=typer.Option(
            None, "--shard", help="Batch: process only share i of n of the inputs, as i/n (torchrun's RANK/WORLD_SIZE are used automatically).")),
    ]


def run_videos(run: Callable, videos: list[str], output: Path, mask_dir: Path | None, shard: str | None, opts,
               masks_elsewhere: bool) -> None:
    """One input: ``run(video, mask=..., output=..., reporter=..., **options)`` (an api function)
    and its summary; several (or ``--mask-dir``/``--shard``): a batch. ``masks_elsewhere``: an
    input needs no mask file (``--box``, ``--remove``, or outpainting, whose new area is the hole)."""
    from tsam_cli.batch import is_batch
    from tsam_cli.ui import RichReporter

    rep = RichReporter(quiet=opts.quiet)
    if is_batch(videos, str(mask_dir) if mask_dir else None) or shard:
        _run_batch(videos, output, mask_dir, shard, masks_elsewhere, opts, rep)
        return
    report = None
    try:
        options = asdict(opts)
        report = run(Path(videos[0]), mask=options.pop("mask"), output=output, reporter=rep, **options)
        if not opts.quiet:
            print_summary(report, rep)
    except STOP_SIGNALS as exc:  # before the output was opened, or after it was complete
        done = f"{output} is complete and kept" if report is not None else "nothing was written"
        raise Interrupted(f"interrupted: {done}", signal_number(exc)) from None
    finally:
        rep.stop()


def print_summary(report, rep) -> None:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items() if v >= 0.05)
    rep.info(
        f"wrote {report.output} ({plural(report.n_frames, 'frame')}, {report.size[0]}x{report.size[1]}, "
        f"{report.fps:g} fps) in {report.seconds:.1f}s = {report.seconds / max(report.n_frames, 1):.3f} s/frame"
        f" ({stages})"
    )


def _run_batch(videos, output, mask_dir, shard, masks_elsewhere, opts, rep) -> None:
    import os

    from tsam_cli.batch import expand_inputs, plan, run_batch, shard_from_env, summary_table
    from tsam_cli.errors import EXIT_PARTIAL

    where = shard_from_env(shard)
    if where[1] > 1 and "LOCAL_RANK" in os.environ and opts.device in ("auto", "cuda"):
        from tsam_cli.device import cuda_available

        if cuda_available():
            opts.device = f"cuda:{os.environ['LOCAL_RANK']}"
    if mask_dir is not None:
        opts.protected = (*opts.protected, ("the mask folder", mask_dir))
    jobs = plan(expand_inputs(videos), output, Path(opts.mask) if opts.mask else None, mask_dir, where, has_box=masks_elsewhere)
    if not jobs:
        rep.info("nothing to do for this shard")
        return
    try:
        run_batch(jobs, opts, rep, has_box=masks_elsewhere)
    except STOP_SIGNALS as exc:
        raise Interrupted("interrupted: finished outputs are kept, the current one was not written",
                          signal_number(exc)) from None
    except Interrupted as exc:
        raise Interrupted(f"{exc} (finished outputs of the batch are kept)", exc.exit_code - 128) from None
    if not opts.quiet or any(j.status == "failed" for j in jobs):
        rep.console.print(summary_table(jobs, where), soft_wrap=True)
    if any(j.status == "failed" for j in jobs):
        raise typer.Exit(EXIT_PARTIAL)
