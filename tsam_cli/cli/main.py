"""The ``tsam`` command line: a thin Typer layer over :mod:`tsam_cli.api` and :mod:`tsam_cli.batch`.

Heavy modules (torch, cv2, av) are imported inside the commands, so ``tsam --help`` and
``tsam --version`` answer instantly. Errors: every :class:`~tsam_cli.errors.TsamError` is
turned into one ``error: ...`` line and its exit code here, in :func:`main`, and nowhere
else; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import inspect
from dataclasses import asdict
from pathlib import Path

import typer

from tsam_cli import __version__
from tsam_cli.errors import STOP_SIGNALS, Interrupted, Signalled, TsamError, signal_number
from tsam_cli.options import cli_parameters, from_cli
from tsam_cli.ui import one_line, plural

app = typer.Typer(
    help="tsam - remove objects from videos (video inpainting, TSAM CVPR 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DEBUG = {"on": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tsam {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _DEBUG["on"] = debug


def inpaint(videos: list[str], output: Path, mask_dir: Path | None, shard: str | None, **values) -> None:
    """Fill the masked region of VIDEO(S) and write the result to -o."""
    from tsam_cli.api import inpaint as run
    from tsam_cli.batch import is_batch
    from tsam_cli.ui import RichReporter

    opts = from_cli(values)
    quiet, mask, box = opts.quiet, values["mask"], opts.box
    rep = RichReporter(quiet=quiet)
    if is_batch(videos, str(mask_dir) if mask_dir else None) or shard:
        _run_batch(videos, output, mask, mask_dir, shard, box is not None or opts.remove is not None, opts, rep)
        return
    report = None
    try:
        options = asdict(opts)
        report = run(Path(videos[0]), options.pop("mask"), output, reporter=rep, **options)
        if not quiet:
            _print_summary(report, rep)
    except STOP_SIGNALS as exc:  # before the output was opened, or after it was complete
        done = f"{output} is complete and kept" if report is not None else "nothing was written"
        raise Interrupted(f"interrupted: {done}", signal_number(exc)) from None


def _inpaint_signature() -> inspect.Signature:
    """The command's parameters: inputs/output/batch options here, the rest from InpaintOptions."""
    P = inspect.Parameter
    fixed = [
        P("videos", P.POSITIONAL_OR_KEYWORD, annotation=list[str], default=typer.Argument(
            ..., metavar="VIDEO", help="Input video file(s) (mp4, mov, mkv, webm, avi, ...) or folder(s) of frames; glob patterns allowed.")),
        P("output", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Option(
            ..., "-o", "--output", help="Output .mp4/.mov/.mkv, or a folder for PNG frames. With several inputs: the output folder.")),
        P("mask_dir", P.POSITIONAL_OR_KEYWORD, annotation=Path | None, default=typer.Option(
            None, "--mask-dir", help="Batch: folder with one mask per input, matched by name (<stem>/, <stem>.png, <stem>_mask.mp4 ...).")),
        P("shard", P.POSITIONAL_OR_KEYWORD, annotation=str | None, default=typer.Option(
            None, "--shard", help="Batch: process only share i of n of the inputs, as i/n (torchrun's RANK/WORLD_SIZE are used automatically).")),
    ]
    return inspect.Signature([*fixed, *cli_parameters()])


inpaint.__signature__ = _inpaint_signature()
inpaint.__annotations__ = {p.name: p.annotation for p in inpaint.__signature__.parameters.values()}
app.command("inpaint")(inpaint)


def _print_summary(report, rep) -> None:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items() if v >= 0.05)
    rep.info(
        f"wrote {report.output} ({plural(report.n_frames, 'frame')}, {report.size[0]}x{report.size[1]}, "
        f"{report.fps:g} fps) in {report.seconds:.1f}s = {report.seconds / max(report.n_frames, 1):.3f} s/frame"
        f" ({stages})"
    )


def _run_batch(videos, output, mask, mask_dir, shard, has_box, opts, rep) -> None:
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
    jobs = plan(expand_inputs(videos), output, mask, mask_dir, where, has_box=has_box)
    if not jobs:
        rep.info("nothing to do for this shard")
        return
    try:
        run_batch(jobs, opts, rep, has_box=has_box)
    except STOP_SIGNALS as exc:
        raise Interrupted("interrupted: finished outputs are kept, the current one was not written",
                          signal_number(exc)) from None
    except Interrupted as exc:
        raise Interrupted(f"{exc} (finished outputs of the batch are kept)", exc.exit_code - 128) from None
    if not opts.quiet or any(j.status == "failed" for j in jobs):
        rep.console.print(summary_table(jobs, where), soft_wrap=True)
    if any(j.status == "failed" for j in jobs):
        raise typer.Exit(EXIT_PARTIAL)


def _mount_subcommands() -> None:
    """Mount the other command groups (their modules import no torch, cv2 or av at load time)."""
    from tsam_cli.cli.eval import eval_command, masks_app
    from tsam_cli.cli.mask import mask_app
    from tsam_cli.cli.outpaint import outpaint_command
    from tsam_cli.cli.preview import preview_command
    from tsam_cli.cli.train import train_command
    from tsam_cli.cli.weights import app as weights_app

    app.add_typer(weights_app, name="weights", help="List and download model weights.")
    app.command("train", help="Train a TSAM generator (datasets, losses, two-stage schedule, torchrun DDP).")(train_command)
    app.command("eval", help="Score inpainting results (PSNR, SSIM, VFID, E_warp, LPIPS).")(eval_command)
    app.add_typer(masks_app, name="masks", help="Generate the paper's training/evaluation masks.", hidden=True)
    app.add_typer(mask_app, name="mask", help="Make masks to remove: burned-in text, static logos, an object followed from one frame (for inpaint --mask).")
    app.command("outpaint")(outpaint_command)
    app.command("preview")(preview_command)


_mount_subcommands()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map errors to one line + exit code (returned).

    Typer/click handle usage errors themselves (message + exit code 2).
    """
    from tsam_cli.stdio import flush_stdout

    try:
        try:
            app(args=argv, prog_name="tsam")  # standalone mode: always ends in SystemExit
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        flush_stdout()  # a full disk under `> file` is reported here, not lost at exit
        return code
    except TsamError as exc:
        if _DEBUG["on"]:
            raise
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        return exc.exit_code
    except Signalled as exc:  # a command without its own clean-up (nothing half-written to remove)
        typer.echo("error: interrupted", err=True)
        return 128 + exc.signum
    except OSError as exc:
        message = _storage_error(exc)
        if _DEBUG["on"] or message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        return 5


#: OSErrors that are the machine's state, not a bug: mapped to one line and exit 5 in :func:`main`
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _storage_error(exc: OSError) -> str | None:
    """The one line for a full or read-only disk met where no output layer guards the write
    (the last line of defence), or None for any other OSError (a bug: traceback)."""
    from tsam_cli.media.output import describe_os_error

    if "No usable temporary directory" in str(exc):
        return "no usable temporary folder (full or read-only?): free some space or set TMPDIR to another folder"
    if exc.errno not in _STORAGE_ERRNOS:
        return None
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot write{where}: {describe_os_error(exc, 'output')} (--debug shows where)"
