"""Speed of the learned path without changing what is kept: the generator only where holes are
left (spans with context), no lookahead predictions, and the decoder shift built for the kept
frames only (bit-identical to the stacked shift). Masks: True = hole."""

import numpy as np
import pytest
import torch
from conftest import translating_video

from tsam_cli.core.complete import GeneratorFill, Window, complete_window
from tsam_cli.core.model_fill import ModelRunner, generator_spans, window_starts
from tsam_cli.model import TSAMGenerator, get_preset
from tsam_cli.model.tsam_conv import DecoderGatedConv, ShiftAlign
from tsam_cli.ui import NullReporter


class Record(torch.nn.Module):
    """Stand-in generator: returns its input frames, records each window's length."""

    def __init__(self):
        super().__init__()
        self.lengths = []

    def forward(self, frames, masks, flows=None):
        self.lengths.append(frames.shape[1])
        return frames


def _need(T, frames):
    need = np.zeros(T, bool)
    need[list(frames)] = True
    return need


def test_generator_spans():
    assert generator_spans(np.zeros(7, bool), 1) == []
    assert generator_spans(np.ones(7, bool), 1) == [(0, 7)]  # dense: the whole clip, as before
    # the bmx-trees 24-frame pattern: frames 0-5 and 9-13 keep holes after propagation
    bmx = _need(24, [*range(6), *range(9, 14)])
    assert generator_spans(bmx, 1) == [(0, 7), (8, 15)]
    assert generator_spans(bmx, 2) == [(0, 16)]  # gap of 3 <= 2 * 2: one span
    assert generator_spans(_need(10, [2, 5]), 1) == [(1, 7)]  # gap of 2 <= 2: merged
    assert generator_spans(_need(10, [2, 6]), 1) == [(1, 4), (5, 8)]
    assert generator_spans(_need(10, [0, 9]), 0) == [(0, 1), (9, 10)]


def test_runner_runs_only_needed_frames_plus_context():
    T, h, w = 13, 24, 40
    v = translating_video(T=T, h=h, w=w)
    holes = np.zeros((T, h, w), bool)
    holes[[0, 12], 4:12, 8:20] = True
    rec = Record()
    out = ModelRunner(rec, "cpu", length=5, stride=3)(v, holes, [None] * (T - 1))
    assert np.array_equal(out, v)
    assert rec.lengths == [2, 2]  # frames 0-1 and 11-12; before: windows of 5 at 0 and 8
    rec2 = Record()
    holes[:, 4:12, 8:20] = True  # every frame: the plain sliding windows
    ModelRunner(rec2, "cpu", length=5, stride=3)(v, holes, [None] * (T - 1))
    assert rec2.lengths == [5] * len(window_starts(T, 5, 3))


def test_skipped_frames_do_not_change_a_window_that_is_run():
    """Frames 3-5 hold holes: the span is frames 2-6, one window; their prediction equals a
    run on exactly those 5 frames. Frames that need none are returned as given."""
    torch.manual_seed(0)
    g = TSAMGenerator(get_preset("compact")).eval()
    T, h, w = 10, 32, 48
    v = translating_video(T=T, h=h, w=w)
    holes = np.zeros((T, h, w), bool)
    holes[3:6, 8:20, 10:30] = True
    r = ModelRunner(g, "cpu", length=12, stride=8)
    got = r.predict(v, holes, [None] * (T - 1))
    alone = ModelRunner(g, "cpu", length=5, stride=5).predict(v[2:7], holes[2:7], [None] * 4)
    assert np.array_equal(got[3:6], alone[1:4])
    others = [0, 1, 2, 6, 7, 8, 9]
    assert np.array_equal(got[others], v[others].astype(np.float32) / 255.0)
    # ``need`` drops frame 5 (a lookahead frame): span 2-5, frame 5 keeps its input pixels
    part = r(v, holes, [None] * (T - 1), need=_need(T, [3, 4]))
    assert np.array_equal(part[5], v[5]) and not np.array_equal(part[3], v[3])


def test_complete_does_not_predict_lookahead_frames():
    T, h, w = 8, 16, 24
    v = translating_video(T=T, h=h, w=w)
    holes = np.zeros((T, h, w), bool)
    holes[:, 4:10, 6:14] = True
    rec = Record()
    fill = GeneratorFill(ModelRunner(rec, "cpu", length=12, stride=8, use_flow=False))
    complete_window(Window(v, holes, [None] * (T - 1), None, n_keep=5), fill, False, NullReporter())
    assert rec.lengths == [6]  # frames 0-4 kept, frame 5 as context; 6 and 7 not run
    rec.lengths.clear()
    complete_window(Window(v, holes, [None] * (T - 1), None, n_keep=T), fill, False, NullReporter())
    assert rec.lengths == [8]


def _guide(t, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    return {"forward": torch.randn(t - 1, 2, h, w, generator=gen) * 2,
            "backward": torch.randn(t - 1, 2, h, w, generator=gen) * 2,
            "forward_valid": (torch.rand(t - 1, 1, h, w, generator=gen) > 0.3).float(),
            "backward_valid": (torch.rand(t - 1, 1, h, w, generator=gen) > 0.3).float(), "cache": {}}


@pytest.mark.parametrize("quirks", [True, False])
@pytest.mark.parametrize("with_flow", [True, False])
def test_shift_of_kept_frames_is_bit_identical(quirks, with_flow):
    t, c, h, w = 5, 16, 8, 12
    x = torch.randn(t, c, h, w, generator=torch.Generator().manual_seed(1))
    x[2, :4, 2:5, 3:7] = 0.0  # a warped group that sums to zero: the official zero test fires
    flows = _guide(t, h, w, 2) if with_flow else None
    shift = ShiftAlign(4, quirks)
    whole = shift(x, t, flows)
    frames = [x[f : f + 1] for f in range(t)]
    for a in range(t):
        for b in range(a + 1, t + 1):
            assert torch.equal(shift.shift_frames(frames, flows, a, b), whole[a:b]), (a, b)


@pytest.mark.parametrize("quirks", [True, False])
def test_gated_conv_on_kept_frames_is_bit_identical(quirks):
    torch.manual_seed(0)
    conv = DecoderGatedConv(16, 8, 3, fold_div=4, official_quirks=quirks).eval()
    t, h, w = 4, 8, 12
    x = torch.randn(t, 16, h, w)
    flows = _guide(t, h, w, 3)
    frames = [x[f : f + 1] for f in range(t)]
    with torch.inference_mode():
        for a, b in [(0, 1), (1, 3), (3, 4), (0, 4)]:
            want = conv(x, t, flows, keep=slice(a, b))
            assert torch.equal(conv.forward_frames(frames, flows, a, b), want), (a, b)
    got = conv.forward_frames(frames, flows, 1, 3)  # autograd on: the stacked path, no in-place ops
    assert got.requires_grad and torch.allclose(got, conv(x, t, flows, keep=slice(1, 3)))
