"""The still camera's backdrop: removal margins peeled where they show the background."""

from __future__ import annotations

import numpy as np
from conftest import texture

from tsam_cli.flow.warp import grow
from tsam_cli.masking.backdrop import Backdrop, pack_mask, peel, unpack_mask

H, W, T = 96, 160, 24
OBJ = 24  # the object's side, px
MARGIN = 6  # what the tracker's recall margin adds around it, px


def clip(pan: int = 0, speed: int = 4, hollow: bool = False):
    """``(frames (T, H, W, 3) uint8, object (T, H, W) bool)``: a textured square moving ``speed``
    px/frame to the right over a textured background that pans ``pan`` px/frame. ``hollow``: the
    object's middle (8 x 8 px) shows the background's colour at that place."""
    bg = texture(H, W + abs(pan) * T, seed=3) // 2  # 0..127
    obj = texture(OBJ, OBJ, seed=9) // 2 + 128  # 128..255: never within PEEL_TOL of the background
    frames, objects = [], []
    for t in range(T):
        f = bg[:, pan * t:pan * t + W].copy()
        m = np.zeros((H, W), bool)
        x = 10 + speed * t
        m[36:36 + OBJ, x:x + OBJ] = True
        f[m] = obj.reshape(-1, 3)
        if hollow:
            f[44:52, x + 8:x + 16] = bg[44:52, pan * t + x + 8:pan * t + x + 16]
        frames.append(f)
        objects.append(m)
    return np.stack(frames), np.stack(objects)


def peeled(frames, masks):
    b = Backdrop(len(frames))
    for i, (f, m) in enumerate(zip(frames, masks, strict=True)):
        b.keep(i, f, m)
    return [unpack_mask(p, (W, H)) for p in b.peeled([pack_mask(m) for m in masks], (W, H))]


def test_a_still_camera_loses_the_margin_and_keeps_the_object():
    frames, objects = clip()
    masks = np.stack([grow(o, MARGIN) for o in objects])
    out = np.stack(peeled(frames, masks))
    assert (out[objects]).all()  # every object pixel stays in the mask
    assert out.sum() < 0.7 * masks.sum()  # most of the margin is gone
    assert (out <= masks).all()  # only ever taken away


def test_a_panning_camera_is_left_alone():
    frames, objects = clip(pan=5)
    masks = np.stack([grow(o, MARGIN) for o in objects])
    out = peeled(frames, masks)
    assert all(np.array_equal(a, b) for a, b in zip(out, masks, strict=True))


def test_the_background_seen_inside_the_object_is_not_cut_out():
    frames, objects = clip(hollow=True)
    masks = np.stack([grow(o, MARGIN) for o in objects])
    out = np.stack(peeled(frames, masks))
    assert out[objects].all()  # the hollow middle matches the backdrop but is enclosed: kept


def test_pixels_never_seen_uncovered_are_kept():
    frames, objects = clip(speed=0)  # the object never moves: nothing behind it is known
    masks = np.stack([grow(o, MARGIN) for o in objects])
    out = np.stack(peeled(frames, masks))
    assert out[objects].all()


def test_peel_goes_inwards_from_the_outside_only():
    h, w = 20, 20
    median = np.full((h, w, 3), 100, np.float32)
    trusted = np.ones((h, w), bool)
    frame = np.full((h, w, 3), 100, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[4:16, 4:16] = True
    frame[6:14, 6:14] = 200  # the object: unlike the backdrop
    frame[9:11, 9:11] = 100  # a background-coloured speck inside it
    out = peel(frame, mask, median, trusted)
    assert out[6:14, 6:14].all()  # object and its enclosed speck kept
    assert not out[4:6, 4:16].any() and not out[14:16, 4:16].any()  # the margin peeled
    untrusted = peel(frame, mask, median, np.zeros((h, w), bool))
    assert np.array_equal(untrusted, mask)  # no backdrop known: nothing taken
