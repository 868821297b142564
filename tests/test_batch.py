"""Batches: mask matching, resumable outputs, partial failure, --shard and torchrun sharding."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, moving_box_masks, translating_video, write_pngs, write_video

from tsam_cli.batch import expand_inputs, find_mask, output_for, shard_from_env
from tsam_cli.cli.main import main
from tsam_cli.errors import EXIT_PARTIAL, UsageError


def make_clips(folder, n, corrupt=()):
    videos, masks = folder / "videos", folder / "masks"
    videos.mkdir()
    for i in range(n):
        v = translating_video(T=6, h=48, w=64, seed=i)
        p = write_video(videos / f"v{i}.mp4", v, fps=10)
        if i in corrupt:
            p.write_bytes(p.read_bytes()[:300])
        write_pngs(masks / f"v{i}", moving_box_masks(6, 48, 64, size=(12, 10)))
    return videos, masks


def test_batch_partial_failure_then_resume(tmp_path, capsys):
    videos, masks = make_clips(tmp_path, 3, corrupt={1})
    out = tmp_path / "out"
    argv = ["inpaint", str(videos / "v0.mp4"), str(videos / "v1.mp4"), str(videos / "v2.mp4"),
            "--mask-dir", str(masks), "-o", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL
    assert sorted(p.name for p in out.iterdir()) == ["v0.mp4", "v2.mp4"]
    failures = [line for line in err.splitlines() if "v1.mp4:" in line and "corrupt" in line]
    assert len(failures) == 1, err
    assert "2 done, 0 skipped, 1 failed" in err
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code = main(argv)  # re-run: the two finished outputs are skipped, the corrupt one fails again
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL and "0 done, 2 skipped, 1 failed" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_glob_and_single_mask_for_all(tmp_path, capsys):
    videos, _ = make_clips(tmp_path, 2)
    import cv2

    m = np.zeros((48, 64), np.uint8)
    m[5:15, 5:20] = 255
    cv2.imwrite(str(tmp_path / "logo.png"), m)
    code = main(["inpaint", str(videos / "*.mp4"), "--mask", str(tmp_path / "logo.png"), "-o", str(tmp_path / "o"), "-q"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["v0.mp4", "v1.mp4"]


def test_shard_option_splits_inputs(tmp_path, capsys):
    videos, masks = make_clips(tmp_path, 4)
    for i in range(2):
        assert main(["inpaint", str(videos / "*.mp4"), "--mask-dir", str(masks), "-o", str(tmp_path / "o"),
                     "--shard", f"{i}/2", "-q"]) == 0
        done = sorted(p.name for p in (tmp_path / "o").iterdir())
        assert done == (["v0.mp4", "v2.mp4"] if i == 0 else ["v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4"])


def test_helpers(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "clip_mask.png").write_bytes(b"x")
    (tmp_path / "m" / "other").mkdir()
    assert find_mask(tmp_path / "m", tmp_path / "clip.mp4") == tmp_path / "m" / "clip_mask.png"
    assert find_mask(tmp_path / "m", tmp_path / "other.mov") == tmp_path / "m" / "other"
    assert find_mask(tmp_path / "m", tmp_path / "none.mp4") is None
    assert output_for(tmp_path / "a.webm", tmp_path / "o").name == "a.mp4"
    assert output_for(tmp_path / "a.mkv", tmp_path / "o").name == "a.mkv"
    with pytest.raises(UsageError):
        expand_inputs([str(tmp_path / "*.nothing")])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert shard_from_env(None) == (1, 3)
    assert shard_from_env("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(UsageError):
            shard_from_env(bad)


def test_torchrun_two_processes_each_video_once(tmp_path):
    videos, masks = make_clips(tmp_path, 4)
    out = tmp_path / "o"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29613",
         "-m", "tsam_cli.cli", "inpaint", str(videos / "*.mp4"), "--mask-dir", str(masks), "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert sorted(p.name for p in out.iterdir()) == [f"v{i}.mp4" for i in range(4)]
    for i in range(4):
        starts = [line for line in log.splitlines() if f"v{i}.mp4 ->" in line]
        assert len(starts) == 1, log  # processed by exactly one of the two processes
