"""Never lose a file: what -o may be, atomic replace, locking, file modes, signals, option ranges.

Signals are sent to real child processes at named pause points (``tsam_cli.hooks``): the
child creates ``<point>.paused`` and waits for ``<point>.resume``, so nothing here depends
on timing.
"""

import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import cli as _cli
from cli_helpers import interrupt_at as _interrupt_at
from cli_helpers import leftovers as _leftovers
from cli_helpers import one_error_line, run, snapshot
from cli_helpers import wait_for as _wait_for
from conftest import ROOT, read_video, translating_video, write_pngs, write_video


@pytest.fixture()
def small(tmp_path):
    """A 6-frame 64x48 mp4 in its own folder."""
    src = tmp_path / "src"
    src.mkdir()
    return write_video(src / "in.mp4", translating_video(T=6, h=48, w=64), fps=10)


# ---------------------------------------------------------------------------------------
# what -o may be

def test_output_dot_or_empty_never_deletes_the_current_folder(small, tmp_path, capsys, monkeypatch):
    work = tmp_path / "d"
    work.mkdir()
    (work / "precious.txt").write_text("keep")
    monkeypatch.chdir(work)
    for target in (".", "", "..", str(tmp_path)):
        code, err = run(["inpaint", small, "--box", "30,20,20,15", "-o", target, "--overwrite"], capsys)
        assert code == 5 and one_error_line(err), (target, err)
    assert (work / "precious.txt").read_text() == "keep" and sorted(os.listdir(work)) == ["precious.txt"]


def test_output_may_not_contain_or_be_an_input(small, tmp_path, capsys):
    masks = write_pngs(tmp_path / "masks", np.full((6, 48, 64), 255, np.uint8) * 0 + _box(48, 64))
    mask_video = write_video(tmp_path / "m.mp4", np.repeat(_box(48, 64)[..., None], 3, -1)[None].repeat(6, 0), fps=10)
    before = snapshot(tmp_path)
    os.link(small, tmp_path / "hard.mp4")
    os.symlink(small, tmp_path / "soft.mp4")
    cases = [
        (["--mask", masks, "-o", masks], "is the mask"),
        (["--mask", mask_video, "-o", mask_video], "is the mask"),
        (["--box", "1,1,4,4", "-o", small.parent], "contains the input"),
        (["--box", "1,1,4,4", "-o", tmp_path / "hard.mp4"], "is the input"),
        (["--box", "1,1,4,4", "-o", tmp_path / "soft.mp4"], "symbolic link"),
        (["--box", "1,1,4,4", "-o", small.parent / ".." / "src" / "in.mp4"], "is the input"),
        (["--mask", masks, "-o", tmp_path / "masks" / ".." / "masks"], "is the mask"),
    ]
    for args, fragment in cases:
        code, err = run(["inpaint", small, *args, "--overwrite"], capsys)
        assert code == 5 and one_error_line(err) and fragment in err, (args, err)
    assert all(p.read_bytes() == b for p, b in before.items())


def test_weight_file_is_protected(small, tmp_path, capsys):
    weights = tmp_path / "w.mp4"  # a "weight file" whose name an output could take
    weights.write_bytes(b"weights")
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "--model", weights, "-o", weights, "--overwrite"], capsys)
    assert code == 5 and "is the weight file" in err and weights.read_bytes() == b"weights"


def test_device_nodes_fifos_and_foreign_folders_are_never_replaced(small, tmp_path, capsys):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "00000.png").write_bytes(b"x")
    (mixed / "notes.txt").write_text("mine")
    for out, fragment in [("/dev/null", "device, FIFO or socket"), (fifo, "device, FIFO or socket"),
                          (mixed, "did not write")]:
        code, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", out, "--overwrite"], capsys)
        assert code == 5 and one_error_line(err) and fragment in err, (out, err)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert (mixed / "notes.txt").read_text() == "mine"


def test_outputs_get_the_umask_mode(small, tmp_path):
    for umask, fmode, dmode in [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)]:
        out_f, out_d = tmp_path / f"o{umask}.mp4", tmp_path / f"o{umask}"
        for out in (out_f, out_d):
            r = _cli(["inpaint", small, "--box", "1,1,4,4", "-o", out, "-q"], umask=umask)
            assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(out_f).st_mode) == fmode
        assert stat.S_IMODE(os.stat(out_d).st_mode) == dmode
        assert stat.S_IMODE(os.stat(out_d / "00000.png").st_mode) == fmode


def test_rich_markup_in_paths_is_printed_as_is(small, tmp_path, capsys):
    out = tmp_path / "[bold]x[a].mp4"
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", out], capsys)
    assert code == 0, err
    assert "[bold]x[a].mp4" in err and out.is_file()


# ---------------------------------------------------------------------------------------
# child processes, signals and locks at explicit pause points

@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_mid_run_leaves_nothing(small, tmp_path, sig, code):
    out = tmp_path / "o.mp4"
    rc, err = _interrupt_at("writing", sig, ["inpaint", small, "--box", "10,10,20,15", "-o", out], tmp_path)
    assert rc == code and one_error_line(err) and "nothing was written" in err, err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_signal_during_start_up_is_one_line(small, tmp_path):
    rc, err = _interrupt_at("startup", signal.SIGINT, ["inpaint", small, "--box", "1,1,4,4", "-o", tmp_path / "o.mp4"],
                            tmp_path)
    assert rc == 130 and one_error_line(err), err


@pytest.mark.parametrize("point", ["commit", "swap", "committed"])
def test_overwrite_swap_is_atomic_under_sigint(small, tmp_path, point):
    """Replacing a frame folder: a signal at any moment of the swap leaves exactly one complete version."""
    out = tmp_path / "frames"
    old = write_pngs(out, translating_video(T=3, h=48, w=64))  # an older, 3-frame result
    (old / ".tsam-output").touch()  # ... that tsam wrote
    rc, err = _interrupt_at(point, signal.SIGINT,
                            ["inpaint", small, "--box", "10,10,20,15", "-o", out, "--overwrite"], tmp_path)
    assert rc == 130 and one_error_line(err), err
    # signals are held back from "commit" on: the swap always completes, and the message says so
    assert "complete" in err and "kept" in err, err
    assert sorted(p.name for p in old.iterdir()) == [".tsam-output", *(f"{i:05d}.png" for i in range(6))]
    assert _leftovers(tmp_path) == []


def test_overwrite_interrupted_before_commit_keeps_the_old_output(small, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old result")
    rc, err = _interrupt_at("writing", signal.SIGTERM,
                            ["inpaint", small, "--box", "10,10,20,15", "-o", out, "--overwrite"], tmp_path)
    assert rc == 143 and "unchanged" in err, err
    assert out.read_bytes() == b"old result" and _leftovers(tmp_path) == []


def test_second_run_on_the_same_output_is_refused(small, tmp_path):
    out = tmp_path / "o.mp4"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    first = _cli(["inpaint", small, "--box", "10,10,20,15", "-o", out], pause="writing", pause_dir=hooks, wait=False)
    _wait_for(hooks / "writing.paused", first)
    second = _cli(["inpaint", small, "--box", "10,10,20,15", "-o", out])
    assert second.returncode == 5 and "another tsam run" in second.stderr and one_error_line(second.stderr)
    (hooks / "writing.resume").touch()
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert read_video(out).shape == (6, 48, 64, 3) and _leftovers(tmp_path) == []


def test_stale_temporaries_of_dead_runs_are_cleaned_and_a_lost_swap_restored(small, tmp_path, capsys):
    dead = 2**22 + 12345  # above the default pid_max of 4,194,304: no such process
    stale = tmp_path / f".o.mp4.tsam-{dead}.x1.tmp.mp4"
    stale.write_bytes(b"half")
    alive = tmp_path / f".o.mp4.tsam-{os.getppid()}.x2.tmp.mp4"  # a live process's: not touched
    alive.write_bytes(b"busy")
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 0, err
    assert not stale.exists() and alive.exists()
    # a swap killed between its two renames left the old folder aside and nothing at -o
    aside = write_pngs(tmp_path / f".frames.tsam-{dead}.old", translating_video(T=2, h=48, w=64))
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", tmp_path / "frames"], capsys)
    assert code == 5 and "already exists" in err  # the old output came back, and is not replaced silently
    assert not aside.exists() and len(list((tmp_path / "frames").iterdir())) == 2


def test_full_disk_or_size_limit_maps_to_exit_5(small, tmp_path):
    import resource

    big = write_video(tmp_path / "big.mp4", translating_video(T=40, h=120, w=160), fps=10)
    out = tmp_path / "out"
    out.mkdir()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    for target in (out / "o.mp4", out / "frames"):
        r = subprocess.run([sys.executable, "-m", "tsam_cli.entry", "inpaint", str(big), "--box", "10,10,30,30",
                            "-o", str(target), "--lossless"], cwd=ROOT, capture_output=True, text=True,
                           preexec_fn=limit, timeout=300)
        assert r.returncode == 5 and one_error_line(r.stderr) and "size limit" in r.stderr, r.stderr
    assert os.listdir(out) == []


# ---------------------------------------------------------------------------------------
# options

@pytest.mark.parametrize("args,fragment", [
    (["--fps", "1e-9"], "--fps"), (["--fps", "nan"], "--fps"), (["--fps", "inf"], "--fps"),
    (["--flow", "bogus"], "--flow"), (["--dilate", "99999999999"], "--dilate"), (["--dilate", "-1"], "--dilate"),
    (["--precision", "bogus"], "--precision"), (["--model-window", "0"], "--model-window"),
    (["--model-stride", "20"], "--model-stride"), (["--device", "cudaXYZ"], "--device"),
    (["--max-size", "8"], "--max-size"), (["--crf", "60"], "--crf"), (["--window", "1"], "--window"),
    (["--mask-threshold", "70000"], "--mask-threshold"),
])
def test_every_option_is_validated(small, tmp_path, capsys, args, fragment):
    out = tmp_path / "o.mp4"
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", out, *args], capsys)
    assert code == 2 and one_error_line(err) and fragment in err, err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_dilation_that_swallows_the_frame_is_refused(small, tmp_path, capsys):
    code, err = run(["inpaint", small, "--box", "30,20,4,4", "--dilate", "200", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 4 and "--dilate" in err and one_error_line(err), err


def test_fifo_mask_or_model_is_refused_without_hanging(small, tmp_path, capsys):
    fifo = tmp_path / "m.mp4"
    os.mkfifo(fifo)
    code, err = run(["inpaint", small, "--mask", fifo, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 4 and "not a regular file" in err and one_error_line(err), err
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "--model", fifo, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 6 and "not a regular file" in err and one_error_line(err), err


@pytest.mark.parametrize("size,extra", [((12, 96), []), ((12, 40), []), ((13, 200), []), ((3, 7), []),
                                        ((120, 800), ["--max-size", "96"])])
def test_tiny_processing_sizes_work(tmp_path, size, extra):
    """OpenCV DIS segfaults on 8-31 px high frames: run in a child so a crash fails the test."""
    h, w = size
    video = write_video(tmp_path / "in.mkv", translating_video(T=5, h=h, w=w), fps=10, codec="ffv1", pix_fmt="bgr0")
    r = _cli(["inpaint", video, "--box", "1,1,2,2", "--dilate", "0", "-o", tmp_path / "o.mkv", "-q", *extra])
    assert r.returncode == 0, r.stderr
    assert read_video(tmp_path / "o.mkv").shape == (5, h, w, 3)


def test_missing_weight_file_is_exit_6(small, tmp_path, capsys):
    code, err = run(["inpaint", small, "--box", "1,1,4,4", "--model", tmp_path / "missing.safetensors",
                     "-o", tmp_path / "o.mp4"], capsys)
    assert code == 6 and one_error_line(err), err


# ---------------------------------------------------------------------------------------
# batches

def test_batch_name_collisions_fail_before_any_work(tmp_path, capsys):
    v = translating_video(T=4, h=32, w=48)
    a = write_video(tmp_path / "a.mp4", v, fps=10)
    b = write_video(tmp_path / "a.mkv", v, fps=10, codec="ffv1", pix_fmt="bgr0")
    (tmp_path / "other").mkdir()
    c = write_video(tmp_path / "other" / "a.mp4", v, fps=10)
    out = tmp_path / "out"
    code, err = run(["inpaint", a, c, "--box", "1,1,4,4", "-o", out], capsys)
    assert code == 2 and "both be written" in err and not out.exists(), err
    code, err = run(["inpaint", a, b, "--box", "1,1,4,4", "-o", out], capsys)
    assert code == 0, err  # .mp4 and .mkv keep their containers: no collision
    assert sorted(p.name for p in out.iterdir()) == ["a.mkv", "a.mp4"]


def test_batch_with_box_only_and_mask_dir_holding_the_videos(tmp_path, capsys):
    v = translating_video(T=4, h=32, w=48)
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "x.mp4", v, fps=10)
    write_video(clips / "y.mp4", v, fps=10)
    code, err = run(["inpaint", clips / "x.mp4", clips / "y.mp4", "--box", "2,2,6,6", "-o", tmp_path / "o1", "-q"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["x.mp4", "y.mp4"]
    # --mask-dir is the videos' own folder: x.mp4 is never x.mp4's mask -> no mask found, reported
    code, err = run(["inpaint", clips / "x.mp4", clips / "y.mp4", "--mask-dir", clips, "-o", tmp_path / "o2"], capsys)
    assert code == 8 and "no mask for x.mp4" in err, err


def _box(h, w):
    m = np.zeros((h, w), np.uint8)
    m[10:20, 10:30] = 255
    return m


@pytest.mark.parametrize("code,fragment", [(30, "read-only"), (28, "disk is full")])  # EROFS, ENOSPC
def test_write_errors_name_their_cause(small, tmp_path, capsys, monkeypatch, code, fragment):
    """A filesystem turning read-only (or full) mid-run: exit 5 naming it, nothing left behind."""
    import tsam_cli.media.writer as writer

    calls = {"n": 0}

    def failing_open(path, mode="r", *args, **kw):
        calls["n"] += 1
        if calls["n"] > 2:  # a few frames are written first
            raise OSError(code, os.strerror(code))
        return open(path, mode, *args, **kw)

    monkeypatch.setattr(writer, "open", failing_open, raising=False)
    out = tmp_path / "frames"
    code_, err = run(["inpaint", small, "--box", "1,1,4,4", "-o", out], capsys)
    assert code_ == 5 and fragment in err and one_error_line(err), err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_batch_with_markup_in_names_finishes_every_input(tmp_path, capsys):
    """Names with [brackets] once aborted a batch after its first output (rich markup)."""
    v = translating_video(T=4, h=32, w=48)
    a = write_video(tmp_path / "[red]a[b].mp4", v, fps=10)
    b = write_video(tmp_path / "c[1].mp4", v, fps=10)
    code, err = run(["inpaint", a, b, "--box", "2,2,6,6", "-o", tmp_path / "out"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["[red]a[b].mp4", "c[1].mp4"]
    assert "[red]a[b].mp4" in err  # printed as it is, not parsed as markup


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("command", [
    ["inpaint", "{src}", "--box", "10,10,20,15"],
    ["inpaint", "{src}", "--box", "10,10,20,15", "--preview"],
    ["preview", "{src}", "--box", "10,10,20,15"],
    ["preview", "{src}", "--result", "{src}"],
    ["mask", "track", "{src}", "--box", "10,10,20,15"],
])
def test_signal_right_after_the_temporary_is_made_leaves_nothing(small, tmp_path, command, sig, code):
    """Every command that writes -o goes through OutputTarget: a signal the moment its hidden
    temporary exists (inside ``__enter__``) must still remove it and say nothing was written."""
    out = tmp_path / "o.mkv"
    args = [str(a).replace("{src}", str(small)) for a in command] + ["-o", out]
    rc, err = _interrupt_at("target-open", sig, args, tmp_path)
    assert rc == code and one_error_line(err), err
    assert "not written" in err or "nothing was written" in err, err
    assert not out.exists() and _leftovers(tmp_path) == []
