"""A learned box tracker that keeps the removal mask from spreading onto something else.

The recall-first tracker (:mod:`tsam_cli.masking.track`) grows its mask by whatever moves next
to the object; a car that drives behind a person, or a second person who walks beside them,
joins the mask and is then carried on, and the mask ratchets up (an 80-frame composite: 6.9x the
person's area, half of the frame; docs/benchmarks.md, "Bystanders kept out by a box tracker").
A Siamese box tracker compares each frame with the seed frame's template only, so it cannot
learn the bystander the way the mask's appearance model does. :class:`BoxGuard` runs one,
NanoTrack v2 (ONNX files shipped in ``tsam_cli/shipped/nanotrack``, Apache-2.0, run by
OpenCV's ``TrackerNano``; about 7 ms of CPU a frame at 432x240), and cuts the tracked core to its box,
grown by a margin, on the frames where the box agrees with the mask.

Masks are ``(h, w) bool``, True = object; frames ``(h, w, 3) uint8`` RGB at the tracking size.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from tsam_cli.flow.warp import bounding_box

#: the box is grown by this fraction of its width / height on each side, at least GROW_MIN px:
#: the box alone misses legs that swing out and an object that turns or grows faster than the
#: box's scale follows. Removal composites, 40 frames (docs/benchmarks.md, "Bystanders kept out
#: by a box tracker"), rigid control's worst frame recall after +4 px / px a frame far from
#: the car-turn girl: 0.2 / 0.1: 0.980 / 72; 0.2 / 0.2: 0.998 / 187; 0.3 / 0.2: 0.999 / 266
#: (unguarded: 1.000 / 641). Recall first: a missed pixel stays in the video
GROW_X, GROW_Y, GROW_MIN = 0.2, 0.2, 8
#: the box is trusted on a frame when it holds at least this fraction of the previous frame's
#: core: where the box jumped onto a bystander (a man passing a girl) a gate of 0.7 let it cut
#: the girl (80 frames, worst frame's recall after +4 px 0.92 -> 0.68), 0.9 kept 0.89; 0.97
#: re-started the box tracker five times on the rigid control, which scales and turns (measured
#: with GROW_Y 0.1)
GATE = 0.9
#: after this many frames in a row without trust, the box tracker starts again from the core
RESTART_AFTER = 2


def _model_files() -> tuple[str, str] | None:
    """Paths of the shipped backbone and head ONNX files, or None where they are missing."""
    root = resources.files("tsam_cli") / "shipped" / "nanotrack"
    files = (root / "nanotrack_backbone_sim.onnx", root / "nanotrack_head_sim.onnx")
    return (str(files[0]), str(files[1])) if all(f.is_file() for f in files) else None


def box_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` (what OpenCV's trackers take) of a non-empty ``(h, w) bool`` mask:
    :func:`tsam_cli.flow.warp.bounding_box` in that order."""
    y0, y1, x0, x1 = bounding_box(mask)
    return x0, y0, x1 - x0, y1 - y0


def grown_box(shape: tuple[int, int], box) -> np.ndarray:
    """``(h, w) bool``: ``box`` ``(x, y, w, h)`` grown by :data:`GROW_X` / :data:`GROW_Y` of its
    size (at least :data:`GROW_MIN` px) on each side, clipped to the frame."""
    x, y, w, h = box
    mx, my = max(GROW_MIN, GROW_X * w), max(GROW_MIN, GROW_Y * h)
    out = np.zeros(shape, bool)
    y0, y1 = max(0, int(y - my)), max(0, int(y + h + my))
    x0, x1 = max(0, int(x - mx)), max(0, int(x + w + mx))
    out[y0:y1, x0:x1] = True
    return out


class BoxGuard:
    """Follows the object's box from the seed frame and cuts the tracked core to it.

    ``BoxGuard.create(frame, mask)`` returns None where OpenCV has no ``TrackerNano`` or the
    model files are missing (the tracker then runs unguarded, as before)."""

    def __init__(self, tracker_factory, frame: np.ndarray, mask: np.ndarray) -> None:
        self._factory = tracker_factory
        self._untrusted = 0  # frames in a row where the box did not hold the core
        self._start(frame, mask)

    @classmethod
    def create(cls, frame: np.ndarray, mask: np.ndarray) -> BoxGuard | None:
        import cv2

        files = _model_files()
        if files is None or not hasattr(cv2, "TrackerNano") or not mask.any():
            return None
        params = cv2.TrackerNano_Params()
        params.backbone, params.neckhead = files
        return cls(lambda: _quiet(cv2.TrackerNano_create, params), frame, mask)

    def _start(self, frame: np.ndarray, mask: np.ndarray) -> None:
        import cv2

        self._tracker = self._factory()
        self._tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), box_xywh(mask))

    def clamp(self, frame: np.ndarray, core: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """``core`` (this frame's tracked object) less what lies outside the box grown by
        :func:`grown_box`, when the box holds at least :data:`GATE` of ``prev`` (the previous
        frame's core); else ``core`` unchanged, and after :data:`RESTART_AFTER` such frames the
        box tracker starts again from ``core``. All ``(h, w) bool``."""
        import cv2

        if not core.any():
            return core
        _, box = self._tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        region = grown_box(core.shape, box)
        if prev.any() and int((prev & region).sum()) >= GATE * int(prev.sum()):
            self._untrusted = 0
            return core & region
        self._untrusted += 1
        if self._untrusted >= RESTART_AFTER:
            self._start(frame, core)
            self._untrusted = 0
        return core


def _quiet(make, params):
    """``make(params)`` with OpenCV's log at errors only: its DNN engine warns on every load
    that it ignores the preferred target, which would land in the user's terminal."""
    import cv2

    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        return make(params)
    finally:
        log.setLogLevel(level)
