"""DIS flow on tiny and short-and-wide frames: no segfault, no cv2.error, sensible flow.

Unpadded, OpenCV's DIS segfaults on e.g. 96x12 frames (see the notes in ``tsam_cli/flow.py``),
which would kill pytest itself, so the size sweep runs in a child process: a crash there
fails the test with the last size printed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, translating_video

from tsam_cli.flow.estimate import dis_min_size, make_estimator, pad_to_min_size

PRESETS = ["dis", "dis-fast", "dis-ultrafast"]
#: (H, W): 1x1, one-pixel strips, the reported crashes (96x12, 40x12, 200x13 as W x H), their
#: transposes, sizes that crash the fast presets unpadded (20x200, 30x400) and a wide strip.
SIZES = [(1, 1), (3, 200), (200, 3), (12, 96), (12, 40), (13, 200), (96, 12), (16, 16),
         (7, 7), (8, 11), (20, 200), (30, 400), (14, 1024), (24, 4096)]

CHILD = r"""
import json, sys
import numpy as np
from tsam_cli.flow.estimate import make_estimator
rng = np.random.default_rng(0)
for name in json.loads(sys.argv[1]):
    est = make_estimator(name)
    for h, w in json.loads(sys.argv[2]):
        print("running", name, h, w, file=sys.stderr, flush=True)
        a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        b = np.roll(a, 1, axis=1)
        f, g = est(a, b), est(b, a)
        print(json.dumps([name, h, w, list(f.shape), list(g.shape), str(f.dtype),
                          bool(np.isfinite(f).all() and np.isfinite(g).all())]), flush=True)
"""


@pytest.mark.parametrize("name", PRESETS)
def test_small_sizes_in_subprocess(name):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([name]), json.dumps(SIZES)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    last = (proc.stderr.strip().splitlines() or ["(nothing)"])[-1]
    assert proc.returncode == 0, f"{name}: exit {proc.returncode} at '{last}'\n{proc.stderr[-2000:]}"
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(h, w) for _, h, w, *_ in rows] == SIZES
    for _, h, w, fshape, gshape, dtype, finite in rows:
        assert fshape == gshape == [h, w, 2] and dtype == "float32" and finite, (h, w)


def test_min_size_and_padding():
    assert dis_min_size(8, 1) == (20, 57)  # medium: normal path needs short >= 16, long >= 45.3
    assert dis_min_size(8, 2) == (40, 114)  # fast / ultrafast: short >= 32, long >= 90.5
    img = np.arange(12 * 96, dtype=np.uint8).reshape(12, 96)
    out = pad_to_min_size(img, 40, 114)
    assert out.shape == (40, 114)
    assert np.array_equal(out[:12, :96], img)  # top-left is untouched: same coordinates
    assert np.array_equal(out[12:, :96], np.repeat(img[-1:], 28, axis=0))  # edge replicated
    big = np.zeros((64, 200, 3), np.uint8)
    assert pad_to_min_size(big, 40, 114) is big  # large enough: no copy
    assert pad_to_min_size(np.zeros((200, 14), np.uint8), 40, 114).shape == (200, 40)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("h, w, dx, dy", [(14, 200, 2, 1), (12, 96, 1, 0), (200, 14, 0, 2)])
def test_padded_flow_is_still_right(name, h, w, dx, dy):
    """A texture translating by (dx, dy) px/frame: true flow t -> t+1 is (-dx, -dy), and
    (dx, dy) back. "Roughly": fast/ultrafast work at 1/4 resolution, so on a 14 px strip their
    vertical component is off by up to ~0.6 px (measured 1.43..1.67 for dy = 1 backwards)."""
    v = translating_video(T=2, h=h, w=w, dx=dx, dy=dy, seed=3)
    est = make_estimator(name)
    for a, b, truth in [(0, 1, [-dx, -dy]), (1, 0, [dx, dy])]:
        flow = est(v[a], v[b])
        assert flow.shape == (h, w, 2) and flow.dtype == np.float32
        inner = flow[2:-2, 4:-4] if w > h else flow[4:-4, 2:-2]
        median = np.median(inner.reshape(-1, 2), axis=0)
        assert np.allclose(median, truth, atol=0.8), (a, b, median)
        assert np.abs(inner - truth).mean() < 0.6, (a, b)
        if name == "dis":  # medium works at 1/2 resolution: much tighter
            assert np.allclose(median, truth, atol=0.1), (a, b, median)
