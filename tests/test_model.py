"""Unit tests for tsam_cli.model: shifts, shift-and-align, gated convs, generator, discriminator."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tsam_cli.model import (
    COMPACT,
    FULL,
    DecoderGatedConv,
    EncoderGatedShiftConv,
    ModelConfig,
    ShiftAlign,
    TemporalPatchDiscriminator,
    TemporalShift,
    TSAMGenerator,
    get_preset,
)

TINY = ModelConfig(name="tiny", stem_width=8, widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), decoder_width=16)


def _tsm_reference(x5: torch.Tensor, fold: int) -> torch.Tensor:
    """Plain TSM written with explicit loops: group A from t+1, group B from t-1, zero ends."""
    b, t, c, h, w = x5.shape
    out = torch.zeros_like(x5)
    for i in range(t):
        if i + 1 < t:
            out[:, i, :fold] = x5[:, i + 1, :fold]
        if i - 1 >= 0:
            out[:, i, fold : 2 * fold] = x5[:, i - 1, fold : 2 * fold]
        out[:, i, 2 * fold :] = x5[:, i, 2 * fold :]
    return out


def _guide(fwd, bwd, v_f=None, v_b=None):
    n = fwd.shape[0]
    ones = fwd.new_ones(n, 1, *fwd.shape[-2:])
    return {"forward": fwd, "backward": bwd,
            "forward_valid": ones if v_f is None else v_f,
            "backward_valid": ones if v_b is None else v_b, "cache": {}}


# --------------------------------------------------------------------------- shifts
def test_temporal_shift_moves_channel_groups():
    torch.manual_seed(0)
    b, t, c, h, w = 2, 4, 8, 3, 5
    x5 = torch.randn(b, t, c, h, w)
    out = TemporalShift(4)(x5.reshape(b * t, c, h, w), t).view(b, t, c, h, w)
    assert torch.equal(out, _tsm_reference(x5, 2))
    # explicit spot checks of the direction (reference fact 31)
    assert torch.equal(out[:, 0, :2], x5[:, 1, :2])
    assert torch.equal(out[:, 3, :2], torch.zeros_like(out[:, 3, :2]))
    assert torch.equal(out[:, 1, 2:4], x5[:, 0, 2:4])
    assert torch.equal(out[:, 0, 2:4], torch.zeros_like(out[:, 0, 2:4]))


@pytest.mark.parametrize("quirks", [False, True])
def test_shift_align_without_flow_is_tsm(quirks):
    torch.manual_seed(1)
    x = torch.randn(6, 16, 4, 4)
    ref = TemporalShift(8)(x, 3)
    assert torch.equal(ShiftAlign(8, quirks)(x, 3, None), ref)


def test_integer_flow_warps_exactly_clean():
    torch.manual_seed(2)
    b, t, c, h, w = 2, 3, 8, 6, 7
    fold = 2
    x5 = torch.randn(b, t, c, h, w)
    n = b * (t - 1)
    fwd = torch.randint(-2, 3, (n, 2, h, w)).float()
    bwd = torch.randint(-2, 3, (n, 2, h, w)).float()
    out = ShiftAlign(4)(x5.reshape(b * t, c, h, w), t, _guide(fwd, bwd)).view(b, t, c, h, w)
    tsm = _tsm_reference(x5, fold)
    expected = tsm.clone()
    for bi in range(b):
        for k in range(t - 1):
            j = bi * (t - 1) + k  # flows are stacked (B*(T-1), ...), clip-major
            for y in range(h):
                for xx in range(w):
                    # group A of frame k <- frame k+1 at p + forward[k](p)
                    sx, sy = xx + int(fwd[j, 0, y, xx]), y + int(fwd[j, 1, y, xx])
                    if 0 <= sx < w and 0 <= sy < h:
                        expected[bi, k, :fold, y, xx] = x5[bi, k + 1, :fold, sy, sx]
                    # group B of frame k+1 <- frame k at p + backward[k](p)
                    sx, sy = xx + int(bwd[j, 0, y, xx]), y + int(bwd[j, 1, y, xx])
                    if 0 <= sx < w and 0 <= sy < h:
                        expected[bi, k + 1, fold : 2 * fold, y, xx] = x5[bi, k, fold : 2 * fold, sy, sx]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_zero_flow_is_identity_clean_and_not_official():
    torch.manual_seed(3)
    x = torch.ones(3, 8, 5, 6)
    zero = torch.zeros(2, 2, 5, 6)
    clean = ShiftAlign(4)(x, 3, _guide(zero, zero))
    torch.testing.assert_close(clean, TemporalShift(4)(x, 3), rtol=0, atol=1e-6)
    # official flow_to_grid / align_corners mismatch: ones -> 0.5 on edges, 0.25 in corners (fact 32)
    off = ShiftAlign(4, official_quirks=True)(x, 3, _guide(zero, zero)).view(1, 3, 8, 5, 6)
    g = off[0, 0, 0]
    assert g[2, 3].item() == pytest.approx(1.0, abs=1e-6)
    assert g[0, 3].item() == pytest.approx(0.5, abs=1e-6)
    assert g[0, 0].item() == pytest.approx(0.25, abs=1e-6)
    assert torch.equal(off[0, 2, :2], torch.zeros_like(off[0, 2, :2]))  # zero end (fact 34)


def test_validity_zero_returns_plain_tsm_and_blends():
    torch.manual_seed(4)
    x = torch.randn(8, 16, 5, 6)  # B=2, T=4
    fwd, bwd = torch.randn(6, 2, 5, 6) * 2, torch.randn(6, 2, 5, 6) * 2
    zeros = torch.zeros(6, 1, 5, 6)
    sa = ShiftAlign(4)
    tsm = TemporalShift(4)(x, 4)
    assert torch.equal(sa(x, 4, _guide(fwd, bwd, zeros, zeros)), tsm)
    # Eq. 4: fractional validity blends linearly between TSM (v=0) and aligned (v=1) features
    full = sa(x, 4, _guide(fwd, bwd))
    quarter = sa(x, 4, _guide(fwd, bwd, zeros + 0.25, zeros + 0.25))
    torch.testing.assert_close(quarter, 0.25 * full + 0.75 * tsm, rtol=1e-5, atol=1e-6)


def test_official_fallback_truncates_fraction():
    torch.manual_seed(5)
    x = torch.rand(3, 8, 4, 4) + 0.1
    fwd = torch.randn(2, 2, 4, 4)
    # validity 0.4 -> official flowmask 0.6 -> int() -> 0 -> the warped features are used
    v = torch.full((2, 1, 4, 4), 0.4)
    sa = ShiftAlign(4, official_quirks=True)
    assert torch.equal(sa(x, 3, _guide(fwd, fwd, v, v)), sa(x, 3, _guide(fwd, fwd)))
    # validity 0 -> flowmask 1 -> frame t keeps its own unshifted channels (fact 33)
    zeros = torch.zeros(2, 1, 4, 4)
    own = sa(x, 3, _guide(fwd, fwd, zeros, zeros)).view(3, 8, 4, 4)
    assert torch.equal(own[:2, :2], x[:2, :2])
    assert torch.equal(own[1:, 2:4], x[1:, 2:4])


# --------------------------------------------------------------------------- gated convs
def test_no_flow_encoder_gated_conv_is_gated_tsm():
    torch.manual_seed(6)
    m = EncoderGatedShiftConv(16, 12, fold_div=8)
    x = torch.randn(6, 16, 5, 5)
    xs = TemporalShift(8)(x, 3)
    ref = torch.sigmoid(F.conv2d(xs, m.gating_conv.weight)) * F.conv2d(xs, m.net.weight)
    torch.testing.assert_close(m(x, 3, None), ref)


def test_no_flow_decoder_gated_conv_gate_sees_unshifted():
    torch.manual_seed(7)
    m = DecoderGatedConv(8, 6, 3, fold_div=4)
    x = torch.randn(6, 8, 5, 5)
    xs = TemporalShift(4)(x, 3)
    gate = torch.sigmoid(F.conv2d(x, m.gatingConv.layer.weight, m.gatingConv.layer.bias, padding=1))
    feat = F.leaky_relu(F.conv2d(xs, m.featureConv.layer.weight, m.featureConv.layer.bias, padding=1), 0.2)
    torch.testing.assert_close(m(x, 3, None), gate * feat)


# --------------------------------------------------------------------------- generator
@pytest.fixture(scope="module")
def tiny_gen():
    torch.manual_seed(8)
    return TSAMGenerator(TINY).eval()


def _inputs(b, t, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, 3, h, w, generator=g)
    masks = (torch.rand(b, t, 1, h, w, generator=g) > 0.7).float()
    flows = {
        "forward": torch.randn(b, t - 1, 2, h, w, generator=g) * 2,
        "backward": torch.randn(b, t - 1, 2, h, w, generator=g) * 2,
        "forward_valid": (torch.rand(b, t - 1, 1, h, w, generator=g) > 0.3).float(),
        "backward_valid": (torch.rand(b, t - 1, 1, h, w, generator=g) > 0.3).float(),
    }
    return frames, masks, flows


@pytest.mark.parametrize("b,t,h,w", [(1, 1, 16, 24), (2, 3, 32, 40), (1, 5, 24, 16)])
def test_generator_keeps_known_pixels(tiny_gen, b, t, h, w):
    frames, masks, flows = _inputs(b, t, h, w, seed=t)
    with torch.inference_mode():
        for fl in (None, flows):
            out = tiny_gen(frames, masks, fl if t > 1 else None)
            assert out.shape == (b, t, 3, h, w)
            known = masks == 0
            assert torch.equal(out.expand_as(frames)[known.expand_as(frames)],
                               frames[known.expand_as(frames)])
            assert out.min() >= 0 and out.max() <= 1


def test_generator_flow_changes_output_and_tuple_form(tiny_gen):
    frames, masks, flows = _inputs(1, 3, 16, 16, seed=11)
    with torch.inference_mode():
        a = tiny_gen(frames, masks, None)
        b = tiny_gen(frames, masks, flows)
        c = tiny_gen(frames, masks, (flows["forward"], flows["backward"],
                                     flows["forward_valid"], flows["backward_valid"]))
    assert not torch.equal(a, b)
    assert torch.equal(b, c)


def test_generator_without_flow_config_ignores_flows():
    torch.manual_seed(9)
    g = TSAMGenerator(TINY.replace(use_flow=False)).eval()
    frames, masks, flows = _inputs(1, 3, 16, 16, seed=12)
    with torch.inference_mode():
        assert torch.equal(g(frames, masks, flows), g(frames, masks, None))


def test_generator_rejects_bad_sizes(tiny_gen):
    frames, masks, _ = _inputs(1, 2, 16, 24)
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_gen(frames[..., :12, :], masks[..., :12, :])
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_gen(frames[..., :20], masks[..., :20])
    with pytest.raises(ValueError, match="masks"):
        tiny_gen(frames, masks[:, :1])
    with pytest.raises(ValueError, match="flow"):
        tiny_gen(frames, masks, {"forward": torch.zeros(1, 2, 2, 16, 24),
                                 "backward": torch.zeros(1, 1, 2, 16, 24)})


def test_full_parameter_count_and_keys():
    g = TSAMGenerator(FULL)
    assert sum(p.numel() for p in g.parameters()) == 31_661_510
    assert sum(p.numel() for p in g.encoder.parameters()) == 27_843_776
    assert sum(p.numel() for p in g.decoder.parameters()) == 3_817_734
    assert len(g.state_dict()) == 408 - 48  # official keys minus SN aliases / u,v buffers


def test_compact_is_small_and_runs():
    g = TSAMGenerator(COMPACT).eval()
    assert sum(p.numel() for p in g.parameters()) < 1_000_000
    frames, masks, flows = _inputs(1, 2, 16, 16, seed=3)
    with torch.inference_mode():
        assert g(frames, masks, flows).shape == frames.shape


def test_config_roundtrip_and_validation():
    for cfg in (FULL, COMPACT, TINY.replace(official_quirks=True)):
        assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    assert get_preset("compact") is COMPACT
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"name": "x", "bogus": 1})
    with pytest.raises(ValueError):
        ModelConfig(decoder_width=100)
    with pytest.raises(ValueError):
        get_preset("huge")


# --------------------------------------------------------------------------- discriminator
def test_discriminator_shapes():
    torch.manual_seed(10)
    d = TemporalPatchDiscriminator().eval()
    assert sum(p.numel() for p in d.parameters()) == 5_948_416
    with torch.inference_mode():
        out = d(torch.rand(1, 2, 5, 64, 96))
    # conv1 pad 1: 64 -> 31 -> 16 -> 8 -> 4 -> 2 -> 1 ; 96 -> 47 -> 24 -> 12 -> 6 -> 3 -> 2
    assert out.shape == (1, 2, 256, 1, 2)
    assert out.min() > 0 and out.max() < 1
    d_sn = TemporalPatchDiscriminator(nf=8, use_sigmoid=False, spectral_norm=True).eval()
    keys = d_sn.state_dict().keys()
    assert "conv1.featureConv.layer.weight_orig" in keys and "conv6.featureConv.layer.weight" in keys
    assert d_sn(torch.rand(2, 3, 5, 32, 32)).shape == (2, 3, 32, 1, 1)
