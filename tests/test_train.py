"""Training: data, losses, VGG loader, the loop, resume after a kill, flow cache, torchrun."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from cli_helpers import wait_for
from conftest import translating_video
from typer.testing import CliRunner

from tsam_cli.cli.train import train_command
from tsam_cli.errors import DatasetError, WeightsError
from tsam_cli.train import losses as L
from tsam_cli.train.data import ClipDataset, VideoSource, discover, flip_flow, read_split, resize_flow
from tsam_cli.train.vgg import VGG16_CFG, VGG16Features, load_vgg16

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).parents[1].parent / "shared"
needs_shared = pytest.mark.skipif(
    not (SHARED / "data" / "bmx-trees" / "frames").is_dir() or not (SHARED / "data" / "train").is_dir(),
    reason="../shared/data (bmx-trees frames and train clips) is not present",
)

#: A very small generator (same design as COMPACT): fast enough for many CPU steps.
TINY = {"name": "tiny", "stem_width": 8, "widths": [4, 8, 8, 8], "depths": [1, 1, 1, 1], "decoder_width": 16}

app = typer.Typer(pretty_exceptions_enable=False)
app.command("train")(train_command)


@app.command("version")
def _version() -> None:  # a second command keeps "train" a sub-command
    pass


runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp_folder(tmp_path, monkeypatch):
    """Every test runs in its own folder: a run without --run-dir writes runs/ there, never
    in the repository."""
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------------------------- fixtures
def _write_frames(folder: Path, frames: np.ndarray) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def synthetic_davis(root: Path, n_videos: int = 3, T: int = 6, h: int = 48, w: int = 80) -> Path:
    """DAVIS layout with translating textures (no ../shared needed)."""
    for k in range(n_videos):
        _write_frames(root / "JPEGImages" / "480p" / f"synth-{k}", translating_video(T, h, w, dx=1 + k, dy=1, seed=k))
    return root


def real_davis(root: Path, T: int = 5) -> Path:
    """DAVIS layout from the first frames of bmx-trees and two ../shared/data/train clips."""
    import cv2

    clips = [SHARED / "data" / "bmx-trees" / "frames", SHARED / "data" / "train" / "sam2_dog_park",
             SHARED / "data" / "train" / "samtrack_blackswan"]
    for c in clips:
        files = sorted(p for p in c.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:T]
        imgs = []
        for f in files:
            img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            imgs.append(cv2.resize(img, (96, 56), interpolation=cv2.INTER_AREA))
        _write_frames(root / "JPEGImages" / "480p" / c.name if c.name != "frames" else root / "JPEGImages" / "480p" / c.parent.name, np.stack(imgs))
    return root


def tiny_json(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    return p


def base_args(tmp_path: Path, root: Path, dataset: str = "davis", extra: tuple = ()) -> list[str]:
    return ["train", "--dataset", dataset, "--root", str(root), "--split", "all",
            "--model", str(tiny_json(tmp_path)), "--size", "64x32", "--frames", "3",
            "--batch-size", "2", "--workers", "0", "--device", "cpu", "-q", *extra]


def read_metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def weights_of(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def random_vgg_file(path: Path, with_classifier: bool = True) -> Path:
    """A random VGG-16 file with torchvision's key names (classifier tensors shrunk: the real
    ones are 123 M values, and the loader only checks their names)."""
    g = torch.Generator().manual_seed(0)
    state, idx, c_in = {}, 0, 3
    for v in VGG16_CFG:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, c_in, 3, 3, generator=g) * math.sqrt(2 / (9 * c_in))
        state[f"features.{idx}.bias"] = torch.zeros(v)
        c_in, idx = v, idx + 2
    if with_classifier:
        for i in (0, 3, 6):
            state[f"classifier.{i}.weight"] = torch.zeros(4, 4)
            state[f"classifier.{i}.bias"] = torch.zeros(4)
    torch.save(state, path)
    return path


# ------------------------------------------------------------------------------ (a) CLI runs
def test_train_cli_synthetic_few_steps(tmp_path):
    root = synthetic_davis(tmp_path / "davis")
    run = tmp_path / "run"
    vgg = random_vgg_file(tmp_path / "vgg16.pth")
    res = runner.invoke(app, base_args(tmp_path, root, extra=(
        "--steps", "4", "--stage1-steps", "2", "--run-dir", str(run), "--vgg", str(vgg),
        "--sample-every", "2", "--ckpt-every", "2")))
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["stage"]) for r in rows] == [1, 1, 2, 2]
    for r in rows:
        for k in ("loss", "l1", "hole", "perceptual", "style", "gan_g", "gan_d"):
            assert math.isfinite(float(r[k])), (k, r)
        assert float(r["perceptual"]) > 0 and float(r["style"]) > 0
    assert float(rows[0]["hole"]) == 0 and float(rows[0]["gan_g"]) == 0   # stage 1
    assert float(rows[3]["hole"]) > 0 and float(rows[3]["gan_d"]) > 0     # stage 2
    assert (run / "generator.safetensors").is_file() and (run / "checkpoint.pt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["frames"] == 3 and cfg["model_config"]["name"] == "tiny"

    from tsam_cli.model.tsam_format import load_generator

    g = load_generator(run / "generator.safetensors")
    assert g.config.stem_width == 8


@needs_shared
def test_train_cli_real_frames(tmp_path):
    root = real_davis(tmp_path / "davis")
    run = tmp_path / "run"
    res = runner.invoke(app, base_args(tmp_path, root, extra=(
        "--steps", "3", "--run-dir", str(run), "--no-perceptual", "--sample-every", "0", "--gan", "hinge")))
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = read_metrics(run)
    assert len(rows) == 3 and all(math.isfinite(float(r["loss"])) for r in rows)


def test_overfit_single_batch():
    """~30 steps on one repeated batch: the reconstruction loss must fall clearly."""
    from tsam_cli.model import TSAMGenerator
    from tsam_cli.model.config import ModelConfig

    torch.manual_seed(0)
    frames = translating_video(3, 32, 64, dx=2, dy=1, seed=3)
    src = _MemSource("mem", frames)
    ds = ClipDataset([src], frames=3, size=(64, 32), seed=0, max_scale=1.0)
    item = ds[(0, 0)]
    batch = {k: v.unsqueeze(0) for k, v in item.items()}
    flows = {k: batch[k] for k in ("forward", "backward", "forward_valid", "backward_valid")}
    g = TSAMGenerator(ModelConfig.from_dict(TINY)).train()
    opt = torch.optim.Adam(g.parameters(), lr=3e-3)
    hist = []
    for _ in range(30):
        out = g(batch["frames"], batch["masks"], flows, clamp=False)
        loss = L.l1_all(out, batch["frames"]) + 6 * L.l1_hole(out, batch["frames"], batch["masks"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    print("overfit loss", [round(v, 4) for v in hist[::5]], round(hist[-1], 4))
    assert all(math.isfinite(v) for v in hist)
    assert min(hist[-5:]) < 0.5 * hist[0], hist


class _MemSource(VideoSource):
    """A VideoSource holding its frames in memory."""

    def __init__(self, name, frames):
        super().__init__(name, len(frames))
        self._f = frames

    def read(self, indices):
        return [self._f[i] for i in indices]


# --------------------------------------------------------------------------- (b) resume
LAUNCHER = """import typer
from tsam_cli.cli.train import train_command
app = typer.Typer(pretty_exceptions_enable=False)
app.command("train")(train_command)
@app.command("version")
def _version():
    pass
if __name__ == "__main__":  # data-loader workers re-import this file
    app()
"""


def launcher(tmp_path: Path) -> Path:
    """A script with a Typer app that mounts the train command (for subprocesses)."""
    p = tmp_path / "launch_tsam.py"
    p.write_text(LAUNCHER)
    return p


def sub_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _kill_at(point: str, cmd: list[str], tmp_path: Path) -> None:
    """Run the train command ``cmd`` as a child, SIGKILL it once it waits at the pause point
    ``point`` (tsam_cli.hooks) and wait for it: the kill lands at that exact moment."""
    hooks = tmp_path / f"hooks-{point}"
    hooks.mkdir()
    env = dict(sub_env(), TSAM_TEST_PAUSE_AT=point, TSAM_TEST_PAUSE_DIR=str(hooks))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(hooks / f"{point}.paused", proc)
        proc.kill()  # SIGKILL: no handler, no clean-up, as a power cut or the OOM killer
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _saved_step(run: Path) -> int:
    return int(torch.load(run / "checkpoint.pt", weights_only=True)["step"])


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    """A SIGKILL at two exact moments, then a resume, ends with the generator and the metrics
    of an uninterrupted run: (1) between checkpoints, at step 3's sample: checkpoint 2 on disk
    and metrics.csv one row ahead of it; (2) in the resumed run's first checkpoint write: the
    new checkpoint complete in its temporary, not yet renamed over step 2's."""
    root = synthetic_davis(tmp_path / "davis", n_videos=4)
    n = 6
    train_args = ("--steps", str(n), "--stage1-steps", "2", "--no-perceptual", "--sample-every", "3",
                  "--ckpt-every", "1")
    full = tmp_path / "full"
    res = runner.invoke(app, base_args(tmp_path, root, extra=(*train_args, "--run-dir", str(full))))
    assert res.exit_code == 0, res.output + repr(res.exception)

    part = tmp_path / "part"
    script = str(launcher(tmp_path))
    _kill_at("train-write-step_0000003", [sys.executable, script, *base_args(
        tmp_path, root, extra=(*train_args, "--run-dir", str(part)))], tmp_path)
    assert _saved_step(part) == 2 and [int(r["step"]) for r in read_metrics(part)] == [1, 2, 3]
    resume = ["train", "--resume", str(part), "--steps", str(n), "-q"]
    _kill_at("train-write-checkpoint", [sys.executable, script, *resume, "--workers", "0"], tmp_path)
    assert _saved_step(part) == 2 and (part / "checkpoint.tmp.pt").is_file()

    res = runner.invoke(app, [*resume, "--workers", "1"])  # another worker count: the same batches
    assert res.exit_code == 0, res.output + repr(res.exception)
    a, b = weights_of(full / "generator.safetensors"), weights_of(part / "generator.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=1e-5), k
    # metrics continue without duplicates; the killed runs' temporaries were replaced
    assert [int(r["step"]) for r in read_metrics(part)] == list(range(1, n + 1))
    assert not list(part.rglob("*.tmp*"))


def test_resume_to_more_steps_equals_long_run(tmp_path):
    root = synthetic_davis(tmp_path / "davis")
    runs = {}
    for name, plan in (("long", [6]), ("split", [3, 6])):
        run = tmp_path / name
        for i, steps in enumerate(plan):
            if i == 0:
                args = base_args(tmp_path, root, extra=("--steps", str(steps), "--stage1-steps", "2",
                                                        "--run-dir", str(run), "--no-perceptual",
                                                        "--sample-every", "0", "--ckpt-every", "100"))
            else:
                args = ["train", "--resume", str(run), "--steps", str(steps), "-q", "--workers", "0"]
            res = runner.invoke(app, args)
            assert res.exit_code == 0, res.output + repr(res.exception)
        runs[name] = weights_of(run / "generator.safetensors")
    for k in runs["long"]:
        assert torch.allclose(runs["long"][k].float(), runs["split"][k].float(), atol=1e-6, rtol=1e-5), k


# ------------------------------------------------------------------------ (c) distributed
@pytest.mark.slow
def test_torchrun_two_processes_cpu(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=4)
    run = tmp_path / "ddp"
    script = launcher(tmp_path)
    args = base_args(tmp_path, root, extra=("--steps", "2", "--run-dir", str(run), "--no-perceptual",
                                            "--sample-every", "1"))
    env = dict(sub_env(), OMP_NUM_THREADS="1")
    # --standalone: the rendezvous on a free port (a fixed one collides with a parallel run)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), *args],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert [int(r["step"]) for r in read_metrics(run)] == [1, 2]
    assert (run / "generator.safetensors").is_file()


# ------------------------------------------------------------------------- (d) bad inputs
def _one_line_dataset_error(res) -> str:
    assert isinstance(res.exception, DatasetError), (res.output, repr(res.exception))
    msg = str(res.exception)
    assert "\n" not in msg and msg
    return msg


def test_missing_root(tmp_path):
    res = runner.invoke(app, base_args(tmp_path, tmp_path / "nope", extra=("--steps", "1")))
    assert "does not exist" in _one_line_dataset_error(res)


def test_wrong_layout(tmp_path):
    (tmp_path / "davis" / "JPEGImages").mkdir(parents=True)
    res = runner.invoke(app, base_args(tmp_path, tmp_path / "davis", extra=("--steps", "1")))
    assert "JPEGImages/480p/<sequence>" in _one_line_dataset_error(res)
    (tmp_path / "yt").mkdir()
    res = runner.invoke(app, base_args(tmp_path, tmp_path / "yt", dataset="youtube-vos", extra=("--steps", "1")))
    assert "train/JPEGImages/<video id>" in _one_line_dataset_error(res)
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, base_args(tmp_path, tmp_path / "empty", dataset="folder", extra=("--steps", "1")))
    assert "no videos found" in _one_line_dataset_error(res)


def test_too_short_videos(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=2, T=2)
    res = runner.invoke(app, base_args(tmp_path, root, extra=("--steps", "1")))
    assert "fewer than 3 frames" in _one_line_dataset_error(res)
    # one long enough video: trains, with a warning naming the skipped one
    _write_frames(root / "JPEGImages" / "480p" / "long", translating_video(5, 48, 80))
    _write_frames(root / "JPEGImages" / "480p" / "long2", translating_video(5, 48, 80, seed=9))
    with pytest.warns(UserWarning, match="shorter than 3 frames"):
        srcs = discover("davis", root, "all")
        ClipDataset(srcs, frames=3, size=(64, 32))


def test_davis_paper_split_file():
    names = read_split("davis_train")
    assert len(names) == 60 and len(set(names)) == 60
    assert "schoolgirls" in names and "bmx-trees" not in names  # bmx-trees is a DAVIS train video


def test_davis_paper_split_missing_sequences(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=1)
    with pytest.raises(DatasetError, match="--split all"):
        discover("davis", root, "paper")


# ------------------------------------------------------------------------------- (e) VGG
def test_vgg_loads_torchvision_layout(tmp_path):
    path = random_vgg_file(tmp_path / "vgg16-397923af.pth")
    vgg = load_vgg16(path)
    feats = vgg(torch.rand(2, 3, 32, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 64), (128, 16, 32), (256, 8, 16), (512, 4, 8)]
    assert not any(p.requires_grad for p in vgg.parameters())
    assert set(VGG16Features().features.state_dict()) == {
        k[len("features."):] for k in torch.load(path, weights_only=True) if k.startswith("features.")}
    # features-only files are fine; a wrong shape or a foreign key is a one-line WeightsError
    random_vgg_file(tmp_path / "f.pth", with_classifier=False)
    load_vgg16(tmp_path / "f.pth")
    bad = torch.load(path, weights_only=True)
    bad["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsError):
        load_vgg16(tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="not found"):
        load_vgg16(tmp_path / "missing.pth")


def test_missing_vgg_warns_and_trains(tmp_path):
    root = synthetic_davis(tmp_path / "davis")
    run = tmp_path / "run"
    res = runner.invoke(app, base_args(tmp_path, root, extra=(
        "--steps", "2", "--run-dir", str(run), "--vgg", str(tmp_path / "no-vgg.pth"), "--sample-every", "0")))
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "without the perceptual and style losses" in res.output.lower()
    rows = read_metrics(run)
    assert len(rows) == 2 and all(float(r["perceptual"]) == 0 for r in rows)


def test_losses_values():
    pred = torch.zeros(1, 2, 3, 4, 4)
    target = torch.ones(1, 2, 3, 4, 4)
    hole = torch.zeros(1, 2, 1, 4, 4)
    hole[..., :2, :] = 1
    assert L.l1_all(pred, target).item() == 1.0
    assert L.l1_hole(pred, target, hole).item() == 0.5  # official: mean over all values
    s = torch.full((2, 3), 0.5)
    assert L.gan_g_loss("lsgan", s).item() == pytest.approx(0.25)
    assert L.gan_d_loss("lsgan", s, s).item() == pytest.approx(0.25)
    assert L.gan_d_loss("hinge", torch.ones(3), -torch.ones(3)).item() == 0.0
    assert L.disc_input(pred, hole).shape == (1, 2, 5, 4, 4)
    f = torch.rand(2, 8, 5, 5)
    gm = L.gram(f)
    assert gm.shape == (2, 8, 8) and torch.allclose(gm, gm.transpose(1, 2))


# ------------------------------------------------------------------------ (f) flow cache
def test_flow_cache_second_epoch_does_not_recompute(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=2, T=3)
    srcs = discover("davis", root, "all")
    cache = tmp_path / "cache"
    ds = ClipDataset(srcs, frames=3, size=(64, 32), seed=1, flow_cache=cache)
    first = [ds[(0, i)] for i in range(len(ds))]
    assert ds.flows.computed == 4  # 2 videos x 2 pairs
    second = [ds[(1, i)] for i in range(len(ds))]
    assert ds.flows.computed == 4  # epoch 2: all cache hits (other crops/flips, same pairs)
    again = ClipDataset(srcs, frames=3, size=(64, 32), seed=1, flow_cache=cache)
    redo = [again[(0, i)] for i in range(len(again))]
    assert again.flows.computed == 0
    for a, b in zip(first, redo, strict=True):  # a cache hit gives exactly what the first computation gave
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert len(second) == 2
    assert not list(cache.rglob("*.tmp*"))


def test_flow_follows_flip_and_resize():
    frames = translating_video(3, 48, 80, dx=2, dy=1, seed=5)  # true flow t->t+1 = (-2, -1)
    src = _MemSource("mem", frames)
    ds = ClipDataset([src], frames=3, size=(80, 48), seed=0, max_scale=1.0, max_stride=1)
    seen = set()
    for epoch in range(12):
        sp = ds.spec(epoch, 0)
        item = ds[(epoch, 0)]
        fwd = item["forward"][:, :, 8:-8, 8:-8]
        dx, dy = fwd[:, 0].median().item(), fwd[:, 1].median().item()
        assert dy == pytest.approx(-1, abs=0.3)
        assert dx == pytest.approx(2 if sp.flip else -2, abs=0.3), (epoch, sp.flip)
        seen.add(sp.flip)
    assert seen == {True, False}
    f = np.zeros((4, 6, 2), np.float32)
    f[..., 0], f[..., 1] = 1.5, -1
    assert np.allclose(flip_flow(f)[..., 0], -1.5)
    r = resize_flow(f, 12, 8)
    assert r.shape == (8, 12, 2) and np.allclose(r[..., 0], 3.0) and np.allclose(r[..., 1], -2.0)


def test_same_seed_same_batches(tmp_path):
    root = synthetic_davis(tmp_path / "davis", n_videos=2, T=6)
    srcs = discover("davis", root, "all")
    a = ClipDataset(srcs, frames=3, size=(64, 32), seed=4, with_flow=False)
    b = ClipDataset(srcs, frames=3, size=(64, 32), seed=4, with_flow=False)
    c = ClipDataset(srcs, frames=3, size=(64, 32), seed=5, with_flow=False)
    x, y, z = a[(2, 1)], b[(2, 1)], c[(2, 1)]
    assert torch.equal(x["frames"], y["frames"]) and torch.equal(x["masks"], y["masks"])
    assert not (torch.equal(x["frames"], z["frames"]) and torch.equal(x["masks"], z["masks"]))
