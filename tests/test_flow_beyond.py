"""Flow beyond the picture: the region past a still edge is held still (zero flow, valid),
a moving edge keeps the motion model's extrapolation, and an outpainted still shot keeps its
new area steady."""

from __future__ import annotations

import numpy as np
from conftest import texture

import tsam_cli as tsam
from tsam_cli.flow.beyond import hold_still_beyond, still_outside
from tsam_cli.flow.pair import PairFlow

H, W = 64, 96


def _strips(left: int = 12, right: int = 12) -> np.ndarray:
    out = np.zeros((H, W), bool)
    out[:, :left], out[:, W - right:] = True, True
    return out


def test_a_still_edge_holds_and_a_moving_one_does_not():
    a = texture(H, W, seed=1)
    outside = _strips()
    known = ~outside
    assert still_outside(a, a.copy(), known, outside).tolist() == outside.tolist()
    panned = np.roll(a, 2, axis=1)  # the whole picture moves by 2 px
    assert not still_outside(a, panned, known, outside).any()


def test_each_outside_part_is_judged_on_its_own_edge():
    a = texture(H, W, seed=2)
    b = a.copy()
    b[:, 48:] = np.roll(a[:, 48:], 3, axis=0)  # the right half moves, the left half is still
    outside = _strips()
    still = still_outside(a, b, ~outside, outside)
    assert still[:, :12].all() and not still[:, 12:].any()


def test_a_flat_edge_says_nothing():
    flat = np.full((H, W, 3), 128, np.uint8)
    outside = _strips()
    assert not still_outside(flat, flat.copy(), ~outside, outside).any()


def test_hold_still_zeroes_and_validates_only_the_still_outside():
    a = texture(H, W, seed=3)
    outside = _strips()
    rng = np.random.default_rng(0)
    pf = PairFlow(rng.normal(size=(H, W, 2)).astype(np.float32), rng.normal(size=(H, W, 2)).astype(np.float32),
                  np.zeros((H, W), bool), np.zeros((H, W), bool))
    held = hold_still_beyond(pf, a, a.copy(), outside, outside, outside, outside)
    assert not held.fwd[outside].any() and not held.bwd[outside].any()
    assert held.valid_f[outside].all() and held.valid_b[outside].all()
    assert np.array_equal(held.fwd[~outside], pf.fwd[~outside]) and not held.valid_f[~outside].any()
    assert hold_still_beyond(pf, a, np.roll(a, 2, axis=1), outside, outside, outside, outside) is pf


def test_an_outpainted_still_shot_keeps_its_new_area_steady():
    """A still camera with something moving in the middle: the new area must not drift with
    the middle's motion (the fill is the same in every frame)."""
    T = 12
    background = texture(H, W, seed=4)
    frames = np.repeat(background[None], T, axis=0)
    blob = texture(16, 16, seed=5)
    for t in range(T):  # a patch crossing the centre at 2 px/frame
        frames[t, 24:40, 30 + 2 * t:46 + 2 * t] = blob
    out = tsam.outpaint(frames, pad="16,0,16,0", threads=1)
    new = np.ones(out.shape[1:3], bool)
    new[:, 16:16 + W] = False
    steps = np.abs(np.diff(out[:, new].astype(np.int16), axis=0))
    assert steps.max() == 0, f"the new area changed by up to {steps.max()} grey levels between frames"


def test_outside_the_picture_takes_the_background_model_whatever_its_border_says():
    """Past the picture's edge both directions take the background model: left to the border's
    vote (a near object along the seam), one direction could take the model and the other the
    smooth fill, and no vector there would pass Eq. 2."""
    from tsam_cli.flow.complete import complete_flow

    flow = np.zeros((H, W, 2), np.float32)
    flow[:, :48, 0] = -3.0  # the background pans left...
    flow[:, 48:, 0] = 0.5  # ...a near object along the right seam moves otherwise
    model = np.zeros_like(flow)
    model[..., 0] = -3.0
    region = np.zeros((H, W), bool)
    region[:, 84:] = True  # the new area on the right, bordered by the object
    plain = complete_flow(flow, region, model)
    forced = complete_flow(flow, region, model, beyond=region)
    assert np.allclose(plain[region, 0], 0.5, atol=0.05)  # the border's vote: the object's layer
    assert np.allclose(forced[region, 0], -3.0, atol=0.05)
    assert np.array_equal(forced[~region], flow[~region])


def test_flow_next_to_the_seam_is_measured_on_the_picture_not_the_replicated_canvas():
    """Outpainting places the picture on a canvas whose sides repeat its edge columns, and those
    do not move with the scene. On a real handheld clip (in the repository), a 75 % centre crop
    placed so: the flow within 6-24 px of the seam measured on the picture only is closer to the
    flow of the uncropped frames than the flow measured on the whole canvas, which DIS drags
    towards the still band (1.1 px off on average against 0.6 px)."""
    from pathlib import Path

    import cv2

    from tsam_cli.flow.beyond import picture_flows
    from tsam_cli.flow.estimate import DISFlow

    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "clips" / "vllama_skatedog"
    frames = [cv2.imread(str(folder / f"{i:05d}.jpg"))[..., ::-1].copy() for i in range(10)]
    h, w = frames[0].shape[:2]
    cw = int(w * 0.75) // 2 * 2
    x0 = (w - cw) // 2
    outside = np.ones((h, w), bool)
    outside[:, x0:x0 + cw] = False
    band = np.zeros((h, w), bool)
    band[:, x0 + 6:x0 + 24], band[:, x0 + cw - 24:x0 + cw - 6] = True, True
    est, off_canvas, off_picture = DISFlow(), [], []
    for t in range(0, 10, 2):
        a, b = (cv2.copyMakeBorder(np.ascontiguousarray(f[:, x0:x0 + cw]), 0, 0, x0, w - x0 - cw, cv2.BORDER_REPLICATE)
                for f in frames[t:t + 2])
        truth = est(frames[t], frames[t + 1])
        fwd, bwd = picture_flows(est, a, b, outside, outside)
        assert np.all(fwd[outside] == 0) and np.all(bwd[outside] == 0)  # never used: all hole
        off_picture.append(np.median(np.linalg.norm(fwd - truth, axis=2)[band]))
        off_canvas.append(np.median(np.linalg.norm(est(a, b) - truth, axis=2)[band]))
    assert np.mean(off_picture) < 0.7 * np.mean(off_canvas)
    nothing = np.zeros((h, w), bool)  # no outside: the whole frame, as before
    np.testing.assert_array_equal(picture_flows(est, frames[0], frames[1], nothing, nothing)[0], est(frames[0], frames[1]))
