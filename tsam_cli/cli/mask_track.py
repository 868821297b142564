"""``tsam mask track``: follow one object from a box or mask on one frame through the video.

The default mask is made for removal (recall first, :mod:`tsam_cli.masking.track` "removal
mode"); ``--tight`` gives the object's outline as before.

Registered by :mod:`tsam_cli.cli.mask` as ``mask_app.command("track")(track_command)``. A thin
layer over :func:`tsam_cli.masking.track.track_video`: the options are the fields of
:class:`~tsam_cli.masking.options.TrackOptions` (parameters generated from it); errors are
:class:`~tsam_cli.errors.TsamError` subclasses printed as one line by the main entry point.
"""

from __future__ import annotations

from pathlib import Path

from tsam_cli.cli.common import MASK_OUTPUT_HELP, run_reported, video_command
from tsam_cli.masking.options import TrackOptions
from tsam_cli.options import from_cli


def track_command(video: Path, output: Path, fps: float | None, **values) -> None:
    """Follow one object (person, car) from --box/--seed through VIDEO; write its mask for inpaint --mask
    (recall first, with a margin, for removal; --tight: the outline)."""
    from tsam_cli.masking.track import track_video

    opts = from_cli(values, TrackOptions)
    report, rep = run_reported(lambda rep: track_video(video, output, opts, reporter=rep, fps=fps), output, opts.quiet)
    if not opts.quiet:
        rep.info(report.summary())


video_command(track_command, TrackOptions, MASK_OUTPUT_HELP)
