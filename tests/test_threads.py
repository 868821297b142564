"""The flow stage on several threads: the same output for any thread count, cuts found alike."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import translating_video, write_pngs

from tsam_cli.api import inpaint
from tsam_cli.device import usable_cpus
from tsam_cli.ui import NullReporter


def test_any_thread_count_gives_the_same_frames_and_the_same_cuts(tmp_path):
    a = translating_video(T=7, h=72, w=112, dx=2, dy=1, seed=6)
    b = translating_video(T=7, h=72, w=112, dx=1, dy=2, seed=7) // 2 + np.array([100, 30, 110], np.uint8)
    frames = np.concatenate([a, b])  # a shot cut between frames 6 and 7 (another texture, recoloured)
    masks = np.zeros(frames.shape[:3], bool)
    masks[:, 20:44, 30:70] = True
    video = write_pngs(tmp_path / "v", frames)
    got, said = [], []
    for threads in (1, 2, 5):
        rep = NullReporter()
        rep.info = lambda msg, said=said, threads=threads: said.append((threads, msg))
        out = tmp_path / f"o{threads}"
        inpaint(video, masks, out, threads=threads, window=5, lookahead=3, reporter=rep)
        got.append(sorted(p.read_bytes() for p in out.glob("*.png")))
    assert got[0] == got[1] == got[2]
    cuts = {t: [m for tt, m in said if tt == t and "shot cut" in m] for t in (1, 2, 5)}
    assert cuts[1] == cuts[2] == cuts[5] == ["shot cut between frames 6 and 7: nothing is copied across it"]


def test_usable_cpus_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {3})
    assert usable_cpus() == 1


@pytest.mark.parametrize("bad", [0, -1, 100000])
def test_threads_out_of_range_is_a_usage_error(bad):
    from tsam_cli.errors import UsageError

    with pytest.raises(UsageError, match="--threads"):
        inpaint(translating_video(T=3, h=32, w=32), np.ones((32, 32), bool), threads=bad)


def test_the_generator_on_the_cpu_uses_the_usable_cpus(monkeypatch):
    """PyTorch counts the machine's cores; tsam gives it the CPUs this process may use (or --threads)."""
    import torch

    import tsam_cli.core.model_fill as model_fill
    from tsam_cli.options import InpaintOptions

    before = torch.get_num_threads()
    monkeypatch.setattr(model_fill, "usable_cpus", lambda: 1)
    try:
        assert model_fill.load_model_runner(InpaintOptions(model="compact", device="cpu"), NullReporter()) is not None
        assert torch.get_num_threads() == 1
        model_fill.load_model_runner(InpaintOptions(model="compact", device="cpu", threads=2), NullReporter())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
