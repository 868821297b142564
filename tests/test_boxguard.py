"""The box guard of the removal tracker: a Siamese box tracker (NanoTrack, shipped) that keeps
the tracked core inside the object's box, so a bystander that touches the mask is not carried on.
Masks ``(h, w) bool``, True = object."""

from __future__ import annotations

import numpy as np
import pytest

from tsam_cli.masking import boxguard
from tsam_cli.masking.boxguard import BoxGuard, box_xywh, grown_box

H, W = 120, 200


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """A blocky random texture, ``(h, w, 3) uint8`` (something a tracker can lock on)."""
    import cv2

    small = np.random.default_rng(seed).integers(0, 256, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)[:h, :w]


def _clip(n: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A 30x30 textured square moving right 3 px a frame over a smooth grey ramp."""
    ramp = np.broadcast_to(np.linspace(90, 150, W, dtype=np.float32)[None, :, None], (H, W, 3)).astype(np.uint8)
    obj = _texture(30, 30, 1)
    frames, masks = [], []
    for t in range(n):
        f, m = ramp.copy(), np.zeros((H, W), bool)
        x = 40 + 3 * t
        f[45:75, x : x + 30] = obj
        m[45:75, x : x + 30] = True
        frames.append(f)
        masks.append(m)
    return frames, masks


def test_grown_box_is_the_box_with_a_relative_margin_clipped_to_the_frame():
    m = grown_box((H, W), (50, 40, 20, 30))
    ys, xs = np.nonzero(m)
    mx, my = max(boxguard.GROW_MIN, boxguard.GROW_X * 20), max(boxguard.GROW_MIN, boxguard.GROW_Y * 30)
    assert (xs.min(), xs.max() + 1) == (int(50 - mx), int(70 + mx))
    assert (ys.min(), ys.max() + 1) == (int(40 - my), int(70 + my))
    edge = grown_box((H, W), (-5, -5, 20, 20))  # a box past the frame's corner is clipped, not wrapped
    assert edge[0, 0] and not edge[:, -1].any() and not edge[-1, :].any()
    assert box_xywh(m) == (int(50 - mx), int(40 - my), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


def test_the_guard_cuts_a_bystander_joined_to_the_core_and_keeps_the_object():
    frames, masks = _clip()
    guard = BoxGuard.create(frames[0], masks[0])
    assert guard is not None
    for t in range(1, len(frames)):
        bystander = np.zeros((H, W), bool)
        bystander[40:80, masks[t].nonzero()[1].max() + 1 : W] = True  # touching it on the right, to the edge
        out = guard.clamp(frames[t], masks[t] | bystander, masks[t - 1])
        assert (out & masks[t]).sum() == masks[t].sum()  # the whole object stays
        assert (out & bystander).sum() < 0.25 * bystander.sum()  # most of what joined it goes


def test_the_guard_leaves_the_core_alone_where_its_box_does_not_hold_it_and_starts_again(monkeypatch):
    """A box that lost the object (the previous core lies outside it) cuts nothing; after
    RESTART_AFTER such frames the box tracker starts again from the core."""
    frames, masks = _clip()
    guard = BoxGuard.create(frames[0], masks[0])
    starts = []
    monkeypatch.setattr(guard, "_start", lambda frame, mask: starts.append(mask.copy()))
    elsewhere = np.zeros((H, W), bool)
    elsewhere[5:20, 150:190] = True  # the previous core far from the box: the box is not trusted
    core = masks[1] | elsewhere
    for k in range(boxguard.RESTART_AFTER):
        assert not starts
        assert np.array_equal(guard.clamp(frames[1 + k], core, elsewhere), core)
    assert len(starts) == 1 and np.array_equal(starts[0], core)


def test_without_the_model_files_the_tracker_runs_unguarded(monkeypatch):
    from tsam_cli.masking.track import MaskTracker, TrackOptions

    frames, masks = _clip(3)
    monkeypatch.setattr(boxguard, "_model_files", lambda: None)
    assert BoxGuard.create(frames[0], masks[0]) is None
    tracker = MaskTracker(frames[0], masks[0], TrackOptions(box="1,1,2,2", net_steps=0), _zero_flow)
    assert tracker.guard is None
    assert tracker.step(frames[1]).any()


def _zero_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.zeros((*a.shape[:2], 2), np.float32)


@pytest.mark.parametrize("kw", [{"tight": True}, {"box_guard": False}, {}])
def test_the_guard_runs_in_removal_mode_unless_turned_off(kw):
    from tsam_cli.masking.track import MaskTracker, TrackOptions

    frames, masks = _clip(2)
    tracker = MaskTracker(frames[0], masks[0], TrackOptions(box="1,1,2,2", net_steps=0, **kw), _zero_flow)
    assert (tracker.guard is None) == bool(kw)


def test_loading_the_box_tracker_prints_nothing(capfd):
    """OpenCV's DNN engine warns on every load that it ignores the preferred target; that must
    not reach the user's terminal."""
    frames, masks = _clip(2)
    BoxGuard.create(frames[0], masks[0])
    out, err = capfd.readouterr()
    assert out == "" and err == ""
