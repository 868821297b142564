"""``tsam inpaint --remove text|static``: run a detector first, then inpaint with its mask.

:func:`removal_mask` writes the detected masks (united with ``--mask`` when given; ``--box``
is united later by the pipeline itself) as a lossless mask video into a private temporary
folder, yields the inpaint options that point ``--mask`` at it, and deletes the folder on
leaving, whatever happens (errors, Ctrl-C, SIGTERM/SIGHUP through tsam's handlers). Masks
are streamed frame by frame to that file, so memory does not grow with the video's length.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tsam_cli.errors import MaskError
from tsam_cli.masking.options import StaticMaskOptions, TextMaskOptions, check_remove

#: the detector options ``--remove`` uses: each command's defaults (tune with ``tsam mask ...``)
DETECTOR_OPTIONS = {"text": TextMaskOptions, "static": StaticMaskOptions}


def _user_masks(info, opts, rep) -> Iterator[np.ndarray] | None:
    """The user's ``--mask`` as raw ``(H, W) bool`` coded masks (no dilation: the pipeline
    dilates the union), or None without ``--mask``."""
    if not opts.mask:
        return None
    from tsam_cli.media.masks import MaskSpec, MaskStream

    spec = MaskSpec(Path(opts.mask), None, opts.invert_mask, 0, opts.mask_threshold)
    return iter(MaskStream(spec, info.width, info.height, info.n_frames, rep, rotation=info.rotation,
                                fps=float(info.fps)))


def _united(detected, user: Iterator[np.ndarray] | None, found: list) -> Iterator:
    """``(mask, pts)`` of the detector, or'ed with the user's mask; ``found[0]`` becomes True
    once the detector marked a pixel."""
    for mask, pts in detected:
        if not found[0] and mask.any():
            found[0] = True
        extra = next(user, None) if user is not None else None
        yield (mask | extra if extra is not None else mask), pts


@contextmanager
def removal_mask(inp: Path, out: Path, opts, rep) -> Iterator:
    """Detect ``opts.remove`` in ``inp``; yield ``opts`` with ``mask`` set to the temporary
    mask video (``invert_mask``/``mask_threshold`` reset: they applied to the user's mask,
    which is already in it). Raises :class:`MaskError` when nothing was found and nothing
    else (``--mask``/``--box``) is to be removed."""
    from tsam_cli.masking import mask_frames
    from tsam_cli.masking.save import save_masks
    from tsam_cli.media import probe
    from tsam_cli.media.output import check_output_path

    opts.validate()
    check_remove(opts.remove)
    info = probe(inp, fps=opts.fps)
    guarded = [("the input", inp), *opts.protected] + ([("the mask", Path(opts.mask))] if opts.mask else [])
    check_output_path(out, guarded, opts.overwrite)  # a bad -o fails before the detection, not after it
    found = [False]
    folder = Path(tempfile.mkdtemp(prefix="tsam-remove-"))
    try:
        path = folder / f"{opts.remove}-mask.mkv"
        with rep.timed(f"find {opts.remove}"):
            detected = mask_frames(opts.remove, info, DETECTOR_OPTIONS[opts.remove](), rep)
            save_masks(_united(detected, _user_masks(info, opts, rep), found), path, info, overwrite=False,
                       protected=[], reporter=rep)
        if not found[0] and not opts.mask and opts.box is None:
            raise MaskError(f"--remove {opts.remove} found nothing to remove in {inp}: check the video, or tune the "
                            f"detector with tsam mask {opts.remove} and pass its mask with --mask")
        if not found[0]:
            rep.warn(f"--remove {opts.remove} found nothing in {inp}: only --mask/--box is removed")
        rep.info(f"--remove {opts.remove}: {getattr(detected, 'summary', 'done')}")
        protected = (*opts.protected, ("the mask", Path(opts.mask))) if opts.mask else opts.protected
        yield dataclasses.replace(opts, mask=str(path), invert_mask=False, mask_threshold=None, remove=None,
                                  protected=protected)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
