"""Writing made masks: a mask video or a folder of PNG masks that ``tsam inpaint --mask`` reads back exactly.

Masks come in as ``(H, W) bool`` arrays in the video's **coded** orientation (the frames of
:func:`tsam_cli.media.iter_frames`), True = remove. They are written as

* a video (``.mp4/.mov/.m4v/.mkv``): white (255) = remove, black = keep, **lossless**
  (H.264 RGB qp 0, FFV1 in ``.mkv``) so thresholding gives back the same pixels; the frames
  stay in coded orientation and carry the input's display rotation, exactly as
  :mod:`tsam_cli.media.masks` turns a mask video (by its own rotation) and then back to
  the coded orientation of the video it is applied to; the video's timestamps are kept
  when the masks come with them;
* a folder of ``00000.png`` ... (no suffix): turned to **display** orientation, because a
  PNG has no rotation tag and ``--mask FOLDER`` is read as the user sees the video.

Everything goes through :class:`~tsam_cli.media.output.OutputTarget`: checked (never the
input), locked, written to a temporary beside the target and swapped in complete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tsam_cli.errors import InputError
from tsam_cli.media.reader import VideoInfo
from tsam_cli.ui import NullReporter

#: what the mask stage says while writing (a progress stage name of the reporter)
STAGE = "write mask"


def to_display(mask: np.ndarray, rotation: int) -> np.ndarray:
    """Coded-orientation mask -> display orientation (turned ``rotation`` degrees clockwise)."""
    return np.ascontiguousarray(np.rot90(mask, k=-(rotation // 90))) if rotation % 360 else mask


def _mask_meta(info: VideoInfo) -> VideoInfo:
    """The input's picture geometry (size, rotation, pixel aspect) without its colour, alpha,
    depth or reading notes: a mask video is plain 8-bit RGB, and those notes are about the input."""
    return dataclasses.replace(info, notes=[], has_alpha=False, bit_depth=8, pix_fmt="", has_audio=False,
                               color_primaries=2, color_trc=2, colorspace=2, color_range=0)


def _split(item) -> tuple[np.ndarray, int | None]:
    """A mask, or a ``(mask, pts)`` pair -> ``(mask, pts or None)``."""
    if isinstance(item, tuple):
        return item[0], item[1]
    return item, None


def save_masks(masks: Iterable, out: Path, info: VideoInfo, *, overwrite: bool, protected: list,
               reporter=None) -> int:
    """Write binary masks to ``out`` (mask video or PNG folder) safely; return the frames written.

    Args:
        masks: per video frame, a ``(H, W) bool`` mask (``info.height x info.width``, coded
            orientation, True = remove), or a ``(mask, pts)`` pair where ``pts`` is the
            frame's timestamp in ``info.time_base`` (kept in a mask video).
        out: ``.mp4/.mov/.m4v/.mkv`` file, or a folder (no suffix) for ``00000.png`` ...
        info: the video the masks belong to (its path is never overwritten).
        overwrite: replace an existing ``out`` (a file, or a folder of frames tsam wrote).
        protected: more ``(label, path)`` pairs or paths ``out`` must not replace.
        reporter: progress (stage ``"write mask"``); :class:`~tsam_cli.ui.NullReporter` if None.
    Raises :class:`OutputError` for a bad ``-o`` or a write failure, :class:`InputError`
    when ``masks`` is empty; nothing is left at ``out`` then.
    """
    from tsam_cli.media import OutputTarget, open_writer

    rep = reporter or NullReporter()
    out = Path(out)
    guarded = [("the input", info.path), *protected]
    with OutputTarget(out, guarded, overwrite) as target:
        folder = target.kind == "folder"
        turn = info.rotation if folder else 0
        w, h = (info.height, info.width) if turn in (90, 270) else (info.width, info.height)
        writer = open_writer(target.tmp, w, h, info.fps, kind=target.kind, time_base=info.time_base,
                             lossless=True, suffix=out.suffix, meta=_mask_meta(info) if not folder else None)
        rep.start(STAGE, info.n_frames)
        n = 0
        with writer:
            for item in masks:
                mask, pts = _split(item)
                if mask.shape != (info.height, info.width):
                    raise ValueError(f"mask {n} is {mask.shape}, expected ({info.height}, {info.width}) coded")
                m = to_display(mask, turn) if turn else mask
                grey = np.where(m, np.uint8(255), np.uint8(0))
                writer.write(np.repeat(grey[..., None], 3, axis=2), pts)
                n += 1
                rep.advance(STAGE)
        if n == 0:
            raise InputError(f"no frame of {info.path} could be decoded, so no mask was written: check the video")
        target.commit()
    return n


# ---------------------------------------------------------------------------- confidence sidecar
#: ``tsam mask track -o OUT`` also writes ``OUT.confidence.json`` beside the masks (a file, not
#: inside a folder output: a mask folder holds only frames, so that ``--overwrite`` may replace it)
CONFIDENCE_SUFFIX = ".confidence.json"
#: what the sidecar's ``format`` field says (a JSON file of another kind is refused when read)
CONFIDENCE_FORMAT = "tsam-track-confidence"


def confidence_path(out: Path) -> Path:
    """The confidence sidecar of the mask output ``out``: ``masks.mkv`` -> ``masks.mkv.confidence.json``,
    a folder ``masks`` -> ``masks.confidence.json`` (both beside ``out``)."""
    out = Path(out)
    return out.with_name(out.name + CONFIDENCE_SUFFIX)


def confidence_target(out: Path, protected: list, overwrite: bool):
    """The :class:`~tsam_cli.media.output.OutputTarget` of ``out``'s sidecar: the same rules as
    every output (checked, never a protected path nor an existing file without ``--overwrite``,
    locked, written aside, swapped in). Raises :class:`OutputError` for a bad path."""
    from tsam_cli.media.output import OutputTarget

    return OutputTarget(confidence_path(out), protected, overwrite, suffixes={".json"}, folders=False)


def confidence_json(scores: list, seeds: list[int], threshold: float) -> str:
    """The sidecar's text: ``{"format", "version": 1, "frames", "threshold", "seeds", "confidence":
    [0..1 per frame, 3 decimals], "weakest": [the weakest signal per frame]}``."""
    import json

    return json.dumps({"format": CONFIDENCE_FORMAT, "version": 1, "frames": len(scores), "threshold": threshold,
                       "seeds": list(seeds), "confidence": [round(float(c), 3) for c, _ in scores],
                       "weakest": [w for _, w in scores]}) + "\n"


def read_confidence(path: Path) -> tuple[list[float], float]:
    """``(confidence per frame (0..1), threshold)`` from a sidecar written by ``tsam mask track``.
    Raises :class:`InputError` (one line) for a file that cannot be read or is not one."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        conf, threshold = data["confidence"], float(data["threshold"])
        ok = data.get("format") == CONFIDENCE_FORMAT and all(isinstance(c, (int, float)) for c in conf)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"cannot read the confidence file {path}: {exc}: give a file tsam mask track wrote") from None
    if not ok:
        raise InputError(f"{path} is not a confidence file of tsam mask track: give the OUT.confidence.json it wrote")
    return [float(c) for c in conf], threshold
