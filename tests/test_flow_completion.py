"""Flow completion by motion layers (tsam_cli/flow/): a camera pan following a subject.

The clip: a textured background panning 8 px/frame (true flow t -> t+1 is (-8, 0), t+1 -> t is
(+8, 0)), a foreground subject of another texture and a distinct hue (red) fixed in the frame,
and a hole in the background touching the subject. Before this work the flow inside the hole
was a smooth fill of a border holding both motions (mean end-point error 1.70 px here), and
propagation followed it to the wrong places.
"""

from fractions import Fraction

import numpy as np
import pytest
from conftest import read_video, texture, write_pngs

from tsam_cli.flow.complete import (
    FLOW_MARGIN,
    GlobalMotion,
    background_holes,
    complete_flow,
    model_flow,
    smooth_fill,
    untrusted,
)
from tsam_cli.flow.estimate import DISFlow
from tsam_cli.flow.pair import hidden, pair_flow
from tsam_cli.flow.validity import nearest_outside, same_layer
from tsam_cli.flow.warp import grow
from tsam_cli.metrics.psnr import psnr_pixels

SPEED = 8  # background pan, px/frame
H, W, T = 128, 192, 16
SUBJECT = (slice(70, 120), slice(70, 120))  # rows, cols: fixed in the frame
HOLE = (slice(40, 70), slice(60, 130))  # in the background, right above the subject (touching it)


def box(h, w, rows, cols):
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


def pan_clip(subject=SUBJECT, hole=HOLE, T=T, h=H, w=W):
    """``(truth, damaged, subject, hole)``: ``(T, h, w, 3) uint8`` x2 and ``(h, w) bool`` x2.

    Background: R = 0.2 x texture (<= 51), G and B textured; subject: R >= 150, G and B <= 77,
    so ``R - max(G, B) > 60`` holds on the subject and never on the background. The hole shows
    a third texture (blue, static in the frame: what is being removed).
    """
    bg_tex = texture(h, w + SPEED * T, seed=1).astype(np.float32)
    bg = np.stack([0.2 * bg_tex[..., 0], bg_tex[..., 1], bg_tex[..., 2]], axis=2)
    t2 = texture(h, w, seed=2).astype(np.float32)
    fg = np.stack([150 + 0.4 * t2[..., 0], 0.3 * t2[..., 1], 0.3 * t2[..., 2]], axis=2)
    removed = np.stack([0.3 * t2[..., 1], 0.3 * t2[..., 0], 120 + 0.5 * t2[..., 2]], axis=2)
    subj, hole_m = box(h, w, *subject), box(h, w, *hole)
    truth = np.stack([bg[:, SPEED * t : SPEED * t + w] for t in range(T)])
    truth[:, subj] = fg[subj]
    damaged = truth.copy()
    damaged[:, hole_m] = removed[hole_m]

    def u8(a):
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return u8(truth), u8(damaged), subj, hole_m


def subject_like(pixels):
    """``(..., 3) uint8`` -> bool: the subject's hue (red), never found in the background."""
    p = pixels.astype(int)
    return p[..., 0] - np.maximum(p[..., 1], p[..., 2]) > 60


def hole_epe(complete, pairs=range(0, T - 1, 3)):
    """Mean end-point error inside the hole of ``complete(estimator, a, b, hole) -> (fwd, bwd)``."""
    _, damaged, _, hole = pan_clip()
    est = DISFlow()
    errs = []
    for t in pairs:
        fwd, bwd = complete(est, damaged[t], damaged[t + 1], hole)
        errs.append(np.linalg.norm(fwd[hole] - [-SPEED, 0], axis=1).mean())
        errs.append(np.linalg.norm(bwd[hole] - [SPEED, 0], axis=1).mean())
    return float(np.mean(errs))


def smooth_only(est, a, b, hole):
    """The completion before this work: smooth fill of the hole grown by FLOW_MARGIN."""
    region = grow(hole, FLOW_MARGIN)
    return smooth_fill(est(a, b), region), smooth_fill(est(b, a), region)


def with_motion(motion):
    def complete(est, a, b, hole):
        pf = pair_flow(est, a, b, hole, hole, motion=motion)
        return pf.fwd, pf.bwd
    return complete


def test_completed_flow_follows_the_background_on_a_pan():
    before = hole_epe(smooth_only)
    after = hole_epe(with_motion(None))  # the default
    print(f"hole EPE: smooth fill {before:.3f} px, motion layers {after:.3f} px")
    assert after < 0.5
    assert before > 1.0  # the clip does show the defect
    assert hole_epe(with_motion(GlobalMotion("homography"))) < 0.5  # the other estimator works too
    assert hole_epe(with_motion(False)) > 1.0  # and without a model it is still the smooth fill


def test_pipeline_on_a_pan_fills_background_without_subject_colour(tmp_path):
    from tsam_cli.core.pipeline import InpaintOptions, inpaint
    from tsam_cli.media import create_video

    truth, damaged, subj, hole = pan_clip()
    src = tmp_path / "pan.mkv"
    with create_video(src, W, H, Fraction(25), lossless=True) as w:
        for f in damaged:
            w.write(f)
    masks = write_pngs(tmp_path / "masks", [hole.astype(np.uint8) * 255] * T)
    out = tmp_path / "out.mkv"
    inpaint(src, out, InpaintOptions(mask=str(masks), dilate=0, lossless=True, quiet=True))
    result = read_video(out)
    holes = np.repeat(hole[None], T, axis=0)
    assert np.array_equal(result[~holes], damaged[~holes])  # known pixels are bit-exact
    p = psnr_pixels(truth, result, holes)
    n_subject = int(subject_like(result[holes]).sum())
    print(f"hole PSNR {p:.2f} dB, subject-coloured hole pixels {n_subject}")
    assert p > 30.0
    assert n_subject == 0
    assert subject_like(truth[:, subj]).all() and not subject_like(truth[holes]).any()  # the test's premise


def test_hole_inside_a_moving_object_follows_the_object():
    """Panning background, a large object moving its own way, a hole well inside the object: the
    border only holds the object's motion, so the completion must follow the object."""
    T2, h, w, obj_dx = 4, 128, 192, 3
    truth, _, _, _ = pan_clip(T=T2)
    obj_tex = texture(60, 110 + obj_dx * T2, seed=5)
    frames = truth.copy()
    for t in range(T2):
        frames[t, 30:90, 40:150] = obj_tex[:, obj_dx * t : obj_dx * t + 110]  # content moves by -3 px/frame
    hole = box(h, w, slice(48, 72), slice(75, 115))
    pf = pair_flow(DISFlow(), frames[1], frames[2], hole, hole)
    assert np.linalg.norm(pf.fwd[hole] - [-obj_dx, 0], axis=1).mean() < 0.5
    assert np.linalg.norm(pf.bwd[hole] - [obj_dx, 0], axis=1).mean() < 0.5


def test_correspondences_landing_on_the_subject_are_invalid():
    """Subject left of the hole: the background behind the hole's left part sits under the
    subject in frame t+1 (content moves left), so those correspondences must not be valid.
    Eq. 2 alone accepts them: the subject's pixels in the band around t+1's hole were
    completed with the background's flow too. Above and below the subject, farther than one
    DIS patch (8 px) from it, they stay valid (nearer, DIS mixes the two motions). The subject
    is 20 rows tall: DIS reads a 10-row bar as the panning background around it."""
    subject = (slice(55, 75), slice(40, 80))
    hole_box = (slice(25, 105), slice(80, 120))
    _, damaged, subj, hole = pan_clip(subject=subject, hole=hole_box, T=3)
    pf = pair_flow(DISFlow(), damaged[0], damaged[1], hole, hole)
    ys, xs = np.nonzero(hole)
    tx = np.clip(np.rint(xs + pf.fwd[ys, xs, 0]).astype(int), 0, W - 1)
    on_subject = subj[ys, tx] & ~hole[ys, tx]
    on_background = ~grow(subj, 8)[ys, tx] & ~hole[ys, tx]
    assert on_subject.sum() > 50 and on_background.sum() > 100
    assert not pf.valid_f[ys, xs][on_subject].any()
    assert pf.valid_f[ys, xs][on_background].mean() > 0.95


def moving_object_clip(T=4, speed=8):
    """A textured object (40 x 40 px) moving ``speed`` px/frame to the right over a still textured
    background: ``(frames (T, H, W, 3) uint8, holes (T, H, W) bool)``, the hole = the object."""
    bg, obj = texture(H, W, seed=1), texture(40, 40, seed=7)
    frames, holes = np.repeat(bg[None], T, axis=0), np.zeros((T, H, W), bool)
    for t in range(T):
        x = 50 + speed * t
        frames[t, 44:84, x:x + 40] = obj
        holes[t, 44:84, x:x + 40] = True
    return frames, holes


def test_hidden_replaces_only_the_hole_and_keeps_the_picture_edge():
    frames, holes = moving_object_clip(T=1)
    img, hole = frames[0], holes[0]
    out = hidden(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert not np.array_equal(out[hole], img[hole])
    assert hidden(img, np.zeros_like(hole)) is img  # nothing to hide: the frame itself
    outside = np.zeros_like(hole)
    outside[:, 60:] = True  # outpainting: right of column 60 lies outside the picture (and in the hole)
    out2 = hidden(img, hole | outside, outside)
    assert np.array_equal(out2[outside], img[outside])  # the canvas past the picture is left as it is
    assert not np.array_equal(out2[hole & ~outside], img[hole & ~outside])


def test_the_flow_estimator_never_sees_what_is_removed():
    """pair_flow measures motion on the frames with the hole hidden: the removed object's texture
    reaches the estimator nowhere, and the background next to it reads still instead of being
    dragged along with the object (which the raw frames show)."""
    frames, holes = moving_object_clip()
    est, seen = DISFlow(), []

    def recording(a, b):
        seen.append((a, b))
        return est(a, b)

    pair_flow(recording, frames[1], frames[2], holes[1], holes[2])
    h1, h2 = hidden(frames[1], holes[1]), hidden(frames[2], holes[2])
    assert len(seen) == 2  # both directions, each on the two hidden frames
    assert np.array_equal(seen[0][0], h1) and np.array_equal(seen[0][1], h2)
    assert np.array_equal(seen[1][0], h2) and np.array_equal(seen[1][1], h1)
    band = grow(holes[1], 14) & ~grow(holes[1], FLOW_MARGIN)  # beyond the band the pipeline discards
    drag_hidden = np.linalg.norm(est(seen[0][0], seen[0][1])[band], axis=1).mean()
    drag_raw = np.linalg.norm(est(frames[1], frames[2])[band], axis=1).mean()
    print(f"background flow next to the object: raw frames {drag_raw:.3f} px, hidden {drag_hidden:.3f} px")
    assert drag_hidden < 0.5 * drag_raw


def test_same_layer_reads_the_measured_flow_where_it_lands():
    h, w = 20, 40
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = -4.0  # completed: background moving left 4 px
    measured_back = np.zeros((h, w, 2), np.float32)
    measured_back[..., 0] = 4.0
    measured_back[:, :10] = 0.0  # a still subject in columns 0..9 of frame b
    completed = box(h, w, slice(5, 15), slice(8, 20))
    no_hole = np.zeros((h, w), bool)
    ok = same_layer(fwd, measured_back, completed, no_hole)
    assert not ok[5:15, 8:14].any()  # lands on columns 4..9: the subject
    assert ok[5:15, 15:20].all()  # lands on columns 11..15: background, the way back agrees
    assert ok[~completed].all()  # not completed: Eq. 2 decides alone
    hole_b = box(h, w, slice(0, 20), slice(0, 10))
    assert same_layer(fwd, measured_back, completed, hole_b)[5:15, 8:14].all()  # lands in b's hole: not judged


def test_nearest_outside_matches_brute_force():
    rng = np.random.default_rng(0)
    region = rng.random((23, 31)) < 0.6
    values = rng.random((23, 31, 2)).astype(np.float32)
    out = nearest_outside(values, region)
    oy, ox = np.nonzero(~region)
    assert np.array_equal(out[~region], values[~region])
    for y, x in zip(*np.nonzero(region), strict=True):
        d2 = (oy - y) ** 2 + (ox - x) ** 2
        # distanceTransform's 5x5 mask is an approximation of L2: allow ties and near-ties
        near = d2 <= d2.min() * 1.1 + 1e-9
        assert any(np.array_equal(out[y, x], values[a, b]) for a, b in zip(oy[near], ox[near], strict=True))


@pytest.mark.parametrize("kind", ["affine", "homography"])
def test_global_motion_fits_the_dominant_motion_despite_outliers(kind):
    h, w = 96, 160
    m = np.array([[1.01, 0.005, -6.0], [-0.004, 0.99, 1.5], [0.0, 0.0, 1.0]])
    truth = model_flow(m, h, w)
    flow = truth.copy()
    rng = np.random.default_rng(1)
    flow[20:60, 30:80] = rng.normal(0, 5, (40, 50, 2))  # another motion on ~13% of the frame
    known = np.ones((h, w), bool)
    known[70:90, 100:140] = False
    fitted = GlobalMotion(kind)(flow, known)
    assert np.abs(fitted - truth).max() < 0.05
    assert GlobalMotion(kind)(flow, np.zeros((h, w), bool)) is None  # no samples: no model
    assert model_flow(np.array([[1.0, 0, 0], [0, 1, 0], [-1.0, 0, 1]]), h, w) is None  # folds the frame


def test_background_holes_takes_holes_whose_border_partly_follows():
    h, w = 60, 120
    region = box(h, w, slice(20, 40), slice(10, 30)) | box(h, w, slice(20, 40), slice(80, 100))
    follows = np.zeros((h, w), bool)
    follows[:, :60] = True  # left hole: border all background
    follows[:28, 60:] = True  # right hole: the upper part of its border follows (partly background)
    taken = background_holes(region, follows)
    assert taken[20:40, 10:30].all() and taken[20:30, 80:100].all()
    # ... and its lower part, which the other layer encloses on three sides, stays with that layer
    assert not taken[36:40, 80:100].any()
    follows[:, 60:] = False  # right hole: no background on its border -> not taken
    taken = background_holes(region, follows)
    assert taken[20:40, 10:30].all() and not taken[:, 60:].any()


def test_a_stroke_across_a_moving_object_stays_on_the_object():
    """A thin hole (10 px) crossing an object that moves differently from the background: the
    part over the object is bridged by the object's layer; the parts over the background are not."""
    h, w = 80, 160
    region = box(h, w, slice(35, 45), slice(10, 150))  # a horizontal stroke
    follows = np.ones((h, w), bool)
    follows[20:60, 60:100] = False  # the object (another motion) under the middle of the stroke
    taken = background_holes(region, follows)
    assert not taken[35:45, 65:95].any()  # over the object: the object's motion
    assert taken[35:45, 10:50].all() and taken[35:45, 110:150].all()  # over the background


def test_complete_flow_leaves_known_flow_alone_and_degrades_to_smooth_fill():
    rng = np.random.default_rng(2)
    flow = rng.normal(0, 1, (40, 60, 2)).astype(np.float32)
    region = box(40, 60, slice(10, 20), slice(10, 30))
    model = np.zeros_like(flow)
    model[..., 0] = 0.5
    for m in (model, None):
        out = complete_flow(flow, region, m)
        assert out.dtype == np.float32 and np.array_equal(out[~region], flow[~region])
    assert np.array_equal(complete_flow(flow, region, None), smooth_fill(flow, region))  # no model: as before
    assert complete_flow(flow, np.zeros((40, 60), bool), model) is flow
    assert GlobalMotion()(flow[:4, :4], ~np.eye(4, dtype=bool)) is None  # too few samples for a model


def test_untrusted_adds_vectors_matched_into_the_other_hole():
    h, w = 30, 60
    grown_a = box(h, w, slice(10, 20), slice(20, 30))
    grown_b = box(h, w, slice(10, 20), slice(20, 30))
    raw = np.zeros((h, w, 2), np.float32)
    raw[..., 0] = -8.0  # background moving left
    raw[10:20, 30:36] = 0.1  # a strip hidden behind b's hole: DIS returns a near-still blend
    model = np.zeros_like(raw)
    model[..., 0] = -8.0
    assert np.array_equal(untrusted(grown_a, raw, np.zeros((h, w), bool)), grown_a)  # b has no hole
    only_raw = untrusted(grown_a, raw, grown_b)
    assert only_raw[10:20, 36:38].all()  # background vectors landing in b's hole (cols 28, 29)
    assert not only_raw[10:20, 30:36].any()  # the blend lands just beside the hole: not seen by raw alone
    back = -model  # b's measured flow: the background, seen in b, moves right
    with_model = untrusted(grown_a, raw, grown_b, back, model)
    assert with_model[10:20, 30:38].all()  # fails Eq. 2, and the model sends the strip into the hole
    still = raw.copy()
    still[10:20, 30:36] = 0.0  # a still subject instead, seen in both frames: it keeps its flow
    back_still = back.copy()
    back_still[10:20, 30:36] = 0.0
    assert not untrusted(grown_a, still, grown_b, back_still, model)[10:20, 30:36].any()
    for m in (only_raw, with_model):
        assert not m[:, 38:].any() and not m[:10].any() and not m[20:].any()
        assert m[grown_a].all()


def test_layer_bridging_and_layer_check_on_a_box_match_the_whole_frame():
    """``bridged_layer`` closes the other layer on the region's box grown by what the close and
    open read, and ``same_layer`` samples only the completed pixels' box: both must give
    exactly what the same operations on the whole frame give (here written out in full)."""
    import cv2

    from tsam_cli.flow.complete import LAYER_BRIDGE, bridged_layer
    from tsam_cli.flow.validity import LAYER_MIN_WEIGHT, LAYER_TOL
    from tsam_cli.flow.warp import sample

    def whole_bridged(region, follows):
        other = cv2.morphologyEx((~region & ~follows).astype(np.uint8), cv2.MORPH_OPEN,
                                 cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * LAYER_BRIDGE + 1,) * 2)
        return region & (cv2.morphologyEx(other, cv2.MORPH_CLOSE, disc) > 0)

    def whole_same(flow, measured, completed, hole_b):
        known = (~hole_b).astype(np.float32)
        weight = sample(known, flow)
        d = flow + sample(measured * known[..., None], flow) / np.maximum(weight, 1e-6)[..., None]
        return ~(completed & (weight > LAYER_MIN_WEIGHT) & (d[..., 0] ** 2 + d[..., 1] ** 2 >= LAYER_TOL ** 2))

    rng = np.random.default_rng(7)
    H, W = 160, 240
    for i in range(40):
        region = np.zeros((H, W), bool)
        cy, cx, hh, ww = rng.integers(0, H), rng.integers(0, W), rng.integers(3, 50), rng.integers(3, 70)
        region[max(0, cy - hh):cy + hh, max(0, cx - ww):cx + ww] = True
        if i % 4 == 0:
            region[:] = False  # nothing to complete
        smooth = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), float(rng.uniform(1, 10)))
        follows = (smooth > np.median(smooth)) & ~region
        assert np.array_equal(bridged_layer(region, follows), whole_bridged(region, follows))
        flow = rng.normal(0, 8, (H, W, 2)).astype(np.float32)
        measured = rng.normal(0, 8, (H, W, 2)).astype(np.float32)
        hole_b = np.roll(region, int(rng.integers(-20, 20)), axis=1)
        assert np.array_equal(same_layer(flow, measured, region, hole_b), whole_same(flow, measured, region, hole_b))


@pytest.mark.parametrize("small,full,cropped", [((960, 540), (1920, 1080), True), ((960, 540), (1280, 720), True),
                                                ((480, 270), (1920, 1080), True), ((640, 360), (960, 540), False),
                                                ((96, 54), (191, 108), False)])
def test_upscaled_flow_on_a_box_matches_the_whole(small, full, cropped):
    """Propagation at full size reads its holes' box only, so the flows are brought to full size
    there only: inside the box every vector and validity bit must be what resizing the whole
    frame gives (2x, 4x and 4/3x take the part; 3/2x and odd sizes fall back to the whole)."""
    from tsam_cli.flow.pair import PairFlow, upscale_pair_flow

    rng = np.random.default_rng(3)
    (w, h), (W, H) = small, full
    pf = PairFlow(*(rng.normal(0, 3, (h, w, 2)).astype(np.float32) for _ in range(2)),
                  rng.random((h, w)) > 0.3, rng.random((h, w)) > 0.3)
    whole = upscale_pair_flow(pf, full)
    for _ in range(8):
        y0, x0 = int(rng.integers(0, H - 1)), int(rng.integers(0, W - 1))
        box = (y0, int(rng.integers(y0 + 1, H + 1)), x0, int(rng.integers(x0 + 1, W + 1)))
        part = upscale_pair_flow(pf, full, box)
        for a, b in zip((whole.fwd, whole.bwd, whole.valid_f, whole.valid_b),
                        (part.fwd, part.bwd, part.valid_f, part.valid_b), strict=True):
            np.testing.assert_array_equal(a[box[0]:box[1], box[2]:box[3]], b[box[0]:box[1], box[2]:box[3]])
    tiny = upscale_pair_flow(pf, full, (0, 1, 0, 1))  # only a corner is computed where that is exact
    computed = np.count_nonzero(tiny.fwd[..., 0]) / (W * H)
    assert computed < 0.01 if cropped else computed > 0.01


def _blobs(rng, shape, n=3, noise=0.0):
    """``(H, W) bool``: a few filled discs, plus scattered pixels when ``noise`` > 0."""
    import cv2

    m = np.zeros(shape, np.uint8)
    for _ in range(n):
        cy, cx = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        cv2.circle(m, (cx, cy), int(rng.integers(2, max(3, min(shape) // 3))), 1, -1)
    return (m > 0) | (rng.random(shape) < noise)


def _smooth_fill_on_the_whole_frame(values, hole, iters=4):
    """The push-pull fill and its masked blurs computed on every pixel, as written in the
    first place: what :func:`smooth_fill` must give, pixel for pixel, on the box it computes."""
    import cv2

    known = (~hole).astype(np.float32)
    nums, weights = [values * known[..., None]], [known]
    while min(nums[-1].shape[:2]) > 4:
        h, w = nums[-1].shape[:2]
        size = ((w + 1) // 2, (h + 1) // 2)
        nums.append(cv2.resize(nums[-1], size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1))
        weights.append(cv2.resize(weights[-1], size, interpolation=cv2.INTER_AREA))
    k = weights[-1][..., None]
    est = nums[-1] / np.maximum(k, 1e-6)
    if not (k > 1e-6).all():
        est = np.where(k > 1e-6, est, nums[0].sum(axis=(0, 1)) / max(known.sum(), 1.0))
    for n, k in zip(reversed(nums[:-1]), reversed(weights[:-1]), strict=True):
        h, w = n.shape[:2]
        up = cv2.resize(est, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        k3 = k[..., None]
        est = np.divide(n, np.maximum(k3, 1e-6))
        est *= k3
        up *= 1 - k3
        est += up
    hole_c = np.repeat(hole[..., None], values.shape[2], axis=2)
    out = np.where(hole_c, est, values).astype(np.float32)
    for _ in range(iters):
        out = np.where(hole_c, cv2.blur(out, (5, 5)).reshape(out.shape), values).astype(np.float32)
    return out


@pytest.mark.parametrize("size", [(240, 432), (540, 960), (135, 241), (37, 5), (3, 3)])
def test_smooth_fill_on_the_holes_box_matches_the_whole_frame(size):
    """Only the box of the hole (or of the pixels read) is computed; every pixel the caller
    reads must be bit for bit what the whole-frame computation gives, at even sizes (the
    finest level resized on a part) and odd ones (resized whole)."""
    rng = np.random.default_rng(sum(size))
    for trial in range(6):
        values = (rng.standard_normal((*size, 2)) * 3).astype(np.float32)
        hole = _blobs(rng, size, noise=0.2 if trial % 2 else 0.0)
        if hole.all() or not hole.any():
            continue
        whole = _smooth_fill_on_the_whole_frame(values, hole)
        assert np.array_equal(smooth_fill(values, hole), whole)
        read = _blobs(rng, size) & hole
        assert np.array_equal(smooth_fill(values, hole, read=read)[read], whole[read])


def test_nearest_outside_on_the_regions_box_matches_the_whole_frame():
    from tsam_cli.flow.validity import _nearest_outside

    rng = np.random.default_rng(5)
    for trial in range(40):
        shape = (int(rng.integers(8, 120)), int(rng.integers(8, 200)))
        region = _blobs(rng, shape, noise=0.1 if trial % 3 == 0 else 0.0)
        if region.all() or not region.any():
            continue
        values = rng.random((*shape, 3)).astype(np.float32)
        assert np.array_equal(nearest_outside(values, region), _nearest_outside(values, region))


@pytest.mark.parametrize("small, full", [((54, 96), (108, 192)), ((45, 80), (60, 107)), ((27, 48), (81, 144)),
                                         ((30, 40), (30, 40))])
def test_paste_back_upscales_the_masks_box_as_the_whole_frame(small, full):
    """Pasting upscales only the mask's box: exact for 2x and 4/3x, the whole frame for 3x."""
    import cv2

    from tsam_cli.core.pipeline import paste_back

    rng = np.random.default_rng(sum(full))
    for trial in range(5):
        done = rng.integers(0, 256, (*small, 3), dtype=np.uint8)
        frame = rng.integers(0, 256, (*full, 3), dtype=np.uint8)
        mask = _blobs(rng, full, n=trial) if trial else np.zeros(full, bool)
        up = cv2.resize(done, full[::-1], interpolation=cv2.INTER_CUBIC) if small != full else done
        out = paste_back(frame, mask, done)
        assert np.array_equal(out, np.where(mask[..., None], up, frame))
        assert out is not frame


@pytest.mark.parametrize("full, small", [((108, 192), (54, 96)), ((216, 384), (54, 96)), ((60, 107), (45, 80)),
                                         ((90, 160), (30, 80))])
def test_reduced_mask_is_a_hole_wherever_a_covered_pixel_is(full, small):
    """Whole blocks are reduced without the float resize; the result is the same as it."""
    import cv2

    from tsam_cli.core.pipeline import _reduce_mask

    rng = np.random.default_rng(sum(full))
    for noise in (0.0, 0.01, 0.3):
        mask = _blobs(rng, full, noise=noise)
        want = cv2.resize(mask.astype(np.float32), small[::-1], interpolation=cv2.INTER_AREA) > 0
        assert np.array_equal(_reduce_mask(mask, small[::-1]), want)


def test_untrusted_checks_eq2_on_the_models_landing_box_as_on_the_whole_frame():
    """Eq. 2 on the measured flows is evaluated only where the model sends pixels into b's hole;
    the result is the whole-frame formula's, pixel for pixel."""
    from tsam_cli.flow.validity import validity
    from tsam_cli.flow.warp import sample

    rng = np.random.default_rng(8)
    for trial in range(12):
        shape = (int(rng.integers(30, 120)), int(rng.integers(30, 200)))
        pan = np.array([rng.normal(0, 4), rng.normal(0, 4)], np.float32)
        raw_ab = (pan + rng.standard_normal((*shape, 2)) * (0.2 + trial % 3)).astype(np.float32)
        raw_ba = (-pan + rng.standard_normal((*shape, 2)) * (0.2 + trial % 3)).astype(np.float32)
        model = np.broadcast_to(pan, (*shape, 2)).astype(np.float32)
        grown_a, grown_b = grow(_blobs(rng, shape, n=2), 6), grow(_blobs(rng, shape, n=2), 6)
        target = grown_b.astype(np.float32)
        want = grown_a | (sample(target, raw_ab) > 0) | (~validity(raw_ab, raw_ba) & (sample(target, model) > 0))
        assert np.array_equal(untrusted(grown_a, raw_ab, grown_b, raw_ba, model), want)
