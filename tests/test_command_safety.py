"""Every command under inpaint's rules: eval, masks generate, the output layer, standard streams.

Each test names what a user lost or was misled by before: a report written over a dataset
frame, a kept-results folder deleted, short results scored as perfect, a full disk reported as
success, a closed stderr that stopped the work.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import (
    cli,
    full_dir,
    interrupt_at,
    leftovers,
    no_file_writes,
    one_error_line,
    readonly_dir,
    run,
    snapshot,
    unmount,
)
from conftest import translating_video, write_video

SIZE = "64x48"


def _frames_folder(folder: Path, T: int = 6, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    for i, f in enumerate(translating_video(T=T, h=48, w=64, seed=seed)):
        cv2.imwrite(str(folder / f"{i:05d}.png"), f[..., ::-1])
    return folder


@pytest.fixture()
def folder_ds(tmp_path):
    """A 'folder' dataset: ROOT/a/ and ROOT/b/, six 64x48 frames each."""
    root = tmp_path / "ds"
    for i, name in enumerate(("a", "b")):
        _frames_folder(root / name, seed=i)
    return root


def _eval(root, *more):
    return ["eval", "--dataset", "folder", "--root", root, "--size", SIZE, "--metrics", "psnr", "-q", *more]


# ---------------------------------------------------------------------------------------
# eval: its outputs follow the output layer

def test_eval_report_never_overwrites_a_dataset_frame_or_an_existing_file(folder_ds, tmp_path, capsys):
    before = snapshot(folder_ds)
    frame = folder_ds / "a" / "00000.png"
    for flag in ("--json", "--csv"):
        code, err = run(_eval(folder_ds, flag, frame, "--overwrite"), capsys)
        assert code == 5 and one_error_line(err), err
    existing = tmp_path / "r.json"
    existing.write_text("mine")
    code, err = run(_eval(folder_ds, "--json", existing), capsys)
    assert code == 5 and "--overwrite" in err and existing.read_text() == "mine"
    inside = folder_ds / "report.json"
    code, err = run(_eval(folder_ds, "--json", inside), capsys)
    assert code == 5 and "inside the dataset" in err and not inside.exists()
    assert snapshot(folder_ds) == before


def test_eval_report_is_written_whole_with_the_umask_mode(folder_ds, tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    r = cli(_eval(folder_ds, "--json", out, "--csv", table), umask=0o022)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["mean"]["psnr"] > 20 and table.read_text().startswith("name,")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644 and leftovers(tmp_path) == []
    r = cli(_eval(folder_ds, "--json", out, "--overwrite"))
    assert r.returncode == 0, r.stderr


def test_eval_checks_its_outputs_before_the_work(tmp_path, capsys):
    """A bad report path fails at once (exit 5), before the dataset is even read (exit 7)."""
    missing_root = tmp_path / "no-dataset"
    (tmp_path / "dir.json").mkdir()
    for path, fragment in [(tmp_path / "dir.json", "is a folder"), (tmp_path / "nope" / "r.json", "does not exist"),
                           (tmp_path / "r.txt", "ending in .json"), ("-", "standard output")]:
        code, err = run(_eval(missing_root, "--json", path), capsys)
        assert code == 5 and one_error_line(err) and fragment in err, (path, err)
    code, err = run(_eval(missing_root, "--json", tmp_path / "x.json", "--csv", tmp_path / "x.json"), capsys)
    assert code == 2 and one_error_line(err)
    code, err = run(["eval", "--root", missing_root, "--size", "100000x100000"], capsys)
    assert code == 2 and "too large" in err and one_error_line(err)
    for bad in (["--device", "gpu"], ["--max-videos", "0"], ["--max-frames", "-1"]):
        code, err = run(["eval", "--root", missing_root, *bad], capsys)
        assert code == 2 and one_error_line(err), (bad, err)


def test_eval_report_in_a_read_only_folder_is_exit_5(folder_ds, tmp_path, capsys):
    ro = readonly_dir(tmp_path / "ro")
    try:
        code, err = run(_eval(folder_ds, "--json", ro / "r.json"), capsys)
        assert code == 5 and "not writable" in err and one_error_line(err)
    finally:
        unmount(ro)


def test_eval_report_on_a_full_disk_is_one_line_and_leaves_nothing(folder_ds, tmp_path):
    full = full_dir(tmp_path / "full")
    try:
        r = cli(_eval(folder_ds, "--results", _kept_results(folder_ds, tmp_path), "--json", full / "r.json"))
        assert r.returncode == 5 and one_error_line(r.stderr) and "r.json" in r.stderr, r.stderr
        assert sorted(p.name for p in full.iterdir()) == [".filler"]
    finally:
        unmount(full)


def test_no_usable_temporary_folder_is_one_line(folder_ds, tmp_path):
    """Scoring results needs no temporary (exit 0); inpainting the clips does (exit 5, one line)."""
    r = cli(_eval(folder_ds, "--results", _kept_results(folder_ds, tmp_path)), preexec=no_file_writes)
    assert r.returncode == 0 and "mean" in r.stdout, r.stderr
    r = cli(_eval(folder_ds), preexec=no_file_writes)
    assert r.returncode == 5 and one_error_line(r.stderr) and "TMPDIR" in r.stderr, r.stderr


def _kept_results(root: Path, tmp_path: Path) -> Path:
    """Results of a 'method' for every clip of ``root``: the ground truth itself, as frame folders."""
    res = tmp_path / "results"
    for clip in root.iterdir():
        _frames_folder(res / clip.name, seed=("a", "b").index(clip.name))
    return res


def test_keep_results_never_deletes_a_users_folder_or_the_dataset(folder_ds, tmp_path, capsys):
    keep = tmp_path / "keep"
    (keep / "a").mkdir(parents=True)
    (keep / "a" / "notes.txt").write_text("mine")
    for overwrite in ([], ["--overwrite"]):
        code, err = run(_eval(folder_ds, "--keep-results", keep, *overwrite), capsys)
        assert code == 5 and one_error_line(err), err
    assert (keep / "a" / "notes.txt").read_text() == "mine"
    before = snapshot(folder_ds)
    for target in (folder_ds, folder_ds / "a", folder_ds / "new"):
        code, err = run(_eval(folder_ds, "--keep-results", target, "--overwrite"), capsys)
        assert code == 5 and one_error_line(err), (target, err)
    assert snapshot(folder_ds) == before
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a").write_text("a file where a clip's folder goes")
    code, err = run(_eval(folder_ds, "--keep-results", tmp_path / "f"), capsys)
    assert code == 5 and "not a folder" in err and (tmp_path / "f" / "a").is_file()


def test_keep_results_are_swapped_in_and_replaced_only_with_overwrite(folder_ds, tmp_path, capsys):
    keep = tmp_path / "keep"
    code, err = run(_eval(folder_ds, "--keep-results", keep), capsys)
    assert code == 0, err
    assert sorted(p.name for p in (keep / "a").iterdir()) == [".tsam-output", *(f"{i:05d}.png" for i in range(6))]
    code, err = run(_eval(folder_ds, "--keep-results", keep), capsys)
    assert code == 5 and "--overwrite" in err
    code, err = run(_eval(folder_ds, "--keep-results", keep, "--overwrite"), capsys)
    assert code == 0, err
    assert leftovers(keep) == [] and leftovers(tmp_path) == []


def test_eval_short_results_are_an_error_unless_allowed(folder_ds, tmp_path, capsys):
    res = _kept_results(folder_ds, tmp_path)
    for f in sorted((res / "b").iterdir())[3:]:
        f.unlink()
    code, err = run(_eval(folder_ds, "--results", res), capsys)
    assert code == 7 and "3 frames" in err and "--allow-partial" in err and one_error_line(err), err
    code = __import__("tsam_cli.cli.main", fromlist=["main"]).main(
        [str(a) for a in _eval(folder_ds, "--results", res, "--allow-partial")])
    out = capsys.readouterr().out
    assert code == 0 and "3/6" in out, out


def test_eval_interrupted_names_no_internal_path_and_leaves_no_temporary(folder_ds, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    rc, err = interrupt_at("writing", signal.SIGINT, _eval(folder_ds, "--json", tmp_path / "r.json"), tmp_path,
                           env={"TMPDIR": str(tmp)})
    assert rc == 130 and one_error_line(err) and "no report was written" in err, err
    assert "tsam-eval" not in err and list(tmp.iterdir()) == [] and not (tmp_path / "r.json").exists()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------
# masks generate

def test_masks_generate_replaces_only_its_own_folder_whole(tmp_path, capsys):
    out = tmp_path / "m"
    assert run(["masks", "generate", "-o", out, "--frames", "5", "--size", SIZE], capsys)[0] == 0
    code, err = run(["masks", "generate", "-o", out, "--frames", "2", "--size", SIZE], capsys)
    assert code == 5 and "--overwrite" in err
    assert run(["masks", "generate", "-o", out, "--frames", "2", "--size", SIZE, "--overwrite"], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [".tsam-output", "00000.png", "00001.png"]
    user = _frames_folder(tmp_path / "frames")  # a user's own frames, named as tsam names them
    before = snapshot(user)
    code, err = run(["masks", "generate", "-o", user, "--frames", "2", "--size", SIZE, "--overwrite"], capsys)
    assert code == 5 and "did not write" in err and snapshot(user) == before


def test_masks_generate_on_a_full_disk_reports_it_and_leaves_nothing(tmp_path):
    r = cli(["masks", "generate", "-o", tmp_path / "m", "--frames", "4", "--size", SIZE], preexec=no_file_writes)
    assert r.returncode == 5 and one_error_line(r.stderr) and "wrote" not in r.stdout, (r.stdout, r.stderr)
    assert list(tmp_path.iterdir()) == []


def test_masks_generate_refuses_absurd_requests_at_once(tmp_path, capsys):
    for args in (["--frames", "100000000"], ["--size", "100000x100000"], ["--frames", "0"], ["--seed", "-1"],
                 ["--size", "0x0"], ["--area", "nan-nan"]):
        code, err = run(["masks", "generate", "-o", tmp_path / "m", *args], capsys)
        assert code == 2 and one_error_line(err), (args, err)
    assert list(tmp_path.iterdir()) == []
    code, err = run(["masks", "generate", "-o", "-", "--frames", "1", "--size", SIZE], capsys)
    assert code == 5 and "standard output" in err and not Path("-").exists()


def test_masks_generate_in_a_read_only_working_folder_is_exit_5(tmp_path):
    ro = readonly_dir(tmp_path / "ro")
    try:
        r = cli(["masks", "generate", "-o", "m", "--frames", "1", "--size", SIZE], cwd=ro)
        assert r.returncode == 5 and one_error_line(r.stderr), r.stderr
    finally:
        unmount(ro)


def test_one_mask_is_said_in_the_singular(tmp_path, capsys):
    from tsam_cli.cli.main import main

    assert main(["masks", "generate", "-o", str(tmp_path / "m"), "--frames", "1", "--size", SIZE]) == 0
    assert "wrote 1 mask " in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# the output layer itself

@pytest.fixture()
def small(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    return write_video(src / "in.mp4", translating_video(T=6, h=48, w=64), fps=10)


@pytest.mark.parametrize("length", [230, 250, 255])
def test_long_legal_output_names_work(small, tmp_path, capsys, length):
    out = tmp_path / ("x" * (length - 4) + ".mp4")
    code, err = run(["inpaint", small, "--box", "1,1,8,8", "-o", out, "-q"], capsys)
    assert code == 0 and out.is_file(), err
    folder = tmp_path / ("y" * length)
    code, err = run(["masks", "generate", "-o", folder, "--frames", "1", "--size", SIZE], capsys)
    assert code == 0 and folder.is_dir(), err
    assert leftovers(tmp_path) == []


def test_dash_is_not_a_file_name(small, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run(["inpaint", small, "--box", "1,1,8,8", "-o", "-"], capsys)
    assert code == 5 and "standard output" in err and not (tmp_path / "-").exists()


# ---------------------------------------------------------------------------------------
# standard streams: closed, broken or full

def test_a_broken_stderr_does_not_stop_the_work(small, tmp_path):
    """`2>&1 | head -c 10`: the reader of stderr is gone; progress is dropped, the output is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = cli(["inpaint", small, "--box", "1,1,8,8", "-o", tmp_path / "o.mp4"], stderr=write, stdout=write)
    finally:
        os.close(write)
    assert r.returncode == 0 and (tmp_path / "o.mp4").is_file()


def test_a_closed_stderr_does_not_stop_the_work_nor_land_in_the_output(small, tmp_path):
    """`2>&-`: descriptor 2 is reopened on /dev/null, so nothing is written into the output by mistake."""
    out = tmp_path / "o"
    r = cli(["inpaint", small, "--box", "1,1,8,8", "-o", out], preexec=lambda: os.close(2), capture_output=False,
            stdout=-3)
    assert r.returncode == 0 and sorted(p.name for p in out.iterdir())[-1] == "00005.png"


def test_a_full_stderr_does_not_stop_the_work(small, tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        r = cli(["inpaint", small, "--box", "1,1,8,8", "-o", tmp_path / "o.mp4"], stderr=fh, stdout=-3,
                preexec=_only_fd2_full)
    assert r.returncode == 0 and (tmp_path / "o.mp4").is_file()


def _only_fd2_full() -> None:
    """preexec: stderr becomes a pipe whose reader is gone (EPIPE), as `2>/dev/full` fails every write."""
    read, write = os.pipe()
    os.close(read)
    os.dup2(write, 2)


@pytest.mark.parametrize("args", [["weights", "list"], ["--version"],
                                  ["masks", "generate", "-o", "{tmp}/m", "--frames", "1", "--size", SIZE]])
def test_a_full_stdout_is_exit_5_with_one_line(tmp_path, args):
    out = tmp_path / "stdout.txt"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with open(out, "w") as fh:
        r = cli(args, stdout=fh, stderr=-1, preexec=no_file_writes if args[0] != "masks" else _stdout_only_fails)
    assert r.returncode == 5 and one_error_line(r.stderr) and "standard output" in r.stderr, r.stderr


def _stdout_only_fails() -> None:
    """preexec: writes to stdout fail (a descriptor opened read-only: EBADF), file writes work."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 1)


def test_a_closed_stdout_reader_is_not_an_error(tmp_path):
    """`tsam weights list | head -1`: the table's reader went away; exit 0, no message."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = cli(["weights", "list"], stdout=write, stderr=-1)
    finally:
        os.close(write)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ---------------------------------------------------------------------------------------
# a frame masked everywhere is filled like any other

def test_a_fully_masked_frame_is_filled_from_its_neighbours(tmp_path, capsys):
    from conftest import read_video, texture, write_pngs

    bg = texture(48, 64, seed=3)
    frames = np.repeat(bg[None], 8, 0).copy()
    masks = np.zeros((8, 48, 64), np.uint8)
    for t in range(8):  # a red square moving right, masked with a margin
        frames[t, 16:32, 4 + 5 * t:20 + 5 * t] = (255, 0, 0)
        masks[t, 12:36, 5 * t:24 + 5 * t] = 255
    masks[4] = 255  # ... and one frame masked everywhere (a flash, a title card)
    video = write_pngs(tmp_path / "v", frames)
    mask = write_pngs(tmp_path / "m", masks)
    code, err = run(["inpaint", video, "--mask", mask, "-o", tmp_path / "o", "--dilate", "0", "--filler", "telea"],
                    capsys)
    assert code == 0 and "frame 4 masked everywhere" in err, err
    out = read_video(tmp_path / "o")
    assert np.abs(out[4].astype(int) - bg).mean() < 4  # the background, not the input frame
    square = (slice(16, 32), slice(24, 40))  # where the red square was in frame 4
    assert np.abs(out[4][square].astype(int) - bg[square]).mean() < 10


# ---------------------------------------------------------------------------------------
# batches: what would silently do nothing or something else

@pytest.mark.parametrize("rank,world", [("5", "2"), ("abc", "2"), ("0", "0"), ("0", "abc"), ("-1", "2")])
def test_torchrun_variables_that_make_no_sense_are_usage_errors(small, tmp_path, capsys, monkeypatch, rank, world):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    second = write_video(tmp_path / "src" / "b.mp4", translating_video(T=6, h=48, w=64), fps=10)
    code, err = run(["inpaint", small, second, "--box", "1,1,8,8", "-o", tmp_path / "out"], capsys)
    assert code == 2 and one_error_line(err) and ("RANK" in err or "WORLD_SIZE" in err), err
    assert not (tmp_path / "out").exists()


def test_batch_mask_and_mask_dir_together_and_a_video_name_as_folder_are_refused(small, tmp_path, capsys):
    from conftest import write_pngs

    masks = tmp_path / "masks"
    write_pngs(masks / "in", np.full((6, 48, 64), 255, np.uint8))
    for args in (["--mask", masks / "in", "--mask-dir", masks, "-o", tmp_path / "out"],
                 ["--mask-dir", masks, "-o", tmp_path / "x.mp4"]):
        code, err = run(["inpaint", small, *args], capsys)
        assert code == 2 and one_error_line(err), (args, err)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# mask track --seed: only the seed frame matters, and the advice is the command's own

def test_a_seed_mask_video_shorter_than_the_clip_is_enough(tmp_path, capsys):
    from conftest import write_pngs

    video = write_pngs(tmp_path / "v", translating_video(T=8, h=48, w=64))
    seed = np.zeros((2, 48, 64), np.uint8)
    seed[1, 10:30, 10:40] = 255
    write_pngs(tmp_path / "seed", seed)
    code, err = run(["mask", "track", video, "--seed", tmp_path / "seed", "--frame", "1", "--net-steps", "0",
                     "-o", tmp_path / "m", "-q"], capsys)
    assert code == 0, err
    code, err = run(["mask", "track", video, "--seed", tmp_path / "seed", "--frame", "4", "-o", tmp_path / "m2"],
                    capsys)
    assert code == 4 and "frame 4" in err and one_error_line(err), err


@pytest.mark.parametrize("value", [0, 255])
def test_an_empty_or_full_seed_gets_the_seed_advice(tmp_path, capsys, value):
    from conftest import write_pngs

    video = write_pngs(tmp_path / "v", translating_video(T=4, h=48, w=64))
    write_pngs(tmp_path / "seed", np.full((1, 48, 64), value, np.uint8))
    code, err = run(["mask", "track", video, "--seed", tmp_path / "seed" / "00000.png", "-o", tmp_path / "m"], capsys)
    assert code == 4 and "--invert-seed" in err and "--invert-mask" not in err and "--mask-threshold" not in err, err


@pytest.mark.parametrize("command", [["preview", "--box", "1,1,8,8"], ["mask", "static"],
                                     ["mask", "track", "--box", "1,1,8,8"], ["inpaint", "--box", "1,1,8,8"]])
@pytest.mark.parametrize("fps", ["nan", "inf", "0", "-5", "1e9"])
def test_fps_is_checked_alike_by_every_command(tmp_path, capsys, command, fps):
    from conftest import write_pngs

    video = write_pngs(tmp_path / "v", translating_video(T=4, h=48, w=64))
    code, err = run([*command[:2 if command[0] == "mask" else 1], video, *command[2 if command[0] == "mask" else 1:],
                     "--fps", fps, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 2 and "--fps" in err and one_error_line(err), err
    assert not (tmp_path / "o.mp4").exists()


def test_eval_mask_folder_with_a_gap_is_an_error(folder_ds, tmp_path, capsys):
    from conftest import write_pngs

    masks = tmp_path / "masks"
    for clip in ("a", "b"):
        write_pngs(masks / clip, np.full((6, 48, 64), 0, np.uint8) + 0)
        for f in (masks / clip).iterdir():
            cv2.imwrite(str(f), np.pad(np.full((8, 8), 255, np.uint8), ((10, 30), (10, 46))))
    (masks / "b" / "00003.png").unlink()
    code, err = run(_eval(folder_ds, "--masks", masks), capsys)
    assert code == 7 and "00003.png" in err and one_error_line(err), err


# ---------------------------------------------------------------------------------------
# found by the hostile suite (tests/test_hostile.py, pytest -m slow); fast versions here

def test_a_newline_in_a_path_stays_one_error_line(tmp_path, capsys):
    code, err = run(["inpaint", tmp_path / "no\nsuch.mp4", "--box", "1,1,4,4", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 3 and one_error_line(err) and "no\\nsuch.mp4" in err, err


def test_no_output_inside_an_input_folder(tmp_path, capsys):
    from conftest import write_pngs

    frames = write_pngs(tmp_path / "frames", translating_video(T=4, h=48, w=64))
    before = snapshot(frames)
    for command in (["inpaint"], ["preview"]):
        code, err = run([*command, frames, "--box", "1,1,8,8", "-o", frames / "o.mp4"], capsys)
        assert code == 5 and "inside the input" in err, err
    assert snapshot(frames) == before and sorted(p.name for p in frames.iterdir()) == sorted(p.name for p in before)


def test_a_marker_that_is_a_folder_is_not_tsams(small, tmp_path, capsys):
    out = tmp_path / "f"
    (out / ".tsam-output").mkdir(parents=True)
    (out / ".tsam-output" / "x").write_text("mine")
    code, err = run(["inpaint", small, "--box", "1,1,8,8", "-o", out, "--overwrite"], capsys)
    assert code == 5 and (out / ".tsam-output" / "x").read_text() == "mine", err


def test_eval_does_not_leave_out_an_entry_that_is_not_a_clip(folder_ds, capsys):
    (folder_ds / "c").mkdir()
    code, err = run(_eval(folder_ds), capsys)
    assert code == 7 and "holds no frames" in err and one_error_line(err), err


def test_a_too_long_name_is_exit_5(small, tmp_path, capsys):
    code, err = run(["inpaint", small, "--box", "1,1,8,8", "-o", tmp_path / ("o" * 252 + ".mp4")], capsys)
    assert code == 5 and "more than the 255" in err and one_error_line(err), err
