"""``tsam outpaint``: widen the frame (new aspect, size or borders) and fill the new area.

Mounted by :func:`tsam_cli.cli.main._mount_subcommands`. A thin layer over
:func:`tsam_cli.api.outpaint`; the options are the fields of
:class:`~tsam_cli.options.OutpaintOptions` (every ``tsam inpaint`` option plus the canvas), and
inputs, -o and the batch options are those of ``inpaint`` (:mod:`tsam_cli.cli.videos`).
Only typer and the standard library are imported at load time (``tsam --help`` loads this).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from tsam_cli.cli.videos import run_videos, video_parameters
from tsam_cli.options import OutpaintOptions, cli_parameters, from_cli


def outpaint_command(videos: list[str], output: Path, mask_dir: Path | None, shard: str | None, **values) -> None:
    """Widen VIDEO(S) (--aspect, --size or --pad; --fill-borders for black borders) and fill the new
    area from what the other frames show. The original pixels are kept where they are placed."""
    from tsam_cli.api import outpaint as run

    opts = from_cli(values, OutpaintOptions)
    run_videos(run, videos, output, mask_dir, shard, opts, masks_elsewhere=True)  # the new area is the hole


def _signature() -> inspect.Signature:
    """Inputs, -o and the batch options, then OutpaintOptions' fields (the canvas ones first in --help)."""
    canvas = ("aspect", "size", "pad", "anchor", "fill_borders")
    rest = cli_parameters(OutpaintOptions)
    return inspect.Signature([*video_parameters(), *(p for p in rest if p.name in canvas),
                              *(p for p in rest if p.name not in canvas)])


outpaint_command.__signature__ = _signature()
outpaint_command.__annotations__ = {p.name: p.annotation for p in outpaint_command.__signature__.parameters.values()}
