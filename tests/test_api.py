"""The Python API (``import tsam_cli as tsam``): only public names are used here.

Frames in memory and files, a model loaded once for many videos, masks made in memory, and
the same validation and safety as the command line.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import translating_video, write_video

import tsam_cli as tsam

T, H, W = 6, 48, 64


@pytest.fixture()
def clip():
    frames = translating_video(T=T, h=H, w=W)
    masks = np.zeros((T, H, W), bool)
    masks[:, 14:30, 20:40] = True
    return frames, masks


def test_frames_in_memory_give_frames_back_changed_only_in_the_hole(clip):
    frames, masks = clip
    out = tsam.inpaint(frames, masks, dilate=0, model="classical")
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks], frames[~masks])  # lossless round trip outside the hole
    assert not np.array_equal(out[masks], frames[masks])
    # the hole is filled from the other frames: close to the truth (the texture is known there)
    assert np.abs(out[masks].astype(int) - frames[masks]).mean() < 12


def test_one_mask_for_every_frame_and_a_list_of_frames(clip):
    frames, masks = clip
    out = tsam.inpaint(list(frames), masks[0].astype(np.uint8) * 255, dilate=0)
    assert out.shape == frames.shape


def test_files_with_a_model_loaded_once(clip, tmp_path):
    frames, masks = clip
    video = write_video(tmp_path / "in.mp4", frames, fps=10)
    model = tsam.load_model("classical")
    report = tsam.inpaint(video, None, tmp_path / "out.mp4", model=model, box="20,14,20,16")
    assert report.n_frames == T and (tmp_path / "out.mp4").is_file()
    again = tsam.inpaint(video, None, tmp_path / "out2.mp4", model=model, box="20,14,20,16")
    assert again.n_frames == T


def test_the_same_rules_as_the_command_line(clip, tmp_path):
    frames, masks = clip
    video = write_video(tmp_path / "in.mp4", frames, fps=10)
    with pytest.raises(tsam.TsamError, match="unknown option 'dilation'"):
        tsam.inpaint(frames, masks, dilation=3)
    with pytest.raises(tsam.TsamError, match="--dilate"):
        tsam.inpaint(frames, masks, dilate=-1)
    with pytest.raises(tsam.TsamError) as err:
        tsam.inpaint(video, None, video, box="1,1,4,4", overwrite=True)  # never the input
    assert err.value.exit_code == 5 and video.stat().st_size > 0
    with pytest.raises(tsam.TsamError, match="uint8"):
        tsam.inpaint(frames.astype(np.float32), masks)


def test_make_mask_in_memory_then_inpaint_with_it(clip):
    frames, _ = clip
    masks = tsam.make_mask("track", frames, box="20,14,20,16", net_steps=0)
    assert masks.shape == (T, H, W) and masks.dtype == bool and masks[0].any()
    out = tsam.inpaint(frames, masks)
    assert out.shape == frames.shape


def test_a_batch_loads_the_generator_once(tmp_path, monkeypatch):
    """Ten clips with --model compact: the weights are read once, not ten times."""
    import tsam_cli.model.tsam_format as tsam_format
    from tsam_cli.cli.main import main

    loads = []
    real = tsam_format.load_generator
    monkeypatch.setattr(tsam_format, "load_generator", lambda *a, **k: loads.append(a) or real(*a, **k))
    clips = [write_video(tmp_path / f"c{i}.mp4", translating_video(T=4, h=32, w=48, seed=i), fps=10) for i in range(10)]
    code = main(["inpaint", *map(str, clips), "--box", "10,8,16,12", "--model", "compact", "-o", str(tmp_path / "out"),
                 "-q"])
    assert code == 0 and len(list((tmp_path / "out").glob("*.mp4"))) == 10
    assert len(loads) == 1
