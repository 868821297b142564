"""Shot cuts (docs/shot-cuts.md): detected from colour + flow, and nothing propagates across them."""

from __future__ import annotations

import numpy as np
from conftest import texture, translating_video, write_pngs

from tsam_cli.core.shots import CUT_THRESHOLD, cut_score, is_cut
from tsam_cli.flow.estimate import DISFlow
from tsam_cli.flow.pair import pair_flow


def _tinted(frames: np.ndarray, rgb) -> np.ndarray:
    """Another 'shot': the texture recoloured, so colour statistics differ a lot."""
    return np.clip(frames.astype(np.float32) * 0.5 + np.array(rgb, np.float32) * 0.5, 0, 255).astype(np.uint8)


def _flow_valid(a, b, hole):
    return pair_flow(DISFlow(), a, b, hole, hole).valid_f


def test_cut_between_unrelated_frames_is_detected():
    a = texture(120, 200, seed=1)
    b = _tinted(texture(120, 200, seed=2)[None], (20, 200, 60))[0]
    hole = np.zeros(a.shape[:2], bool)
    assert cut_score(a, b, hole, hole) > CUT_THRESHOLD
    assert is_cut(a, b, hole, hole, _flow_valid(a, b, hole))


def test_fast_motion_within_a_shot_is_not_a_cut():
    v = translating_video(T=2, h=72, w=112, dx=6, dy=3, seed=3)  # 6.7 px/frame pan, same scene
    hole = np.zeros(v.shape[1:3], bool)
    assert not is_cut(v[0], v[1], hole, hole, _flow_valid(v[0], v[1], hole))


def test_colour_change_with_consistent_motion_is_not_a_cut():
    """A flash or grade change: colours differ, but the flow holds: same shot."""
    a = translating_video(T=1, h=72, w=112, seed=4)[0]
    b = _tinted(a[None], (255, 40, 40))[0]
    hole = np.zeros(a.shape[:2], bool)
    valid_everywhere = np.ones(a.shape[:2], bool)
    assert cut_score(a, b, hole, hole) > CUT_THRESHOLD
    assert not is_cut(a, b, hole, hole, valid_everywhere)


def test_the_removed_object_does_not_count():
    """Only pixels known in both frames are compared: a changing hole is no cut."""
    a = texture(72, 112, seed=5)
    b = a.copy()
    hole = np.zeros(a.shape[:2], bool)
    hole[10:60, 20:90] = True
    b[hole] = 255 - b[hole]
    assert cut_score(a, b, hole, hole) < 1.0  # only the hole changed
    b[~hole] = 255 - b[~hole]
    assert cut_score(a, b, hole, hole) > CUT_THRESHOLD  # and the rest does count


def test_nothing_is_copied_across_a_cut(tmp_path):
    """The frames after a cut come out exactly as when the second shot is processed alone."""
    from tsam_cli.core.pipeline import inpaint
    from tsam_cli.options import InpaintOptions

    shot_a = translating_video(T=6, h=72, w=112, dx=2, dy=1, seed=6)
    shot_b = _tinted(translating_video(T=6, h=72, w=112, dx=1, dy=2, seed=7), (200, 60, 220))
    masks = np.zeros((12, 72, 112), np.uint8)
    masks[:, 20:44, 30:70] = 255
    both = write_pngs(tmp_path / "both", np.concatenate([shot_a, shot_b]))
    alone = write_pngs(tmp_path / "alone", shot_b)
    write_pngs(tmp_path / "m_both", masks)
    write_pngs(tmp_path / "m_alone", masks[6:])

    class Lines:
        def __init__(self):
            from tsam_cli.ui import NullReporter

            self.inner, self.lines = NullReporter(), []

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def info(self, msg):
            self.lines.append(msg)

    rep = Lines()
    opts = dict(dilate=0, fps=25)
    inpaint(both, tmp_path / "o_both", InpaintOptions(mask=str(tmp_path / "m_both"), **opts), reporter=rep)
    inpaint(alone, tmp_path / "o_alone", InpaintOptions(mask=str(tmp_path / "m_alone"), **opts))
    from conftest import read_video

    out_both, out_alone = read_video(tmp_path / "o_both"), read_video(tmp_path / "o_alone")
    assert any("shot cut between frames 5 and 6" in line for line in rep.lines)
    assert np.array_equal(out_both[6:], out_alone)
