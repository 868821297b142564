"""The flow stage on several threads: the same output for any thread count, cuts found alike."""

from __future__ import annotations

import os

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


def _encoder_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("tsam-encode")]


def _moving_square(tmp_path, T=9):
    frames = translating_video(T=T, h=48, w=64, dx=2, dy=1, seed=3)
    masks = np.zeros(frames.shape[:3], bool)
    masks[:, 12:30, 20:44] = True
    return write_pngs(tmp_path / "v", frames), masks


def test_frames_are_encoded_on_their_own_thread_in_the_same_order(tmp_path, monkeypatch):
    """With 2 threads, pasting and encoding run on the encoder's thread (the frames handed to the
    writer come from it), and the written frames are those of the one-thread loop."""
    import threading

    import tsam_cli.media.writer as writer_mod

    video, masks = _moving_square(tmp_path)
    seen = []
    original = writer_mod.VideoWriter.write

    def spy(self, rgb, pts=None):
        seen.append(threading.current_thread().name)
        return original(self, rgb, pts)

    monkeypatch.setattr(writer_mod.VideoWriter, "write", spy)
    inpaint(video, masks, tmp_path / "o2", threads=2, window=3, lookahead=2)
    assert len(seen) == 9 and all(name.startswith("tsam-encode") for name in seen)
    seen.clear()
    inpaint(video, masks, tmp_path / "o1", threads=1, window=3, lookahead=2)
    assert seen == ["MainThread"] * 9
    frames = [sorted(p.read_bytes() for p in (tmp_path / o).glob("*.png")) for o in ("o1", "o2")]
    assert frames[0] == frames[1] and len(frames[0]) == 9
    assert _encoder_threads() == []


def test_an_error_of_the_encoder_thread_reaches_the_caller_and_leaves_nothing(tmp_path, monkeypatch):
    """The disk fills while the encoder writes the second window: the run fails with the writer's
    own error (the exit code's type), and no output, temporary or thread is left."""
    import errno

    import tsam_cli.media.writer as writer_mod
    from tsam_cli.errors import OutputError

    video, masks = _moving_square(tmp_path)
    original, calls = writer_mod.VideoWriter.write, []

    def full_disk(self, rgb, pts=None):
        calls.append(1)
        if len(calls) == 5:
            raise OutputError(os.strerror(errno.ENOSPC))
        return original(self, rgb, pts)

    monkeypatch.setattr(writer_mod.VideoWriter, "write", full_disk)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=os.strerror(errno.ENOSPC)):
        inpaint(video, masks, out, threads=2, window=3, lookahead=2)
    assert len(calls) == 5  # nothing is written after the failing frame
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if ".tsam-" in p.name] == []
    assert _encoder_threads() == []


def test_an_error_in_the_main_thread_stops_the_encoder_before_the_writer_closes(tmp_path, monkeypatch):
    """A signal arrives (as KeyboardInterrupt) while the third window is propagated and the
    encoder may still hold the second: the run reports the interruption, the encoder stops (no
    thread left) and nothing is left behind."""
    import tsam_cli.core.pipeline as pipeline
    from tsam_cli.errors import Interrupted

    video, masks = _moving_square(tmp_path)
    original, windows = pipeline.complete_window, []

    def failing(win, fill, propagation, rep):
        windows.append(1)
        if len(windows) == 3:
            raise KeyboardInterrupt
        return original(win, fill, propagation, rep)

    monkeypatch.setattr(pipeline, "complete_window", failing)
    out = tmp_path / "out"
    with pytest.raises(Interrupted, match="nothing was written"):
        inpaint(video, masks, out, threads=2, window=3, lookahead=2)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if ".tsam-" in p.name] == []
    assert _encoder_threads() == []
