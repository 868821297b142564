"""The TSAM training loop: one flat function, :func:`train`, in the spirit of nanoGPT's train.py.

Schedule (paper §4.2 "Training Details"):
  * stage 1 (``step < stage1_steps``): L1 on all pixels (λ 1) + perceptual (λ 1) + style (λ 2);
  * stage 2: + L1 in the holes (λ 6) + temporal PatchGAN (λ 0.1); the discriminator is
    trained only in stage 2. ``stage1_steps = 0`` is the DAVIS fine-tuning recipe.
Optimiser: Adam with amsgrad, weight decay 0, and a StepLR (x0.97 every 1000 epochs), the
official settings (src/config/config_flow_*.json "optimizer", "lr_scheduler"; the scheduler
steps once per epoch, src/trainer/trainer.py:521-522). The discriminator has its own Adam
with the same settings (src/train.py:84-93).

Run directory::

    RUN_DIR/config.json            TrainConfig (what --resume reads back)
    RUN_DIR/metrics.csv            step, epoch, stage, every loss term, lr, it/s (rank 0's batch)
    RUN_DIR/samples/step_N.png     rows: input with holes, output, ground truth
    RUN_DIR/checkpoint.pt          model + optimisers + schedulers + scaler + RNG + data position
    RUN_DIR/generator.safetensors  final generator (tsam_cli.official.save_generator)
    RUN_DIR/flow_cache/            cached optical flow (default location)

Checkpoints are written to a temporary file and moved in place with ``os.replace``, so a kill
at any moment leaves the previous or the new checkpoint, never a broken one. Every random
choice of a sample is a function of (seed, epoch, index) and the checkpoint stores the
position inside the epoch, so ``--resume`` reproduces the uninterrupted run.

Distributed: started by ``torchrun`` (``WORLD_SIZE`` > 1) the loop uses NCCL on CUDA or gloo
on CPU, DistributedDataParallel for G and D, and a rank-split sampler; rank 0 logs and writes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import DatasetError, UsageError, WeightsError
from . import losses as L
from .data import ClipDataset, EpochSampler, discover, worker_init

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.csv"
GENERATOR = "generator.safetensors"
METRIC_FIELDS = ["step", "epoch", "stage", "loss", "l1", "hole", "perceptual", "style",
                 "gan_g", "gan_d", "lr", "it_s"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``RUN_DIR/config.json``)."""

    dataset: str = "folder"
    root: str = ""
    split: str = "paper"                 # davis only: paper (60 videos) | all
    model: str = "compact"               # preset name; ignored when model_config is set
    model_config: Optional[dict] = None  # a ModelConfig dict (custom sizes, or from --init)
    width: int = 432                     # official training size 432x240 (docs/official-checkpoint.md fact 11)
    height: int = 240
    frames: int = 7                      # official sample_length 7 (docs/official-checkpoint.md fact 11)
    batch_size: int = 8                  # official batch_size 8 (DAVIS_all_masks_flow.json)
    steps: int = 0                       # total optimiser steps (0: use epochs)
    epochs: int = 0
    stage1_steps: int = 0
    lr: float = 1e-4
    betas: tuple = (0.9, 0.999)
    amsgrad: bool = True
    lr_gamma: float = 0.97
    lr_step_epochs: int = 1000
    seed: int = 0
    init: Optional[str] = None
    vgg: Optional[str] = "vgg16-imagenet"
    perceptual: bool = True
    vgg_normalize: bool = True
    gan: str = "lsgan"
    d_nf: int = 64
    w_l1: float = 1.0
    w_hole: float = 6.0
    w_perceptual: float = 1.0
    w_style: float = 2.0
    w_gan: float = 0.1
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "bf16"              # bf16 | fp16 (fp16 adds GradScaler)
    grad_clip: float = 0.0               # max global grad norm; 0 = off (official: off)
    sample_every: int = 500
    ckpt_every: int = 500
    flow_cache: Optional[str] = None
    flow_method: str = "dis"
    max_stride: int = 3
    max_scale: float = 1.25
    quiet: bool = False

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"unknown training config keys: {', '.join(unknown)}")
        d = dict(data)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


# ------------------------------------------------------------------------------ small helpers
def _warn(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors / plain types (weights_only-loadable)."""
    py = random.getstate()
    np_name, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_gauss), "cached": float(np_cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda but no CUDA GPU is available: use --device cpu")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise UsageError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device("cpu")


def _build_generator(cfg: TrainConfig, resume: bool = False):
    from ..model import TSAMGenerator, get_preset
    from ..model.config import ModelConfig
    from ..official import load_generator

    if cfg.init and not (resume and cfg.model_config):  # on resume the checkpoint has the weights
        g = load_generator(cfg.init)  # raises WeightsError
        cfg.model_config = g.config.to_dict()
        return g.train()
    if cfg.model_config:
        mc = ModelConfig.from_dict(cfg.model_config)
    else:
        try:
            mc = get_preset(cfg.model)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        cfg.model_config = mc.to_dict()
    return TSAMGenerator(mc).train()


def _load_vgg(cfg: TrainConfig, rank: int):
    if not cfg.perceptual or (cfg.w_perceptual == 0 and cfg.w_style == 0):
        return None
    from .. import weights
    from .vgg import load_vgg16

    try:
        path = weights.resolve(cfg.vgg or "vgg16-imagenet")
        return load_vgg16(path, normalize=cfg.vgg_normalize)
    except WeightsError as exc:
        _warn(f"{exc} -> training WITHOUT the perceptual and style losses "
              f"(--no-perceptual silences this warning)", rank)
        return None


def _save_sample(path: Path, frames, masks, out) -> None:
    """One PNG: rows = input with grey holes, output, ground truth; columns = frames."""
    import cv2

    f, m, o = frames[0].float().cpu(), masks[0].float().cpu(), out[0].detach().float().cpu()
    shown = f * (1 - m) + 0.5 * m
    rows = [torch.cat(list(x), dim=2) for x in (shown, o.clamp(0, 1), f)]  # (3, H, T*W)
    img = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    os.replace(tmp, path)


def _trim_metrics(path: Path, last_step: int) -> None:
    """After a resume: drop rows logged after the checkpoint (they will be logged again)."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if int(r["step"]) <= last_step]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        w.writeheader()
        w.writerows(keep)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------- training

def _optimizer_step(opt, scaler, loss, params, grad_clip: float) -> None:
    """Backward + (optional) gradient-norm clipping + step, through the AMP grad scaler."""
    import torch

    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()

def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False) -> Path:
    """Train (or resume) a run in ``run_dir``; returns the exported generator's path."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import BatchSampler, DataLoader

    from ..model import TemporalPatchDiscriminator
    from ..official import save_generator

    run_dir = Path(run_dir)
    # ---- distributed setup (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ddp = world > 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(cfg.device, local_rank)
    if ddp:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(int(os.environ.get("LOCAL_WORLD_SIZE", world)), 1)))
    else:
        rank = 0
    master = rank == 0

    if cfg.width % 8 or cfg.height % 8:
        raise UsageError(f"--size {cfg.width}x{cfg.height}: width and height must be multiples of 8")
    if cfg.frames < 2:
        raise UsageError("--frames must be at least 2 (TSAM aligns neighbouring frames)")
    if cfg.gan not in L.GAN_KINDS:
        raise UsageError(f"--gan {cfg.gan!r}: use one of {', '.join(L.GAN_KINDS)}")
    if cfg.steps <= 0 and cfg.epochs <= 0:
        raise UsageError("give --steps or --epochs")

    ckpt_path = run_dir / CHECKPOINT
    if resume:
        if not ckpt_path.is_file():
            raise UsageError(f"--resume {run_dir}: no {CHECKPOINT} there (nothing to resume)")
    elif ckpt_path.is_file():
        raise UsageError(f"{run_dir} already holds a training run: use --resume {run_dir} or another --run-dir")
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)

    random.seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    torch.manual_seed(cfg.seed)

    # ---- data
    flow_cache = Path(cfg.flow_cache) if cfg.flow_cache else run_dir / "flow_cache"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sources = discover(cfg.dataset, Path(cfg.root), cfg.split)
        dataset = ClipDataset(
            sources, frames=cfg.frames, size=(cfg.width, cfg.height), seed=cfg.seed,
            max_stride=cfg.max_stride, max_scale=cfg.max_scale, flow_cache=flow_cache,
            flow_method=cfg.flow_method,
        )
    for w in caught:
        _warn(str(w.message), rank)
    sampler = EpochSampler(len(dataset), seed=cfg.seed, rank=rank, world=world)
    steps_per_epoch = sampler.per_rank // cfg.batch_size
    if steps_per_epoch == 0:
        raise DatasetError(
            f"{len(dataset)} usable video(s) for {world} process(es) cannot fill one batch of "
            f"{cfg.batch_size}: lower --batch-size or add videos"
        )
    total_steps = cfg.steps if cfg.steps > 0 else cfg.epochs * steps_per_epoch
    # Workers are started fresh (forkserver/spawn), not forked from this process: a fork after
    # OpenCV/OpenMP thread pools were used can deadlock the worker. They persist across epochs
    # (the epoch travels inside each sample key, so workers hold no per-epoch state).
    import multiprocessing as mp

    mp_ctx = None
    if cfg.workers > 0:
        mp_ctx = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    loader = DataLoader(
        dataset, batch_sampler=BatchSampler(sampler, cfg.batch_size, drop_last=True),
        num_workers=cfg.workers, worker_init_fn=worker_init, pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0, multiprocessing_context=mp_ctx,
    )

    # ---- models, losses, optimisers
    gen = _build_generator(cfg, resume).to(device)
    disc = None
    if cfg.w_gan > 0:
        disc = TemporalPatchDiscriminator(
            in_channels=5, nf=cfg.d_nf, use_sigmoid=cfg.gan == "lsgan", spectral_norm=True,
        ).to(device).train()
    vgg = _load_vgg(cfg, rank)
    if vgg is not None:
        vgg = vgg.to(device)
    adam = dict(lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=0.0, amsgrad=cfg.amsgrad)
    opt_g = torch.optim.Adam(gen.parameters(), **adam)
    opt_d = torch.optim.Adam(disc.parameters(), **adam) if disc is not None else None
    # StepLR counted in epochs (official steps it once per epoch)
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    sched_d = (torch.optim.lr_scheduler.StepLR(opt_d, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
               if opt_d is not None else None)
    use_amp = cfg.amp and device.type == "cuda"
    amp_dtype = torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16
    scaler_on = use_amp and amp_dtype == torch.float16
    scaler_g = torch.amp.GradScaler("cuda", enabled=scaler_on)
    scaler_d = torch.amp.GradScaler("cuda", enabled=scaler_on)

    step, epoch, batch_in_epoch = 0, 0, 0
    if resume:
        ck = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
        gen.load_state_dict(ck["generator"])
        opt_g.load_state_dict(ck["opt_g"])
        sched_g.load_state_dict(ck["sched_g"])
        scaler_g.load_state_dict(ck["scaler_g"])
        if disc is not None:
            disc.load_state_dict(ck["discriminator"])
            opt_d.load_state_dict(ck["opt_d"])
            sched_d.load_state_dict(ck["sched_d"])
            scaler_d.load_state_dict(ck["scaler_d"])
        step, epoch, batch_in_epoch = int(ck["step"]), int(ck["epoch"]), int(ck["batch_in_epoch"])
        _set_rng_state(ck["rng"])
        if master:
            _trim_metrics(run_dir / METRICS, step)
    if master:
        _atomic_write_text(run_dir / CONFIG, json.dumps(cfg.to_dict(), indent=2, sort_keys=True))

    gen_raw, disc_raw = gen, disc
    if ddp:
        ids = [device.index] if device.type == "cuda" else None
        gen = DDP(gen, device_ids=ids)
        if disc is not None:
            disc = DDP(disc, device_ids=ids)

    def save_checkpoint() -> None:
        if ddp:
            dist.barrier()
        if master:
            ck = {
                "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                "config": cfg.to_dict(), "generator": gen_raw.state_dict(),
                "opt_g": opt_g.state_dict(), "sched_g": sched_g.state_dict(),
                "scaler_g": scaler_g.state_dict(), "rng": _rng_state(),
            }
            if disc_raw is not None:
                ck.update(discriminator=disc_raw.state_dict(), opt_d=opt_d.state_dict(),
                          sched_d=sched_d.state_dict(), scaler_d=scaler_d.state_dict())
            # the config is plain JSON types except tuples: store as JSON text
            ck["config"] = json.dumps(ck["config"])
            _atomic_torch_save(ck, ckpt_path)
        if ddp:
            dist.barrier()

    # ---- logging
    metrics_file = None
    writer = None
    if master:
        new = not (run_dir / METRICS).is_file()
        metrics_file = open(run_dir / METRICS, "a", newline="")
        writer = csv.DictWriter(metrics_file, fieldnames=METRIC_FIELDS)
        if new:
            writer.writeheader()
    progress = None
    if master and not cfg.quiet:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        progress.start()
        task = progress.add_task("train", total=total_steps, completed=step, info="")

    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else contextlib.nullcontext
    t_last, steps_since = time.perf_counter(), 0
    try:
        while step < total_steps:
            sampler.set_epoch(epoch, skip=batch_in_epoch * cfg.batch_size)
            for batch in loader:
                stage = 1 if step < cfg.stage1_steps else 2
                frames = batch["frames"].to(device, non_blocking=True)
                masks = batch["masks"].to(device, non_blocking=True)
                flows = {k: batch[k].to(device, non_blocking=True)
                         for k in ("forward", "backward", "forward_valid", "backward_valid") if k in batch}
                use_gan = disc is not None and stage == 2

                # ---- generator step
                with autocast():
                    out = gen(frames, masks, flows or None, clamp=False)  # official: no clamp in training
                out = out.float()
                terms = {"l1": L.l1_all(out, frames)}
                terms["hole"] = L.l1_hole(out, frames, masks) if stage == 2 else out.new_zeros(())
                if vgg is not None:
                    terms["perceptual"], terms["style"] = L.vgg_losses(vgg, out, frames)
                else:
                    terms["perceptual"] = terms["style"] = out.new_zeros(())
                if use_gan:
                    for p in disc_raw.parameters():
                        p.requires_grad_(False)
                    with autocast():  # through the bare module: D is not updated by this pass
                        fake_scores = disc_raw(L.disc_input(out, masks))
                    terms["gan_g"] = L.gan_g_loss(cfg.gan, fake_scores)
                    for p in disc_raw.parameters():
                        p.requires_grad_(True)
                else:
                    terms["gan_g"] = out.new_zeros(())
                loss = (cfg.w_l1 * terms["l1"] + cfg.w_hole * terms["hole"]
                        + cfg.w_perceptual * terms["perceptual"] + cfg.w_style * terms["style"]
                        + (cfg.w_gan * terms["gan_g"] if use_gan else 0.0))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {step}: "
                                             + ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items()))
                _optimizer_step(opt_g, scaler_g, loss, gen_raw.parameters(), cfg.grad_clip)

                # ---- discriminator step (real and fake in one batch: D has no batch norm)
                d_loss = out.new_zeros(())
                if use_gan:
                    both = torch.cat([L.disc_input(frames, masks), L.disc_input(out.detach(), masks)])
                    with autocast():
                        scores = disc(both)
                    d_loss = L.gan_d_loss(cfg.gan, scores[: frames.shape[0]], scores[frames.shape[0]:])
                    _optimizer_step(opt_d, scaler_d, d_loss, disc_raw.parameters(), cfg.grad_clip)
                terms["gan_d"] = d_loss.detach()

                step += 1
                batch_in_epoch += 1
                steps_since += 1
                epoch_done = batch_in_epoch >= steps_per_epoch
                if epoch_done:
                    epoch, batch_in_epoch = epoch + 1, 0
                    with warnings.catch_warnings():  # D is idle in stage 1: silence "step before optimizer.step"
                        warnings.simplefilter("ignore", UserWarning)
                        sched_g.step()
                        if sched_d is not None:
                            sched_d.step()

                if master:
                    now = time.perf_counter()
                    its = steps_since / max(now - t_last, 1e-9)
                    t_last, steps_since = now, 0
                    row = {"step": step, "epoch": epoch if not epoch_done else epoch - 1, "stage": stage,
                           "loss": f"{loss.item():.6g}", "lr": f"{opt_g.param_groups[0]['lr']:.6g}",
                           "it_s": f"{its:.4g}"}
                    row.update({k: f"{v.item():.6g}" for k, v in terms.items()})
                    writer.writerow(row)
                    metrics_file.flush()
                    if progress is not None:
                        progress.update(task, completed=step, info=(
                            f"st{stage} loss {loss.item():.4f} l1 {terms['l1'].item():.4f} "
                            f"hole {terms['hole'].item():.4f} perc {terms['perceptual'].item():.3f} "
                            f"style {terms['style'].item():.3f} G {terms['gan_g'].item():.3f} "
                            f"D {terms['gan_d'].item():.3f} {its:.2f} it/s"))
                    if cfg.sample_every > 0 and (step % cfg.sample_every == 0 or step == total_steps):
                        _save_sample(run_dir / "samples" / f"step_{step:07d}.png", frames, masks, out)
                if (cfg.ckpt_every > 0 and step % cfg.ckpt_every == 0) or step >= total_steps:
                    save_checkpoint()
                if step >= total_steps or epoch_done:
                    break
    finally:
        if progress is not None:
            progress.stop()
        if metrics_file is not None:
            metrics_file.close()

    out_path = run_dir / GENERATOR
    if master:
        save_generator(gen_raw, out_path, extra_metadata={"tsam_train_step": str(step),
                                                           "tsam_train_dataset": cfg.dataset})
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return out_path


def load_run_config(run_dir: Path) -> TrainConfig:
    """The :class:`TrainConfig` of an existing run directory."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UsageError(f"--resume {run_dir}: no {CONFIG} there (not a tsam training run)")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a valid training config: {exc}") from None


__all__ = ["TrainConfig", "train", "load_run_config", "CHECKPOINT", "CONFIG", "METRICS",
           "GENERATOR", "METRIC_FIELDS"]
