"""`tsam train` is as safe as `tsam inpaint`: bad options and environments are one-line errors
before any work, damaged checkpoints and weights are refused, the run folder is never made in
the wrong place nor left half-written, a signal reports the checkpoint on disk, and files
get the umask's mode. No timing: signals come from monkeypatched steps or pause points."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train import TINY, app, base_args, runner, sub_env, synthetic_davis

from tsam_cli.errors import DatasetError, Interrupted, OutputError, Signalled, UsageError, WeightsError
from tsam_cli.train import trainer
from tsam_cli.train.trainer import CHECKSUM_KEY, TrainConfig, read_checkpoint, train

AS_ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _in_tmp_folder(tmp_path, monkeypatch):
    """Runs without --run-dir write runs/ in the current folder: make that the test's folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    return synthetic_davis(tmp_path_factory.mktemp("data") / "davis")


def tiny_cfg(root: Path, **kw) -> TrainConfig:
    """The smallest run: tiny G and D (d_nf 4: a checkpoint under 1 MB), 64x32, CPU, no VGG."""
    base = dict(dataset="davis", root=str(root), split="all", model="custom", model_config=dict(TINY),
                width=64, height=32, frames=3, batch_size=2, steps=2, workers=0, device="cpu", quiet=True,
                perceptual=False, sample_every=1, ckpt_every=1, d_nf=4)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, davis) -> Path:
    """A finished 2-step run (checkpoint at step 2); tests work on copies (:func:`copy_run`)."""
    run = tmp_path_factory.mktemp("runs") / "done"
    train(tiny_cfg(davis), run)
    return run


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative name -> bytes): to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(res, kind: type, code: int) -> str:
    assert isinstance(res.exception, kind), (res.output, repr(res.exception))
    assert res.exception.exit_code == code
    msg = str(res.exception)
    assert msg and "\n" not in msg
    return msg


def cli(args: list) -> object:
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------ 1. options, before any work
@pytest.mark.parametrize("extra,flag", [
    (("--batch-size", "0"), "--batch-size"), (("--lr", "nan"), "--lr"), (("--lr", "-1"), "--lr"),
    (("--lr", "inf"), "--lr"), (("--lr", "0"), "--lr"), (("--frames", "1"), "--frames"),
    (("--steps", "-1"), "--steps"), (("--epochs", "-2"), "--epochs"), (("--stage1-steps", "-1"), "--stage1-steps"),
    (("--workers", "-1"), "--workers"), (("--grad-clip", "nan"), "--grad-clip"), (("--grad-clip", "-1"), "--grad-clip"),
    (("--sample-every", "-1"), "--sample-every"), (("--ckpt-every", "-3"), "--ckpt-every"),
    (("--seed", "-1"), "--seed"), (("--size", "20x16"), "--size"), (("--size", "99999x16"), "--size"),
    (("--epochs", "2"), "--epochs"),  # with --steps: one of them
])
def test_bad_numbers_are_usage_errors_before_any_work(tmp_path, flag, extra):
    root = tmp_path / "davis"
    root.mkdir()  # empty: reading it would be a DatasetError, so the check must come first
    res = cli(base_args(tmp_path, root, extra=("--steps", "1", *extra)))
    assert flag in one_line(res, UsageError, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["davis", "tiny.json"]  # no runs/


def test_resumed_config_is_validated(tmp_path, finished):
    for key, value in [("batch_size", 0), ("lr", "abc"), ("grad_clip", float("nan")), ("frames", 2.5)]:
        run = copy_run(finished, tmp_path / f"r-{key}")
        cfg = json.loads((run / "config.json").read_text())
        cfg[key] = value
        (run / "config.json").write_text(json.dumps(cfg))
        before = snapshot(run)
        msg = one_line(cli(["train", "--resume", run, "--steps", 3, "-q"]), UsageError, 2)
        assert "config.json" in msg, msg
        assert snapshot(run) == before
    res = cli(["train", "--resume", copy_run(finished, tmp_path / "w"), "--steps", 3, "--workers", -1, "-q"])
    assert "--workers" in one_line(res, UsageError, 2)


def test_resume_refuses_options_it_would_ignore(tmp_path, finished):
    run = copy_run(finished, tmp_path / "run")
    for extra in (["--lr", "1e-5"], ["--run-dir", tmp_path / "other"], ["--batch-size", "4"]):
        res = cli(["train", "--resume", run, "--steps", 3, "-q", *extra])
        assert extra[0] in one_line(res, UsageError, 2)
    assert not (tmp_path / "other").exists()


# ------------------------------------------------------------------------ 2. checkpoint damage
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    mid = len(data) // 2
    damaged = {"truncated": data[:mid], "empty": b"", "not-a-zip": b"hello" * 100,
               "overwritten": data[:mid] + bytes(range(256)) * 16 + data[mid + 4096:]}[how]
    path.write_bytes(damaged)


@pytest.mark.parametrize("how", ["truncated", "empty", "not-a-zip", "overwritten"])
def test_damaged_checkpoint_is_a_weights_error(tmp_path, finished, how):
    run = copy_run(finished, tmp_path / "run")
    _damage(run / "checkpoint.pt", how)
    before = snapshot(run)
    msg = one_line(cli(["train", "--resume", run, "--steps", 3, "-q"]), WeightsError, 6)
    assert str(run / "checkpoint.pt") in msg and "start a new run" in msg, msg
    assert snapshot(run) == before  # metrics, config, generator untouched


def test_checkpoint_carries_a_checksum_of_its_content(finished):
    ck = torch.load(finished / "checkpoint.pt", weights_only=True)
    stored = ck.pop(CHECKSUM_KEY)
    assert stored == trainer.content_digest(ck) and len(stored) == 64
    assert read_checkpoint(finished / "checkpoint.pt")["step"] == 2


def test_old_checkpoint_without_checksum_still_resumes(tmp_path, finished):
    run = copy_run(finished, tmp_path / "run")
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    del ck[CHECKSUM_KEY]
    torch.save(ck, run / "checkpoint.pt")
    res = cli(["train", "--resume", run, "--steps", 3, "-q"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 3
    # damaged and without checksum: still the one-line error, whatever the loader raises
    old = copy_run(finished, tmp_path / "old")
    ck = torch.load(old / "checkpoint.pt", weights_only=True)
    del ck[CHECKSUM_KEY]
    ck["generator"] = {"nonsense": torch.zeros(1)}
    torch.save(ck, old / "checkpoint.pt")
    assert "checkpoint" in one_line(cli(["train", "--resume", old, "--steps", 3, "-q"]), WeightsError, 6)


def test_damaged_init_weights_are_a_weights_error(tmp_path, davis, finished):
    good = finished / "generator.safetensors"
    nan = tmp_path / "nan.safetensors"
    data = good.read_bytes()
    mid = len(data) // 2
    nan.write_bytes(data[:mid] + b"\xff" * 4096 + data[mid + 4096:])  # loads, but as NaN weights
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 3])
    folder = tmp_path / "weights"
    folder.mkdir()
    for init in (nan, cut, folder):
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--init", init, "--run-dir", tmp_path / "r")))
        assert str(init) in one_line(res, WeightsError, 6)
        assert not (tmp_path / "r").exists()


def test_damaged_vgg_file_is_an_error_and_writes_nothing(tmp_path, davis):
    vgg = tmp_path / "vgg16.pth"
    vgg.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    for given in (vgg, tmp_path):  # a damaged file, a folder
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--vgg", given)))
        assert "--vgg" in one_line(res, WeightsError, 6)
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------- 3. where the run folder goes
def _unwritable(monkeypatch, folder: Path) -> None:
    """``folder`` read-only (root ignores mode bits, so os.access is told as well)."""
    folder.chmod(0o555)
    if AS_ROOT:
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p).absolute() == folder.absolute()
                            and mode & os.W_OK else real(p, mode, **kw))


def test_read_only_folders_are_output_errors(tmp_path, davis, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    _unwritable(monkeypatch, ro)
    try:
        monkeypatch.chdir(ro)  # default runs/train-<time> in a read-only current folder
        msg = one_line(cli(base_args(tmp_path, davis, extra=("--steps", "1"))), OutputError, 5)
        assert "cannot create runs/train-" in msg and "choose --run-dir in a writable folder" in msg, msg
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--run-dir", ro / "a" / "run")))
        assert "choose --run-dir in a writable folder" in one_line(res, OutputError, 5)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
    (tmp_path / "file").write_text("mine")
    for run_dir in (tmp_path / "file", tmp_path / "file" / "run"):
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--run-dir", run_dir)))
        assert str(run_dir) in one_line(res, OutputError, 5)
    assert (tmp_path / "file").read_text() == "mine"


def test_never_writes_into_the_dataset(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=2, T=3)
    before = snapshot(root)
    for flag, path in [("--run-dir", root), ("--run-dir", root / "JPEGImages" / "run"), ("--run-dir", tmp_path),
                       ("--flow-cache", root / "cache"), ("--flow-cache", tmp_path)]:
        extra = ("--steps", "1", flag, path) + (("--run-dir", tmp_path / "r") if flag == "--flow-cache" else ())
        msg = one_line(cli(base_args(tmp_path, root, extra=extra)), OutputError, 5)
        assert flag in msg and "dataset" in msg, msg
    (tmp_path / "cache-file").write_text("x")
    res = cli(base_args(tmp_path, root, extra=("--steps", "1", "--flow-cache", tmp_path / "cache-file",
                                               "--run-dir", tmp_path / "r")))
    assert "--flow-cache" in one_line(res, OutputError, 5)
    assert snapshot(root) == before and not (tmp_path / "r").exists()


def test_new_run_refuses_a_folder_with_an_earlier_run(tmp_path, davis):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("step\n1\n")
    res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--run-dir", run)))
    assert "metrics.csv" in one_line(res, OutputError, 5)
    assert (run / "metrics.csv").read_text() == "step\n1\n"


def test_second_run_on_a_locked_folder_is_refused(tmp_path, finished, davis):
    run = copy_run(finished, tmp_path / "run")
    busy = tmp_path / "busy"  # a new run's folder, made by a run that has not written yet
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    fds = [os.open(folder, os.O_RDONLY) for folder in (run, busy)]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running tsam train holds it
        before = snapshot(run)
        res = cli(["train", "--resume", run, "--steps", 3, "-q"])
        assert "another tsam train" in one_line(res, OutputError, 5)
        assert snapshot(run) == before
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--no-perceptual", "--run-dir", busy)))
        assert "another tsam train" in one_line(res, OutputError, 5)
        assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    finally:
        for fd in fds:
            os.close(fd)


# ----------------------------------------------------- 4. failed runs leave nothing behind
def test_dataset_error_leaves_no_run_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    for extra in ((), ("--run-dir", tmp_path / "a" / "b" / "run")):
        res = cli(base_args(tmp_path, tmp_path / "empty", extra=("--steps", "1", *extra)))
        one_line(res, DatasetError, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "tiny.json"]


def _failing_step(monkeypatch, at: int, exc: BaseException) -> None:
    """train_step raises ``exc`` on its call number ``at`` (1-based)."""
    real, calls = trainer.train_step, []

    def step(*args, **kw):
        calls.append(1)
        if len(calls) == at:
            raise exc
        return real(*args, **kw)

    monkeypatch.setattr(trainer, "train_step", step)


def test_failure_before_first_checkpoint_removes_only_what_the_run_wrote(tmp_path, davis, monkeypatch):
    _failing_step(monkeypatch, 2, RuntimeError("boom"))
    new = tmp_path / "a" / "b" / "run"
    with pytest.raises(RuntimeError, match="boom"):
        train(tiny_cfg(davis, ckpt_every=5, steps=3), new)
    assert not (tmp_path / "a").exists()  # the run folder and the parents it made
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    cache = tmp_path / "cache"
    _failing_step(monkeypatch, 2, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        train(tiny_cfg(davis, ckpt_every=5, steps=3, flow_cache=str(cache)), mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert any(cache.rglob("*.npz")), "a shared flow cache keeps what it computed"


# -------------------------------------------------------------------------------- 5. signals
def test_signal_reports_the_checkpoint_on_disk_and_resumes(tmp_path, davis, monkeypatch):
    run = tmp_path / "run"
    _failing_step(monkeypatch, 4, Signalled(15))  # during step 4; the checkpoint is step 2
    with pytest.raises(Interrupted) as info:
        train(tiny_cfg(davis, steps=5, ckpt_every=2), run)
    msg = str(info.value)
    assert info.value.exit_code == 143 and "\n" not in msg
    assert msg == (f"interrupted at step 3: the last checkpoint is {run / 'checkpoint.pt'} (step 2); "
                   f"resume with tsam train --resume {run}")
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 2
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    res = cli(["train", "--resume", run, "-q"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 5


def test_signal_before_the_first_checkpoint_removes_the_run(tmp_path, davis, monkeypatch):
    _failing_step(monkeypatch, 2, KeyboardInterrupt())
    with pytest.raises(Interrupted) as info:
        train(tiny_cfg(davis, steps=3, ckpt_every=5), tmp_path / "run")
    assert info.value.exit_code == 130 and "before the first checkpoint" in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["before-rename", "inside-torch-save"])
def test_signal_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, davis, monkeypatch, where):
    run, writes = tmp_path / "run", []
    if where == "before-rename":  # the new checkpoint is complete in its temporary
        def pause(name):
            if name == "train-write-checkpoint":
                writes.append(1)
                if len(writes) == 2:
                    raise Signalled(2)
        monkeypatch.setattr(trainer.hooks, "pause_point", pause)
    else:  # half a file written
        real_save = torch.save

        def save(obj, f, *a, **kw):
            writes.append(1)
            if len(writes) == 2:
                Path(f).write_bytes(b"PK\x03\x04half")
                raise Signalled(15)
            return real_save(obj, f, *a, **kw)
        monkeypatch.setattr(torch, "save", save)
    with pytest.raises(Interrupted) as info:
        train(tiny_cfg(davis, steps=3, ckpt_every=1), run)
    assert "the last checkpoint is" in str(info.value) and "(step 1)" in str(info.value)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "flow_cache", "metrics.csv",
                                                    "samples"]  # no temporary
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 1


def test_signal_while_caching_flow_leaves_no_temporary(tmp_path, monkeypatch):
    import numpy as np

    from tsam_cli.train import data as train_data

    def savez(path, **arrays):
        Path(path).write_bytes(b"PK\x03\x04half")
        raise Signalled(15)

    monkeypatch.setattr(train_data.np, "savez", savez)
    cache = train_data.FlowCache(tmp_path / "cache")
    img = np.zeros((16, 24, 3), np.uint8)
    with pytest.raises(Signalled):
        cache.pair("v", 0, 1, img, img, (24, 16))
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_sigterm_at_the_checkpoint_write_in_a_real_process(tmp_path, davis):
    """The console entry point, a real SIGTERM while the first checkpoint waits to be renamed."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    run = tmp_path / "run"
    script = tmp_path / "entry.py"  # tsam's own entry: handlers installed, errors as one line
    script.write_text("from tsam_cli.entry import run\nif __name__ == '__main__':\n    run()\n")
    args = base_args(tmp_path, davis, extra=("--steps", "2", "--run-dir", str(run), "--no-perceptual"))
    env = dict(sub_env(), TSAM_TEST_PAUSE_AT="train-write-checkpoint", TSAM_TEST_PAUSE_DIR=str(hooks))
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(hooks / "train-write-checkpoint.paused", proc)
        assert (run / "checkpoint.tmp.pt").is_file()
        proc.terminate()
        (hooks / "train-write-checkpoint.resume").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.count("\n") == 1 and err.startswith("error: interrupted at step 2, before the first checkpoint"), err
    assert not run.exists()


def _wait_for(path: Path, proc) -> None:
    """Until the child reached its pause point (or died: then fail with its stderr). The
    deadline is a safety net only; the child gets there in seconds."""
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited {proc.returncode} before {path.name}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"child never reached {path.name}"
        time.sleep(0.01)


# ------------------------------------------------------------------------ 6. modes of the files
def test_run_files_get_the_umask_mode(tmp_path, davis):
    old = os.umask(0o027)
    try:
        run = tmp_path / "run"
        train(tiny_cfg(davis), run)
    finally:
        os.umask(old)
    for p in [run, *run.rglob("*")]:
        want = 0o750 if p.is_dir() else 0o640
        assert stat.S_IMODE(p.stat().st_mode) == want, (p, oct(p.stat().st_mode))


# --------------------------------------------------------------- 7. resume cannot go backwards
def test_resume_below_the_current_step_is_a_usage_error(tmp_path, finished):
    run = copy_run(finished, tmp_path / "run")
    before = snapshot(run)
    msg = one_line(cli(["train", "--resume", run, "--steps", 1, "-q"]), UsageError, 2)
    assert "already at step 2" in msg and "--steps above 2" in msg, msg
    assert "already at step 2" in one_line(cli(["train", "--resume", run, "--epochs", 1, "-q"]), UsageError, 2)
    assert snapshot(run) == before
    res = cli(["train", "--resume", run, "--steps", 2, "-q"])  # the same total only exports G again
    assert res.exit_code == 0, res.output + repr(res.exception)


# ------------------------------------------------------------------------- 8. torchrun variables
@pytest.mark.parametrize("env,name", [({"RANK": "abc"}, "RANK"), ({"WORLD_SIZE": "0"}, "WORLD_SIZE"),
                                      ({"WORLD_SIZE": "abc"}, "WORLD_SIZE"), ({"LOCAL_RANK": "-1"}, "LOCAL_RANK"),
                                      ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK")])
def test_bad_torchrun_variables_are_usage_errors(tmp_path, davis, monkeypatch, env, name):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for extra in ((), ("--run-dir", tmp_path / "r")):  # default run dir (CLI), given (setup_distributed)
        res = cli(base_args(tmp_path, davis, extra=("--steps", "1", "--no-perceptual", *extra)))
        assert f"{name}=" in one_line(res, UsageError, 2)
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()
