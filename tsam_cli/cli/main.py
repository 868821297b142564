"""The ``tsam`` command line: a thin Typer layer over :mod:`tsam_cli.api` and :mod:`tsam_cli.batch`.

Heavy modules (torch, cv2, av) are imported inside the commands, so ``tsam --help`` and
``tsam --version`` answer instantly. Errors: every :class:`~tsam_cli.errors.TsamError` is
turned into one ``error: ...`` line and its exit code here, in :func:`main`, and nowhere
else; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import inspect
from pathlib import Path

import typer

from tsam_cli import __version__
from tsam_cli.cli.videos import run_videos, video_parameters
from tsam_cli.errors import Signalled, TsamError
from tsam_cli.options import cli_parameters, from_cli
from tsam_cli.ui import one_line

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

    opts = from_cli(values)
    run_videos(run, videos, output, mask_dir, shard, opts, opts.box is not None or opts.remove is not None)


def _inpaint_signature() -> inspect.Signature:
    """The command's parameters: inputs/output/batch options here, the rest from InpaintOptions."""
    return inspect.Signature([*video_parameters(), *cli_parameters()])


inpaint.__signature__ = _inpaint_signature()
inpaint.__annotations__ = {p.name: p.annotation for p in inpaint.__signature__.parameters.values()}
app.command("inpaint")(inpaint)


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
