"""``tsam preview``: the video with the mask overlaid, or input and result side by side / wiped.

Mounted by :func:`tsam_cli.cli.main._mount_subcommands` as ``app.command("preview")(preview_command)``.
A thin layer over :func:`tsam_cli.masking.preview.write_preview`; the options are the fields
of :class:`~tsam_cli.masking.options.PreviewOptions`. Only typer and the standard library are
imported at load time (``tsam --help`` loads this module).
"""

from __future__ import annotations

from pathlib import Path

from tsam_cli.cli.common import run_reported, video_command
from tsam_cli.masking.options import PreviewOptions
from tsam_cli.options import from_cli
from tsam_cli.ui import plural


def preview_command(video: Path, output: Path, fps: float | None, **values) -> None:
    """Check a mask (tinted overlay) or compare a --result with VIDEO (side by side or --wipe)."""
    from tsam_cli.masking.preview import write_preview

    opts = from_cli(values, PreviewOptions)
    report, rep = run_reported(lambda rep: write_preview(video, output, opts, reporter=rep, fps=fps), output, opts.quiet)
    if not opts.quiet:
        rep.info(f"wrote {report.output} ({plural(report.n_frames, 'frame')}, {report.size[0]}x{report.size[1]}, "
                 f"{report.fps:g} fps) in {report.seconds:.1f}s")
        if report.n_low:
            rep.info(f"marked {plural(report.n_low, 'frame')} of low confidence (red border)")


video_command(preview_command, PreviewOptions, "Preview video (.mp4/.mov/.mkv) or a folder for PNG frames.")
