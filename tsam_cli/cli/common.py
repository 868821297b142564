"""Pieces shared by the commands that read one VIDEO and write one -o (mask makers, preview).

Standard library and typer only (``tsam --help`` imports this).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import typer

from tsam_cli.errors import STOP_SIGNALS, Interrupted, signal_number
from tsam_cli.options import cli_parameters

#: -o help of every mask maker
MASK_OUTPUT_HELP = "Mask video (.mp4/.mov/.mkv, lossless) or a folder for PNG masks."

def video_command(fn: Callable, options_cls, output_help: str) -> Callable:
    """Give ``fn(video, output, fps, **values)`` the Typer parameters VIDEO, -o, --fps and
    then the fields of the options dataclass ``options_cls``; returns ``fn``."""
    P = inspect.Parameter
    fixed = [
        P("video", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Argument(
            ..., metavar="VIDEO", help="Input video file or folder of frames.")),
        P("output", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Option(
            ..., "-o", "--output", help=output_help)),
        P("fps", P.POSITIONAL_OR_KEYWORD, annotation=float | None, default=typer.Option(
            None, "--fps", help="Frame rate of a folder of frames (default 25).")),
    ]
    fn.__signature__ = inspect.Signature([*fixed, *cli_parameters(options_cls)])
    fn.__annotations__ = {p.name: p.annotation for p in fn.__signature__.parameters.values()}
    return fn


def run_reported(work: Callable, output: Path, quiet: bool):
    """``work(reporter)`` with a terminal reporter; a signal before -o was opened becomes one
    ``interrupted: ... was not written`` line (OutputTarget reports its own once writing)."""
    from tsam_cli.ui import RichReporter

    rep = RichReporter(quiet=quiet)
    try:
        return work(rep), rep
    except STOP_SIGNALS as exc:
        raise Interrupted(f"interrupted: {output} was not written", signal_number(exc)) from None
    finally:
        rep.stop()
