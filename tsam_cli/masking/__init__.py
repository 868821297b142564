"""The mask-making stage: find what to remove in a video and write it as a mask.

* :mod:`.text`: burned-in text (subtitles, captions) with PP-OCR's DB text detector
  (``pip install -e ".[text]"``); :mod:`.boxes` holds its detector-free parts (region, box
  carrying between detections, tracks, gap bridging, padding);
* :mod:`.static`: static overlays (logos, channel bugs) from temporal statistics, no model;
* :mod:`.track`: ``tsam mask track``, one object followed from a box or mask on one frame
  (flow carry + re-fit); :mod:`.appearance` holds its learned re-fit (colour histogram + a
  small net trained on the seed frame);
* :mod:`.save`: :func:`~.save.save_masks`, masks -> lossless mask video or PNG folder that
  ``tsam inpaint --mask`` reads back exactly;
* :mod:`.remove`: the detector step of ``tsam inpaint --remove``: detect into a temporary
  mask video (:func:`~.remove.removal_mask`), which :func:`tsam_cli.api.inpaint` then inpaints with;
* :mod:`.preview`: ``tsam preview`` and ``inpaint --preview``: the mask tinted over the
  video, or input and result side by side;
* :mod:`.options`: the options of ``mask text``, ``mask static``, ``mask track`` and
  ``preview`` (standard library only: the CLI builds its commands from them at start).

This package holds :func:`make_mask` (``tsam mask text|static``: detect, then save) and
:func:`mask_frames` (the detection alone). Masks are ``(H, W) bool`` in the video's coded
orientation, True = remove, as everywhere in tsam. Only the standard library and
:mod:`tsam_cli.ui` are imported here: ``tsam --help`` loads this package.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tsam_cli.ui import plural


def mask_frames(kind: str, info, opts, reporter) -> Iterable:
    """Run the detector of ``kind`` (``"text"`` or ``"static"``) over ``info``; returns an
    iterable of ``(mask, pts)`` per frame (see :func:`~.save.save_masks`) with a ``summary``
    line. The detection is done here; iterating only draws the masks."""
    opts.validate()
    if kind == "text":
        from tsam_cli.masking.text import text_masks

        return text_masks(info, opts, reporter)
    from tsam_cli.masking.static import static_masks

    return static_masks(info, opts, reporter)


def make_mask(kind: str, video: str | os.PathLike, out: str | os.PathLike, opts, reporter=None,
              fps: float | None = None) -> str:
    """``tsam mask text|static``: detect in ``video``, write the mask to ``out``; returns a summary line.

    ``out`` is checked first (a bad ``-o`` fails at once), the detector runs before ``out`` is
    opened (a video it cannot decide on, or a missing extra, leaves ``out`` untouched), then
    the masks are streamed into the writer."""
    from tsam_cli.masking.save import save_masks
    from tsam_cli.media import probe
    from tsam_cli.media.output import check_output_path
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    opts.validate()
    info = probe(Path(video), fps=fps)
    check_output_path(Path(out), [("the input", info.path)], opts.overwrite)  # fail before the long detection
    frames = mask_frames(kind, info, opts, rep)
    n = save_masks(frames, Path(out), info, overwrite=opts.overwrite, protected=[], reporter=rep)
    return f"wrote {out}: {kind} mask, {plural(n, 'frame')} ({frames.summary})"
