"""Completing one window: propagate along the flows, then fill what propagation left.

This is stages 3 and 4 of the pipeline (``docs/design.md``): the flows are computed before
(:mod:`tsam_cli.flow`), pasting back and encoding after (:mod:`tsam_cli.core.pipeline`). The
filler of "what no flow chain reaches" is a model behind one interface, the classical filler
(Telea / exemplar texture) like the paper's generator, so every path runs the same loop:

* :class:`ClassicalFill` fills *inside* propagation's forward sweep, once per region, so its
  invented pixels are carried on to the next frames like known ones (no per-frame flicker);
  without propagation it fills each frame on its own.
* :class:`GeneratorFill` runs the TSAM generator *after* propagation on the frames still
  holding holes, with the frame written before the window as known context.

Arrays: frames ``(T, h, w, 3) uint8`` RGB, holes ``(T, h, w) bool`` (True = hole), hops
``(T, h, w) float32`` (0 known, frames travelled, or ``FILLER_HOPS`` for invented pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsam_cli.core.propagate import FILLER_HOPS, ScaledFiller, holes_box, propagate
from tsam_cli.flow.pair import PairFlow, unlinked_pair_flow, upscale_pair_flow


@dataclass
class Before:
    """The frame written just before a window, which the window continues from."""

    completed: np.ndarray  # (h, w, 3) uint8, at the size the window is completed at
    hops: np.ndarray  # (h, w) float32
    flow: PairFlow  # pair (that frame, the window's first frame), at the processing size


@dataclass
class Window:
    """One window to complete, with what the earlier stages computed for it."""

    frames: np.ndarray  # (T, h, w, 3) uint8: processing size, or full size (full_res_from)
    holes: np.ndarray  # (T, h, w) bool, True = hole
    flows: list[PairFlow | None]  # T - 1 pairs (t, t+1) at the processing size; None: none known
    before: Before | None  # None at the start, after a cut, or where no flow links it
    n_keep: int  # the first n_keep frames are final; the rest are lookahead, done again next time
    full_res_from: tuple[int, int] | None = None  # the processing size (w, h) when frames are full size

    @property
    def size(self) -> tuple[int, int]:
        """(w, h) of the frames."""
        return self.holes.shape[2], self.holes.shape[1]


class ClassicalFill:
    """Telea or exemplar texture (:mod:`tsam_cli.core.propagate`, :mod:`tsam_cli.core.texture`);
    itself a hole filler whose calls count towards the "fill" stage time of ``rep``."""

    uses_flow = False  # needs flows only for propagation

    def __init__(self, filler, rep) -> None:
        self.filler, self.rep, self.name = filler, rep, filler.name

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with self.rep.timed("fill"):
            return self.filler(image, hole)

    def new_window(self, shots: int) -> None:
        """A texture budget per shot in the window (the texture filler's own pacing)."""
        if hasattr(self.filler, "new_window"):
            self.filler.new_window(shots)

    def in_sweep(self, win: Window):
        """The filler propagation calls for what no chain reaches (at the processing size)."""
        return ScaledFiller(self, win.full_res_from) if win.full_res_from else self

    def fill_rest(self, win: Window, frames: np.ndarray, rest: np.ndarray, rep) -> np.ndarray:
        """Fill ``rest`` (what is still a hole) frame by frame: only without propagation."""
        if not rest.any():
            return frames
        out = frames.copy()
        for t in range(len(frames)):
            if rest[t].any():
                out[t][rest[t]] = self(frames[t], rest[t])[rest[t]]
        return out


class GeneratorFill:
    """The TSAM generator (:class:`tsam_cli.core.model_fill.ModelRunner`), after propagation."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.uses_flow = runner.use_flow

    def new_window(self, shots: int) -> None:
        pass

    def in_sweep(self, win: Window):
        return None  # propagation leaves what it cannot reach to the generator

    def fill_rest(self, win: Window, frames: np.ndarray, rest: np.ndarray, rep) -> np.ndarray:
        """Predict the kept frames that still have holes; their neighbours serve as context,
        lookahead frames keep their propagation result (computed again in the next window)."""
        T = len(frames)
        need = rest.reshape(T, -1).any(axis=1)
        need[win.n_keep:] = False
        if not need.any():
            return frames
        g_frames, g_rest, g_flows = frames, rest, list(win.flows)
        if win.full_res_from:  # the generator runs at the processing size; upscaled into the holes
            g_frames = np.stack([resize(f, win.full_res_from) for f in frames])
            g_rest = np.stack([resize(r.astype(np.float32), win.full_res_from) > 0 for r in rest])
        if win.before is not None:  # the written frame before the window, as a known frame
            known = resize(win.before.completed, win.full_res_from) if win.full_res_from else win.before.completed
            g_frames = np.concatenate([known[None], g_frames])
            g_rest = np.concatenate([np.zeros_like(g_rest[:1]), g_rest])
            g_flows = [win.before.flow] + g_flows
            need = np.concatenate([[False], need])
        with rep.timed("model"):
            out = self.runner(g_frames, g_rest, g_flows, need=need)[-T:]
        if win.full_res_from:
            out = np.where(rest[..., None], np.stack([resize(o, win.size, cubic=True) for o in out]), frames)
        return out


def complete_window(win: Window, fill, propagation: bool, rep) -> tuple[np.ndarray, np.ndarray]:
    """Propagate (unless ``propagation`` is off), then ``fill`` what is left.

    Returns ``(completed (T, h, w, 3) uint8, hops (T, h, w) float32)`` at the window's size."""
    if not win.holes.any():
        return win.frames, np.zeros(win.holes.shape, np.float32)
    if propagation:
        with rep.timed("propagate"):
            box = holes_box(win.holes) if win.full_res_from else None  # what propagation reads
            frames, hops, rest = propagate(win.frames, win.holes, _flows_at_size(win, box), fill.in_sweep(win),
                                           prev=_before_at_size(win, box))
    else:
        frames, hops, rest = win.frames, np.where(win.holes, FILLER_HOPS, 0.0).astype(np.float32), win.holes
    return fill.fill_rest(win, frames, rest, rep), hops


def _flows_at_size(win: Window, box) -> list[PairFlow]:
    """The window's pair flows at the size it is completed at; a pair without flow becomes
    "nothing valid" (hole-free frames: never sampled)."""
    return [_at_size(f, win, box) if f is not None else unlinked_pair_flow(win.holes.shape[1:]) for f in win.flows]


def _before_at_size(win: Window, box) -> tuple[np.ndarray, np.ndarray, PairFlow] | None:
    b = win.before
    return None if b is None else (b.completed, b.hops, _at_size(b.flow, win, box))


def _at_size(flow: PairFlow, win: Window, box) -> PairFlow:
    """At full size only the part propagation reads is resized (``box``, :func:`holes_box`)."""
    return upscale_pair_flow(flow, win.size, box) if win.full_res_from else flow


def resize(img: np.ndarray, size: tuple[int, int], cubic: bool = False) -> np.ndarray:
    """``img`` at ``size`` (w, h): area-averaged when shrinking, bicubic when asked."""
    import cv2

    return cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_AREA)
