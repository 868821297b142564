"""Flow, flow completion, Eq. 2 validity and propagation on synthetic videos with known motion."""

import numpy as np
import pytest
from conftest import translating_video

from tsam_cli.core.propagate import FILLER_HOPS, TeleaFiller, propagate
from tsam_cli.flow.complete import smooth_fill
from tsam_cli.flow.estimate import DISFlow
from tsam_cli.flow.pair import pair_flow
from tsam_cli.flow.validity import validity
from tsam_cli.flow.warp import in_bounds, sample
from tsam_cli.metrics.psnr import psnr_pixels


def psnr(a, b, where):
    return psnr_pixels(b, a, where)


def test_dis_recovers_known_translation():
    v = translating_video(T=2, h=96, w=128, dx=3, dy=1)
    flow = DISFlow()(v[0], v[1])
    inner = flow[16:-16, 16:-16]
    assert np.allclose(np.median(inner.reshape(-1, 2), axis=0), [-3, -1], atol=0.1)


def test_smooth_fill_keeps_known_and_interpolates():
    h, w = 40, 60
    xs = np.tile(np.linspace(0, 10, w, dtype=np.float32), (h, 1))
    field = np.stack([xs, np.full((h, w), 5.0, np.float32)], axis=2)
    hole = np.zeros((h, w), bool)
    hole[10:30, 20:40] = True
    damaged = field.copy()
    damaged[hole] = 1000.0  # garbage inside the hole must not leak out
    filled = smooth_fill(damaged, hole)
    assert np.array_equal(filled[~hole], field[~hole])
    assert np.allclose(filled[hole][:, 1], 5.0, atol=1e-3)  # a constant stays constant
    assert np.abs(filled[hole][:, 0] - field[hole][:, 0]).max() < 1.5  # a ramp stays close to the ramp
    assert np.abs(np.diff(filled[..., 0], axis=1))[hole[:, 1:]].max() < 1.0  # smooth, no jumps


def test_validity_eq2():
    h, w = 30, 40
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = 2.0
    bwd = -fwd.copy()
    v = validity(fwd, bwd, delta=1.0)
    assert v[:, : w - 2].all() and not v[:, w - 2 :].any()  # lands outside the frame: invalid
    bad = bwd.copy()
    bad[10:20, 10:20] = (3.0, 0.0)  # backward flow disagrees there
    v2 = validity(fwd, bad, delta=1.0)
    assert not v2[10:20, 8:18].any()
    assert v2[:5, : w - 2].all()
    assert in_bounds(fwd)[:, : w - 2].all()


def test_sample_integer_shift_is_exact():
    img = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2
    out = sample(img, flow)
    assert np.array_equal(out[2:, :37], img[:-2, 3:])


@pytest.mark.parametrize("dx,dy", [(2, 1), (3, 0), (1, 2)])
def test_propagation_recovers_translating_texture(dx, dy):
    T, h, w = 12, 72, 112
    v = translating_video(T=T, h=h, w=w, dx=dx, dy=dy, seed=dx + 7 * dy)
    holes = np.zeros((T, h, w), bool)
    damaged = v.copy()
    obj = translating_video(T=1, h=24, w=28, seed=99)[0]
    for t in range(T):  # an object (its own texture) moving right by 2 px/frame: the hole
        holes[t, 24:48, 30 + 2 * t : 58 + 2 * t] = True
        damaged[t, 24:48, 30 + 2 * t : 58 + 2 * t] = obj
    est = DISFlow()
    flows = [pair_flow(est, damaged[t], damaged[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    out, hops, unfilled = propagate(damaged, holes, flows, TeleaFiller())
    assert np.array_equal(out[~holes], v[~holes])  # known pixels never change
    assert not unfilled.any()
    assert (hops[holes] < FILLER_HOPS).mean() > 0.9  # most came from other frames
    assert psnr(out, v, holes) > 35.0
    # and far better than filling each frame alone
    telea = np.stack([TeleaFiller()(damaged[t], holes[t]) for t in range(T)])
    assert psnr(out, v, holes) > psnr(telea, v, holes) + 10


def test_static_hole_static_video_goes_to_filler():
    T, h, w = 5, 40, 60
    v = np.repeat(translating_video(T=1, h=h, w=w)[:1], T, axis=0)
    holes = np.zeros((T, h, w), bool)
    holes[:, 10:20, 10:30] = True
    est = DISFlow()
    flows = [pair_flow(est, v[t], v[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    out, hops, unfilled = propagate(v, holes, flows, filler=None)
    assert unfilled[holes].all()  # nothing to copy from: left to the filler
    out2, hops2, unfilled2 = propagate(v, holes, flows, filler=TeleaFiller())
    assert not unfilled2.any()
    assert (hops2[0][holes[0]] == FILLER_HOPS).all()
    # frames after the first carry the first frame's fill forward (no re-invention per frame)
    assert np.abs(out2[1:].astype(int) - out2[:1].astype(int))[holes[1:]].max() <= 1


def test_propagate_rejects_wrong_flow_count():
    v = translating_video(T=3)
    with pytest.raises(ValueError):
        propagate(v, np.zeros(v.shape[:3], bool), [])


def _drifting_video(T: int, h: int, w: int, speed: float) -> np.ndarray:
    """A texture drifting right by ``speed`` px/frame (sub-pixel: every frame is resampled)."""
    import cv2
    from conftest import texture

    big = texture(h, w + 8, seed=11)
    return np.stack([cv2.warpAffine(big, np.float32([[1, 0, speed * t], [0, 1, 0]]), (w, h),
                                    flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for t in range(T)])


class _Checker:
    """A 'texture filler' that paints a 2 px checkerboard: maximal detail to keep or lose."""

    name = "checker"

    def __init__(self):
        self.calls = 0

    def __call__(self, image, hole):
        self.calls += 1
        yy, xx = np.mgrid[: hole.shape[0], : hole.shape[1]]
        out = image.copy()
        out[hole] = np.where((((yy // 2) + (xx // 2)) % 2 == 0)[..., None], 230, 20)[hole]
        return out


def test_carried_filler_content_stays_sharp_under_subpixel_motion():
    """The forward sweep carries a fill to the next frames; with 0.4 px/frame motion a
    resampled copy would blur at every frame. It is sampled from where it was made instead."""
    import cv2

    T, h, w = 12, 64, 96
    v = _drifting_video(T, h, w, 0.4)
    holes = np.zeros((T, h, w), bool)
    holes[:, 16:48, 30:66] = True
    flows = [pair_flow(DISFlow(), v[t], v[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    filler = _Checker()
    out, hops, _ = propagate(v, holes, flows, filler)
    core = np.zeros((h, w), bool)
    core[24:40, 38:58] = True

    def detail(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.abs(cv2.Laplacian(g, cv2.CV_32F))[core].mean()

    assert (hops[-1][core] > FILLER_HOPS).all()  # the last frame's core is carried filler content
    assert filler.calls <= 3  # made once (plus slivers), not re-made every frame
    assert detail(out[-1]) > 0.7 * detail(out[0])


def test_keyframe_filler_spends_its_budget_on_large_regions_only():
    from tsam_cli.core.propagate import KeyframeFiller

    tex, fast = _Checker(), _Checker()
    kf = KeyframeFiller(tex, fast, per_window=1, min_area=100)
    img = np.zeros((40, 40, 3), np.uint8)
    small, large = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    small[:5, :5], large[:20, :20] = True, True
    kf(img, small)
    kf(img, large)
    kf(img, large)  # budget spent: fast filler
    assert (tex.calls, fast.calls) == (1, 2)
    kf.new_window()
    kf(img, large)
    assert tex.calls == 2


def test_make_filler_names():
    from tsam_cli.core.propagate import KeyframeFiller, make_filler

    assert isinstance(make_filler("telea"), TeleaFiller)
    assert isinstance(make_filler("texture"), KeyframeFiller)


def test_both_sweeps_blend_by_hops_with_the_forward_weight():
    """A hole pixel reached from the future (1 hop, colour 90) and from the completed past frame
    (1 hop, colour 0) gets ``(FORWARD_WEIGHT * 0 + 90) / (FORWARD_WEIGHT + 1)``: the past frame
    counts less than the backward sweep (docs/benchmarks.md: thin moving holes' flicker 1.31x -> 1.28x the floor)."""
    from tsam_cli.core.propagate import FORWARD_WEIGHT
    from tsam_cli.flow.pair import PairFlow

    h, w = 12, 16
    frames = np.zeros((3, h, w, 3), np.uint8)
    frames[2] = 90
    holes = np.zeros((3, h, w), bool)
    holes[1, 4:8, 5:10] = True
    zero, ones = np.zeros((h, w, 2), np.float32), np.ones((h, w), bool)
    flows = [PairFlow(zero, zero, ones, ones), PairFlow(zero, zero, ones, ones)]
    out, hops, unfilled = propagate(frames, holes, flows, filler=None)
    expected = round(90 / (FORWARD_WEIGHT + 1))
    assert 0 < FORWARD_WEIGHT < 1
    assert np.all(out[1][holes[1]] == expected)
    assert np.all(hops[1][holes[1]] == 1) and not unfilled.any()


def test_long_chains_deep_in_a_hole_are_sampled_once_and_stay_sharp(monkeypatch):
    """A texture drifting 0.4 px/frame under a hole that only the last frame lacks: frame 0's hole
    is reached through 15 hops. Re-sampled bilinearly at every hop it blurs; followed back to the
    last frame and sampled once (deep inside the hole) it keeps its detail."""
    import cv2

    import tsam_cli.core.propagate as prop

    T, h, w = 16, 72, 96
    v = _drifting_video(T, h, w, 0.4)
    holes = np.zeros((T, h, w), bool)
    holes[:-1, 12:60, 24:72] = True
    flows = [pair_flow(DISFlow(), v[t], v[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    core = np.zeros((h, w), bool)
    core[24:48, 36:60] = True  # >= 12 px from the hole's border: deeper than FOLLOW_DEPTH

    def detail(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.abs(cv2.Laplacian(g, cv2.CV_32F))[core].mean()

    out, hops, unfilled = propagate(v, holes, flows, filler=None)
    monkeypatch.setattr(prop, "FOLLOW_DEPTH", 1e9)  # nothing is followed: bilinear at every hop
    blurred, _, _ = propagate(v, holes, flows, filler=None)
    assert not unfilled.any() and (hops[0][core] >= prop.FOLLOW_HOPS).all()
    assert np.array_equal(out[~holes], v[~holes])
    assert detail(out[0]) > 0.8 * detail(v[0])
    assert detail(out[0]) > 1.3 * detail(blurred[0])
    assert psnr(out[0], v[0], core) > psnr(blurred[0], v[0], core)


def test_thin_holes_keep_per_hop_resampling(monkeypatch):
    """A 12 px wide hole has no pixel FOLLOW_DEPTH px from its border: nothing is followed there
    (following made thin holes flicker, docs/benchmarks.md), so the result is exactly the
    per-hop result."""
    import tsam_cli.core.propagate as prop

    T, h, w = 10, 64, 96
    v = _drifting_video(T, h, w, 0.4)
    holes = np.zeros((T, h, w), bool)
    holes[:-1, 10:54, 40:52] = True
    flows = [pair_flow(DISFlow(), v[t], v[t + 1], holes[t], holes[t + 1]) for t in range(T - 1)]
    out, hops, _ = propagate(v, holes, flows, filler=None)
    assert hops[0][holes[0]].max() >= prop.FOLLOW_HOPS  # long chains exist, but not deep ones
    monkeypatch.setattr(prop, "FOLLOW_DEPTH", 1e9)
    per_hop, _, _ = propagate(v, holes, flows, filler=None)
    assert np.array_equal(out, per_hop)


def test_samplers_take_no_positions():
    """A root whose footprint is nowhere available leaves nothing to sample: no cv2 error."""
    from tsam_cli.core.propagate import _sample_cubic, _sample_linear

    img = np.zeros((8, 8, 3), np.float32)
    assert _sample_cubic(img, np.zeros((0, 2), np.float32)).shape == (0, 3)
    assert _sample_linear(img[..., 0], np.zeros((0, 2), np.float32)).shape == (0,)


def test_a_root_with_no_colour_at_the_chained_position_keeps_the_one_hop_colour():
    """The chain of frame 1's hole leads into frame 2 where frame 2 has no colour (its own
    unreached hole): frame 0 keeps the one-hop colour and its chain restarts at frame 1."""
    from tsam_cli.core.propagate import _Roots

    T, h, w = 3, 16, 16
    holes = np.zeros((T, h, w), bool)
    holes[:2, 4:12, 4:12] = True
    holes[2, 4:12, 4:12] = True  # frame 2: never reached (last frame)
    roots = _Roots(holes)
    roots.frame = np.where(holes[1], 2, 1).astype(np.int32)  # frame 1's hole "came from" frame 2 ...
    roots.xy = np.zeros((h, w, 2), np.float32)
    roots.xy[..., 0], roots.xy[..., 1] = 8.0, 8.0  # ... at its centre, where frame 2 has nothing
    images = np.zeros((T, h, w, 3), np.float32)
    images[2] = 200.0
    vals = np.full((h, w, 3), 50.0, np.float32)  # the one-hop colours
    ok = holes[0].copy()
    roots.trace(0, np.zeros((h, w, 2), np.float32), ok, ok, vals, lambda k: (images[k], ~holes[k]))
    assert np.all(vals == 50.0)
    assert np.all(roots.frame[ok] == 1)


def test_samplers_take_more_positions_than_remap_has_rows():
    """cv2.remap refuses maps of 32767 rows or more: a region that large (a wide outpainted
    border, a big hole at 1080p) is sampled, each point exactly as one at a time would be."""
    import cv2

    from tsam_cli.core.propagate import _sample_cubic, _sample_linear

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    xy = rng.uniform(-2, 82, (40001, 2)).astype(np.float32)
    got = _sample_cubic(img, xy)
    assert got.shape == (40001, 3)
    for i in (0, 4095, 4096, 32766, 32767, 40000):  # row ends, the old limit, the padded tail
        one = cv2.remap(img, xy[i:i + 1, :1].reshape(1, 1), xy[i:i + 1, 1:].reshape(1, 1), cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(got[i], one.reshape(3))
    grey = img[..., 0].astype(np.float32)
    lin = _sample_linear(grey, xy)
    assert lin.shape == (40001,)
    ref = cv2.remap(grey, xy[:, :1].reshape(-1, 1)[:30000], xy[:, 1:].reshape(-1, 1)[:30000], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0).ravel()
    assert np.array_equal(lin[:30000], ref)


def _window_with_small_holes(kind: str, T: int = 8, H: int = 150, W: int = 220):
    """A window whose holes cover a small part of the frame, and a completed frame before it.

    ``noisy``: a blurred random texture, box holes wandering in the middle, noisy flows (std 6 px)
    with random validity. ``pan``: a texture panning ~5 px a frame with matching sub-pixel flows
    and a still 50x90 hole, so chains run through the hole for several frames, are followed to
    their roots, and leave it across the box's edge (where the box's lookups take over)."""
    import cv2

    from tsam_cli.flow.pair import PairFlow

    r = np.random.default_rng(1)
    holes = np.zeros((T, H, W), bool)
    pf = r.normal(0, 5, (H, W, 2)).astype(np.float32)
    prev = (r.integers(0, 256, (H, W, 3), dtype=np.uint8), r.integers(0, 5, (H, W)).astype(np.float32),
            PairFlow(pf, -pf, r.random((H, W)) > 0.2, r.random((H, W)) > 0.2))
    if kind == "pan":
        frames = translating_video(T, H, W, dx=5, dy=1, seed=3)
        holes[:, 50:100, 65:155] = True
        fwd = np.broadcast_to(np.array([-5.3, -1.2], np.float32), (H, W, 2))
        ones = np.ones((H, W), bool)
        return frames, holes, [PairFlow(fwd, -fwd, ones, ones) for _ in range(T - 1)], prev
    base = cv2.GaussianBlur(r.integers(0, 256, (H + 40, W + 40, 3), dtype=np.uint8), (0, 0), 2)
    frames = np.stack([base[t:t + H, 2 * t:2 * t + W] for t in range(T)])
    for t in range(T):
        cy, cx = r.integers(60, 90), r.integers(80, 140)
        holes[t, cy - 18:cy + 18, cx - 26:cx + 26] = True
    flows = []
    for _ in range(T - 1):
        fwd = (r.normal(0, 6, (H, W, 2)) + [2.0, 1.0]).astype(np.float32)
        bwd = (-fwd + r.normal(0, 0.3, (H, W, 2))).astype(np.float32)
        flows.append(PairFlow(fwd, bwd, r.random((H, W)) > 0.1, r.random((H, W)) > 0.1))
    return frames, holes, flows, prev


@pytest.mark.parametrize("kind", ["noisy", "pan"])
@pytest.mark.parametrize("filler", ["none", "telea", "texture"])
def test_computing_on_the_holes_box_gives_the_whole_frame_result(monkeypatch, filler, kind):
    """Propagation computes only the box around the window's holes (sources stay whole frames):
    the result must be bit for bit the one of computing every pixel of the frame."""
    import tsam_cli.core.propagate as prop

    frames, holes, flows, prev = _window_with_small_holes(kind)
    make = {"none": lambda: None, "telea": TeleaFiller, "texture": lambda: prop.make_filler("texture")}[filler]
    box = prop._Box.around(holes)
    assert (box.y1 - box.y0) * (box.x1 - box.x0) < 0.5 * holes[0].size  # a real crop of the frame
    small = propagate(frames, holes, flows, make(), prev=prev)
    monkeypatch.setattr(prop, "BOX_MARGIN", 10**6)  # the box becomes the whole frame
    assert prop._Box.around(holes) == prop._Box(0, 150, 0, 220, 150, 220)
    whole = propagate(frames, holes, flows, make(), prev=prev)
    for a, b in zip(small, whole, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (small[1] >= prop.FOLLOW_HOPS).any()  # chains long enough to be followed to their roots


def _filler_window(hole_at: int, band: tuple[int, int], linked: bool = True):
    """Two 20x30 frames moving 2 px to the right, grey 100; frame ``hole_at`` has a hole (rows
    5-14, columns 8-19) no valid flow leaves (the filler fills it), the other frame a column band
    of 200 at columns ``band``. ``linked``: the pair's flow is valid outside the hole (False: a
    shot cut)."""
    from tsam_cli.flow.pair import PairFlow

    frames = np.full((2, 20, 30, 3), 100, np.uint8)
    frames[1 - hole_at, :, band[0]:band[1]] = 200
    holes = np.zeros((2, 20, 30), bool)
    holes[hole_at, 5:15, 8:20] = True
    fwd = np.zeros((20, 30, 2), np.float32)
    fwd[..., 0] = 2.0
    valid = ~holes[hole_at] if linked else np.zeros((20, 30), bool)
    return frames, holes, [PairFlow(fwd, -fwd, valid.copy(), valid.copy())]


class _Flat:
    """A filler that paints every hole pixel one grey level."""

    name = "flat"

    def __init__(self, level: int) -> None:
        self.level = level

    def __call__(self, image, hole):
        out = image.copy()
        out[hole] = self.level
        return out


#: (frame with the hole, the other frame's band of 200, the hole's columns it lands on, weight):
#: the last frame is steadied by the one before it, the first by the one after it
_NEIGHBOURS = [(1, (6, 10), (8, 12), "FILLER_PAST_WEIGHT"), (0, (14, 18), (12, 16), "FILLER_FUTURE_WEIGHT")]


@pytest.mark.parametrize("hole_at,band,lands,weight", _NEIGHBOURS)
def test_the_filler_is_steadied_by_a_neighbouring_frame_where_its_colour_is_close(hole_at, band, lands, weight):
    from tsam_cli.core import propagate as prop

    frames, holes, flows = _filler_window(hole_at, band)
    out, hops, _ = propagate(frames, holes, flows, _Flat(130))
    w = getattr(prop, weight)
    hole = holes[hole_at]
    assert (hops[hole_at][hole] == FILLER_HOPS).all()
    # the neighbour seen along the flow: grey 100 (30 levels from the fill: blended), except its
    # band of 200 (70 levels away, another surface: the fill stays)
    on_band = np.zeros(30, bool)
    on_band[lands[0]:lands[1]] = True
    in_hole = out[hole_at, 5:15, 8:20]
    assert (in_hole[:, ~on_band[8:20]] == round(w * 100 + (1 - w) * 130)).all()
    assert (in_hole[:, on_band[8:20]] == 130).all()
    assert (out[:, ~hole] == frames[:, ~hole]).all() and (out[1 - hole_at] == frames[1 - hole_at]).all()


@pytest.mark.parametrize("hole_at,band,lands,weight", _NEIGHBOURS)
def test_the_filler_is_not_steadied_across_a_cut(hole_at, band, lands, weight):
    frames, holes, flows = _filler_window(hole_at, band, linked=False)
    out, _, _ = propagate(frames, holes, flows, _Flat(130))
    assert (out[hole_at][holes[hole_at]] == 130).all()


def test_propagated_pixels_are_not_blended_with_the_next_frame(monkeypatch):
    """Only the filler's colours are steadied from the future: a colour chains brought (here the
    blend of frame 0's 100 and frame 2's 160) stays what the chains gave."""
    from tsam_cli.core import propagate as prop
    from tsam_cli.flow.pair import PairFlow

    frames = np.full((3, 20, 30, 3), 100, np.uint8)
    frames[2] = 160
    holes = np.zeros((3, 20, 30), bool)
    holes[1, 5:15, 8:20] = True
    zero = np.zeros((20, 30, 2), np.float32)
    ok = np.ones((20, 30), bool)
    flows = [PairFlow(zero, zero, ok.copy(), ok.copy()), PairFlow(zero, zero, ok.copy(), ok.copy())]
    out, hops, _ = propagate(frames, holes, flows, _Flat(130))
    assert (hops[1][holes[1]] < FILLER_HOPS).all()
    monkeypatch.setattr(prop, "FILLER_FUTURE_WEIGHT", 0.0)
    unblended, _, _ = propagate(frames, holes, flows, _Flat(130))
    assert (out == unblended).all()
    assert (out[1][holes[1]] != 160).all()  # a blend of both chains, not the next frame's colour
