"""``tsam outpaint``: widen the frame (new aspect, size or borders) and fill the new area.

Mounted by :func:`tsam_cli.cli.main._mount_subcommands`. A thin layer over
:func:`tsam_cli.api.outpaint`; the options are the fields of
:class:`~tsam_cli.options.OutpaintOptions` (every ``tsam inpaint`` option plus the canvas).
Only typer and the standard library are imported at load time (``tsam --help`` loads this).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from pathlib import Path

import typer

from tsam_cli.errors import STOP_SIGNALS, Interrupted, signal_number
from tsam_cli.options import OutpaintOptions, cli_parameters, from_cli
from tsam_cli.ui import plural


def outpaint_command(video: Path, output: Path, **values) -> None:
    """Widen VIDEO (--aspect, --size or --pad; --fill-borders for black borders) and fill the new
    area from what the other frames show. The original pixels are kept where they are placed."""
    from tsam_cli.api import outpaint as run
    from tsam_cli.ui import RichReporter

    opts = from_cli(values, OutpaintOptions)
    rep = RichReporter(quiet=opts.quiet)
    report = None
    try:
        options = asdict(opts)
        report = run(video, output, mask=options.pop("mask"), reporter=rep, **options)
        if not opts.quiet:
            stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items() if v >= 0.05)
            rep.info(f"wrote {report.output} ({plural(report.n_frames, 'frame')}, {report.size[0]}x{report.size[1]}, "
                     f"{report.fps:g} fps) in {report.seconds:.1f}s = "
                     f"{report.seconds / max(report.n_frames, 1):.3f} s/frame ({stages})")
    except STOP_SIGNALS as exc:  # before the output was opened, or after it was complete
        done = f"{output} is complete and kept" if report is not None else "nothing was written"
        raise Interrupted(f"interrupted: {done}", signal_number(exc)) from None
    finally:
        rep.stop()


def _signature() -> inspect.Signature:
    """VIDEO and -o here, every other parameter from OutpaintOptions (``--fps`` among them)."""
    P = inspect.Parameter
    fixed = [
        P("video", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Argument(
            ..., metavar="VIDEO", help="Input video file (mp4, mov, mkv, webm, avi, ...) or folder of frames.")),
        P("output", P.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Option(
            ..., "-o", "--output", help="Output .mp4/.mov/.mkv, or a folder for PNG frames.")),
    ]
    canvas = ("aspect", "size", "pad", "anchor", "fill_borders")
    rest = cli_parameters(OutpaintOptions)  # the canvas options first in --help
    return inspect.Signature([*fixed, *(p for p in rest if p.name in canvas), *(p for p in rest if p.name not in canvas)])


outpaint_command.__signature__ = _signature()
outpaint_command.__annotations__ = {p.name: p.annotation for p in outpaint_command.__signature__.parameters.values()}
