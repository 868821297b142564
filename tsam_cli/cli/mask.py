"""``tsam mask ...``: make masks for ``tsam inpaint --mask`` (burned-in text, static overlays, ...).

Mounted by the main app as ``app.add_typer(mask_app, name="mask")``. Each command is a thin
layer over :mod:`tsam_cli.masking`: its options are a dataclass of
:mod:`tsam_cli.masking.options` (the Typer parameters are generated from it), errors are
:class:`~tsam_cli.errors.TsamError` subclasses that the main entry point prints as one line.
Nothing heavy is imported at module level (``tsam --help`` stays instant).
"""

from __future__ import annotations

from pathlib import Path

import typer

from tsam_cli.cli.common import MASK_OUTPUT_HELP, run_reported, video_command
from tsam_cli.masking.options import StaticMaskOptions, TextMaskOptions
from tsam_cli.options import from_cli

mask_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Make a mask video (white = remove) for tsam inpaint --mask: burned-in text, static logos, a tracked object.",
)


def _command(name: str, cls, doc: str):
    """A Typer command named ``name`` whose options are the fields of ``cls``: probe, detect,
    write; a summary line unless ``--quiet``."""

    def command(video: Path, output: Path, fps: float | None, **values) -> None:
        from tsam_cli.masking import make_mask

        opts = from_cli(values, cls)
        summary, rep = run_reported(lambda rep: make_mask(name, video, output, opts, reporter=rep, fps=fps),
                                    output, opts.quiet)
        if not opts.quiet:
            rep.info(summary)

    command.__doc__ = doc
    command.__name__ = f"mask_{name}"
    return video_command(command, cls, MASK_OUTPUT_HELP)


mask_app.command("text")(_command("text", TextMaskOptions, (
    "Mask burned-in text (subtitles, captions, text watermarks) with PP-OCR's text detector.\n\n"
    "Needs the 'text' extra: pip install -e \".\\[text]\" in the clone (the model ships in the rapidocr wheel; works offline).")))
mask_app.command("static")(_command("static", StaticMaskOptions, (
    "Mask static overlays (logos, channel bugs, timestamps) found from the video itself: what stays put "
    "while the picture changes. Needs camera motion or a changing scene.")))

# -- more mask makers register here, one line each (their modules import only typer at load time):
from tsam_cli.cli.mask_track import track_command

mask_app.command("track")(track_command)
