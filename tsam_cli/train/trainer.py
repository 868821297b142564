"""The TSAM training loop in the spirit of nanoGPT's train.py: :func:`train` is a short loop, and
the pieces it calls sit beside it: :func:`setup_distributed`, :func:`make_data` /
:func:`get_batch`, :func:`build_training`, :func:`train_step`, :class:`MetricsLog` and the
checkpointed :class:`TrainState`.

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
    RUN_DIR/generator.safetensors  final generator (tsam_cli.model.official.save_generator)
    RUN_DIR/flow_cache/            cached optical flow (default location)

Checkpoints are written to a temporary file and moved in place with ``os.replace``, so a kill
at any moment leaves the previous or the new checkpoint, never a broken one. Every random
choice of a sample is a function of (seed, epoch, index) and the checkpoint stores the
position inside the epoch, so ``--resume`` reproduces the uninterrupted run.

Distributed: started by ``torchrun`` (``WORLD_SIZE`` > 1) the loop uses NCCL on CUDA or gloo
on CPU, DistributedDataParallel for G and D, and a rank-split sampler; rank 0 logs and writes.

torch (and numpy) are imported inside the functions: ``tsam train`` reads its option defaults
from :class:`TrainConfig` without making ``tsam --help`` import torch.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsam_cli.errors import DatasetError, UsageError, WeightsError

if TYPE_CHECKING:
    import torch

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.csv"
GENERATOR = "generator.safetensors"
METRIC_FIELDS = ["step", "epoch", "stage", "loss", "l1", "hole", "perceptual", "style",
                 "gan_g", "gan_d", "lr", "it_s"]
FLOW_KEYS = ("forward", "backward", "forward_valid", "backward_valid")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``RUN_DIR/config.json``).

    The one home of the training defaults (``tsam train`` takes its option defaults from here)
    and of their checks (:meth:`validate`). The field order is the order of the saved JSON.
    """

    dataset: str = "folder"              # the layout any folder of videos / frame folders already has
    root: str = ""                       # no dataset location fits everyone: the CLI asks for --root
    split: str = "paper"                 # davis only: paper (the 60 videos the paper trains on) | all
    model: str = "compact"               # preset name, ignored when model_config is set; compact trains on a CPU
    model_config: dict | None = None     # a ModelConfig dict (custom sizes, or from --init); None: the preset
    width: int = 432                     # official training size 432x240 (docs/official-checkpoint.md fact 11)
    height: int = 240                    # official training size 432x240 (same fact)
    frames: int = 7                      # official sample_length 7 (docs/official-checkpoint.md fact 11)
    batch_size: int = 8                  # official batch_size 8 (DAVIS_all_masks_flow.json)
    steps: int = 0                       # total optimiser steps; 0: use epochs (no length fits every dataset)
    epochs: int = 0                      # total epochs (the paper's unit); 0: use steps
    stage1_steps: int = 0                # 0: stage 2 from the start, the DAVIS fine-tuning recipe (§4.2)
    lr: float = 1e-4                     # below the official 5e-4 / 2.5e-4, a safe start; give those explicitly
    betas: tuple = (0.9, 0.999)          # official Adam betas (torch's defaults)
    amsgrad: bool = True                 # official "amsgrad": true
    lr_gamma: float = 0.97               # official StepLR gamma
    lr_step_epochs: int = 1000           # official StepLR step_size, counted in epochs
    seed: int = 0                        # fixed: the same command gives the same weights
    init: str | None = None              # None: train from scratch; a weights file: fine-tune from it
    vgg: str | None = "vgg16-imagenet"   # torchvision's ImageNet VGG-16, the network of the perceptual loss
    perceptual: bool = True              # the paper's perceptual + style terms, unless asked to skip them
    vgg_normalize: bool = True           # ImageNet mean/std, as those VGG weights expect (official: raw [0, 1])
    gan: str = "lsgan"                   # official: sigmoid scores + MSE (loss_module.py:327-361)
    d_nf: int = 64                       # official discriminator base width
    w_l1: float = 1.0                    # paper λ, L1 on all pixels (Eq. 5-6)
    w_hole: float = 6.0                  # paper λ, L1 in the holes
    w_perceptual: float = 1.0            # paper λ, perceptual
    w_style: float = 2.0                 # paper λ, style
    w_gan: float = 0.1                   # paper λ, GAN (the official fine-tuning config says 1); 0: no D
    workers: int = 2                     # flow + decoding beside the trainer on a small machine (GPU: >= 4)
    device: str = "auto"                 # CUDA when there is one, else the CPU
    amp: bool = True                     # mixed precision on CUDA: faster, less memory; no effect on a CPU
    amp_dtype: str = "bf16"              # bf16 | fp16 (fp16 adds GradScaler); bf16 needs no loss scaling
    grad_clip: float = 0.0               # max global grad norm; 0 = off (official: off)
    sample_every: int = 500              # often enough to watch a run, rarely enough to cost nothing
    ckpt_every: int = 500                # a crash loses at most 500 steps
    flow_cache: str | None = None        # None: RUN_DIR/flow_cache; a shared folder reuses flow between runs
    flow_method: str = "dis"             # OpenCV DIS: fast on a CPU, good enough for training flow
    max_stride: int = 3                  # official random temporal stride 1-3
    max_scale: float = 1.25              # official random scale 1-1.25 before the crop
    quiet: bool = False                  # show the progress bar unless asked not to

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"unknown training config keys: {', '.join(unknown)}")
        d = dict(data)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def validate(self) -> None:
        """Raise a one-line :class:`UsageError` naming the option for a value no run can use."""
        from tsam_cli.model.config import PRESETS
        from tsam_cli.train.data import DATASETS
        from tsam_cli.train.losses import GAN_KINDS

        w, h = self.width, self.height
        if w < 16 or h < 16 or w % 8 or h % 8:
            raise UsageError(f"--size {w}x{h}: width and height must be multiples of 8 and at least 16")
        if self.model_config is None and self.model not in PRESETS:
            raise UsageError(f"--model {self.model!r}: use {', '.join(sorted(PRESETS))} or a .json model config")
        if self.dataset not in DATASETS:
            raise UsageError(f"--dataset {self.dataset!r}: use {', '.join(DATASETS[:-1])} or {DATASETS[-1]}")
        if self.frames < 2:
            raise UsageError("--frames must be at least 2 (TSAM aligns neighbouring frames)")
        if self.gan not in GAN_KINDS:
            raise UsageError(f"--gan {self.gan!r}: use one of {', '.join(GAN_KINDS)}")
        if self.steps <= 0 and self.epochs <= 0:
            raise UsageError("give --steps N or --epochs N")


# ------------------------------------------------------------------------------ small helpers
def _warn(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors / plain types (weights_only-loadable)."""
    import numpy as np
    import torch

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
    import numpy as np
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _pick_device(name: str, local_rank: int) -> torch.device:
    """``--device`` -> a torch device; ``cuda`` is this process's GPU ``local_rank``."""
    import torch

    from tsam_cli.device import resolve_device

    return torch.device(resolve_device(name, local_rank))


def _check_run_dir(run_dir: Path, resume: bool, master: bool) -> Path:
    """The checkpoint path of ``run_dir``: it must exist to resume, and must not for a new run."""
    ckpt_path = run_dir / CHECKPOINT
    if resume:
        if not ckpt_path.is_file():
            raise UsageError(f"--resume {run_dir}: no {CHECKPOINT} there (nothing to resume)")
    elif ckpt_path.is_file():
        raise UsageError(f"{run_dir} already holds a training run: use --resume {run_dir} or another --run-dir")
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
    return ckpt_path


def _save_sample(path: Path, frames, masks, out) -> None:
    """One PNG: rows = input with grey holes, output, ground truth; columns = frames."""
    import cv2
    import numpy as np
    import torch

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


# ------------------------------------------------------------------------------- distributed
@dataclass
class Runtime:
    """Where this process runs: its device, and its rank among ``world`` torchrun processes."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def ddp(self) -> bool:
        return self.world > 1

    @property
    def master(self) -> bool:  # rank 0 logs and writes the run directory
        return self.rank == 0

    def barrier(self) -> None:
        if self.ddp:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.ddp:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def setup_distributed(cfg: TrainConfig) -> Runtime:
    """This process's device; under torchrun (it sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT)
    also join the process group: NCCL on CUDA, gloo on CPU (the node's cores shared out)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(cfg.device, local_rank)
    if world <= 1:
        return Runtime(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        local_world = max(int(os.environ.get("LOCAL_WORLD_SIZE", world)), 1)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Runtime(device, rank=rank, world=world)


# -------------------------------------------------------------------------------------- data
@dataclass
class Data:
    """The batches of a run: ``loader`` walks the epoch ``sampler`` sets up (``set_epoch``)."""

    loader: Any
    sampler: Any
    steps_per_epoch: int


def make_data(cfg: TrainConfig, run_dir: Path, rt: Runtime) -> Data:
    """The clip dataset (dataset warnings go to stderr once), its rank-split sampler and loader."""
    import multiprocessing as mp

    from torch.utils.data import BatchSampler, DataLoader

    from tsam_cli.train.data import ClipDataset, EpochSampler, discover, worker_init

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
        _warn(str(w.message), rt.rank)
    sampler = EpochSampler(len(dataset), seed=cfg.seed, rank=rt.rank, world=rt.world)
    steps_per_epoch = sampler.per_rank // cfg.batch_size
    if steps_per_epoch == 0:
        raise DatasetError(
            f"{len(dataset)} usable video(s) for {rt.world} process(es) cannot fill one batch of "
            f"{cfg.batch_size}: lower --batch-size or add videos"
        )
    # Workers are started fresh (forkserver/spawn), not forked from this process: a fork after
    # OpenCV/OpenMP thread pools were used can deadlock the worker. They persist across epochs
    # (the epoch travels inside each sample key, so workers hold no per-epoch state).
    mp_ctx = None
    if cfg.workers > 0:
        mp_ctx = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    loader = DataLoader(
        dataset, batch_sampler=BatchSampler(sampler, cfg.batch_size, drop_last=True),
        num_workers=cfg.workers, worker_init_fn=worker_init, pin_memory=rt.device.type == "cuda",
        persistent_workers=cfg.workers > 0, multiprocessing_context=mp_ctx,
    )
    return Data(loader, sampler, steps_per_epoch)


def get_batch(batch: dict, device: torch.device) -> tuple:
    """Frames, masks and flows (a dict; empty without flow) of a loader batch, on ``device``."""
    frames = batch["frames"].to(device, non_blocking=True)
    masks = batch["masks"].to(device, non_blocking=True)
    flows = {k: batch[k].to(device, non_blocking=True) for k in FLOW_KEYS if k in batch}
    return frames, masks, flows


# ------------------------------------------------------------------- models, optimisers, state
def _build_generator(cfg: TrainConfig, resume: bool = False):
    from tsam_cli.model import TSAMGenerator, get_preset
    from tsam_cli.model.config import ModelConfig
    from tsam_cli.model.official import load_generator

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
    from tsam_cli import weights
    from tsam_cli.train.vgg import load_vgg16

    try:
        path = weights.resolve(cfg.vgg or "vgg16-imagenet")
        return load_vgg16(path, normalize=cfg.vgg_normalize)
    except WeightsError as exc:
        _warn(f"{exc} -> training WITHOUT the perceptual and style losses "
              f"(--no-perceptual silences this warning)", rank)
        return None


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype, or None when autocast is off (--no-amp, or not on CUDA)."""
    import torch

    if not (cfg.amp and device.type == "cuda"):
        return None
    return torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16


@dataclass
class TrainState:
    """What a checkpoint holds: the bare networks (not DDP-wrapped), their optimisers, LR
    schedulers and AMP scalers, and the run's position; :meth:`save` adds the RNG states."""

    gen: Any
    disc: Any  # None when the GAN weight is 0
    opt_g: Any
    opt_d: Any
    sched_g: Any
    sched_d: Any
    scaler_g: Any
    scaler_d: Any
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0

    def save(self, path: Path, cfg: TrainConfig) -> None:
        """Write the checkpoint atomically (a kill leaves the old or the new file)."""
        ck = {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            # the config is plain JSON types except tuples: store as JSON text
            "config": json.dumps(cfg.to_dict()), "generator": self.gen.state_dict(),
            "opt_g": self.opt_g.state_dict(), "sched_g": self.sched_g.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "rng": _rng_state(),
        }
        if self.disc is not None:
            ck.update(discriminator=self.disc.state_dict(), opt_d=self.opt_d.state_dict(),
                      sched_d=self.sched_d.state_dict(), scaler_d=self.scaler_d.state_dict())
        _atomic_torch_save(ck, path)

    def load(self, path: Path) -> None:
        """Restore everything :meth:`save` wrote, the RNG states included."""
        import torch

        ck = torch.load(str(path), map_location="cpu", weights_only=True)
        self.gen.load_state_dict(ck["generator"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.sched_g.load_state_dict(ck["sched_g"])
        self.scaler_g.load_state_dict(ck["scaler_g"])
        if self.disc is not None:
            self.disc.load_state_dict(ck["discriminator"])
            self.opt_d.load_state_dict(ck["opt_d"])
            self.sched_d.load_state_dict(ck["sched_d"])
            self.scaler_d.load_state_dict(ck["scaler_d"])
        self.step, self.epoch, self.batch_in_epoch = int(ck["step"]), int(ck["epoch"]), int(ck["batch_in_epoch"])
        _set_rng_state(ck["rng"])

    def advance(self, steps_per_epoch: int) -> bool:
        """Count one step; at the end of an epoch step the LR schedulers (they count epochs)
        and return True."""
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch < steps_per_epoch:
            return False
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        with warnings.catch_warnings():  # D is idle in stage 1: silence "step before optimizer.step"
            warnings.simplefilter("ignore", UserWarning)
            self.sched_g.step()
            if self.sched_d is not None:
                self.sched_d.step()
        return True


def build_training(cfg: TrainConfig, rt: Runtime, resume: bool) -> tuple[TrainState, Any]:
    """G, D (when the GAN weight is > 0), each with Adam, StepLR and an AMP scaler, and the VGG of
    the perceptual losses (None without them). Built in this order: the order draws the init RNG."""
    import torch

    from tsam_cli.model import TemporalPatchDiscriminator

    gen = _build_generator(cfg, resume).to(rt.device)
    disc = None
    if cfg.w_gan > 0:
        disc = TemporalPatchDiscriminator(
            in_channels=5, nf=cfg.d_nf, use_sigmoid=cfg.gan == "lsgan", spectral_norm=True,
        ).to(rt.device).train()
    vgg = _load_vgg(cfg, rt.rank)
    if vgg is not None:
        vgg = vgg.to(rt.device)
    adam = dict(lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=0.0, amsgrad=cfg.amsgrad)
    opt_g = torch.optim.Adam(gen.parameters(), **adam)
    opt_d = torch.optim.Adam(disc.parameters(), **adam) if disc is not None else None
    # StepLR counted in epochs (official steps it once per epoch)
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    sched_d = (torch.optim.lr_scheduler.StepLR(opt_d, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
               if opt_d is not None else None)
    scaler_on = _autocast_dtype(cfg, rt.device) == torch.float16
    scaler_g = torch.amp.GradScaler("cuda", enabled=scaler_on)
    scaler_d = torch.amp.GradScaler("cuda", enabled=scaler_on)
    return TrainState(gen, disc, opt_g, opt_d, sched_g, sched_d, scaler_g, scaler_d), vgg


def save_checkpoint(state: TrainState, cfg: TrainConfig, path: Path, rt: Runtime) -> None:
    """Every process waits for the others, rank 0 writes, and all wait for the write."""
    rt.barrier()
    if rt.master:
        state.save(path, cfg)
    rt.barrier()


# ----------------------------------------------------------------------------------- training
@dataclass
class Nets:
    """What a training step calls: G and D as the forward passes see them (DDP-wrapped under
    torchrun), the VGG of the perceptual losses (or None) and the autocast context factory."""

    gen: Any
    disc: Any
    vgg: Any
    autocast: Callable[[], Any]


def make_nets(cfg: TrainConfig, state: TrainState, vgg: Any, rt: Runtime) -> Nets:
    """Wrap G and D in DistributedDataParallel under torchrun, and pick the autocast context."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    gen, disc = state.gen, state.disc
    if rt.ddp:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        gen = DDP(gen, device_ids=ids)
        if disc is not None:
            disc = DDP(disc, device_ids=ids)
    dtype = _autocast_dtype(cfg, rt.device)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype is not None else contextlib.nullcontext
    return Nets(gen, disc, vgg, autocast)


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


def _adversarial_loss(cfg: TrainConfig, nets: Nets, disc: Any, out, masks):
    """G's GAN term. D scores through the bare module with frozen parameters: D is not updated
    by this pass."""
    from tsam_cli.train import losses as L

    for p in disc.parameters():
        p.requires_grad_(False)
    with nets.autocast():
        fake_scores = disc(L.disc_input(out, masks))
    loss = L.gan_g_loss(cfg.gan, fake_scores)
    for p in disc.parameters():
        p.requires_grad_(True)
    return loss


def generator_loss(cfg: TrainConfig, nets: Nets, disc: Any, frames, masks, flows: dict, stage: int):
    """G's forward pass and loss (paper Eq. 5-6): L1 on all pixels, + L1 in the holes in stage 2,
    + perceptual and style with a VGG, + the GAN term when ``disc`` (the bare D) is given.
    Returns the output (float32), the loss and its terms."""
    from tsam_cli.train import losses as L

    with nets.autocast():
        out = nets.gen(frames, masks, flows or None, clamp=False)  # official: no clamp in training
    out = out.float()
    terms = {"l1": L.l1_all(out, frames)}
    terms["hole"] = L.l1_hole(out, frames, masks) if stage == 2 else out.new_zeros(())
    if nets.vgg is not None:
        terms["perceptual"], terms["style"] = L.vgg_losses(nets.vgg, out, frames)
    else:
        terms["perceptual"] = terms["style"] = out.new_zeros(())
    terms["gan_g"] = _adversarial_loss(cfg, nets, disc, out, masks) if disc is not None else out.new_zeros(())
    loss = (cfg.w_l1 * terms["l1"] + cfg.w_hole * terms["hole"]
            + cfg.w_perceptual * terms["perceptual"] + cfg.w_style * terms["style"]
            + (cfg.w_gan * terms["gan_g"] if disc is not None else 0.0))
    return out, loss, terms


def discriminator_step(cfg: TrainConfig, nets: Nets, state: TrainState, frames, masks, out):
    """One D update, real and fake clips in one batch (D has no batch norm); returns D's loss."""
    import torch

    from tsam_cli.train import losses as L

    both = torch.cat([L.disc_input(frames, masks), L.disc_input(out.detach(), masks)])
    with nets.autocast():
        scores = nets.disc(both)
    d_loss = L.gan_d_loss(cfg.gan, scores[: frames.shape[0]], scores[frames.shape[0]:])
    _optimizer_step(state.opt_d, state.scaler_d, d_loss, state.disc.parameters(), cfg.grad_clip)
    return d_loss


def train_step(cfg: TrainConfig, nets: Nets, state: TrainState, frames, masks, flows: dict, stage: int):
    """One generator update, then (stage 2, with a GAN) one discriminator update.
    Returns G's output, G's loss and every loss term (``gan_d`` included) for the log."""
    import torch

    use_gan = state.disc is not None and stage == 2
    out, loss, terms = generator_loss(cfg, nets, state.disc if use_gan else None, frames, masks, flows, stage)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {state.step}: "
                                 + ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items()))
    _optimizer_step(state.opt_g, state.scaler_g, loss, state.gen.parameters(), cfg.grad_clip)
    d_loss = discriminator_step(cfg, nets, state, frames, masks, out) if use_gan else out.new_zeros(())
    terms["gan_d"] = d_loss.detach()
    return out, loss, terms


# ------------------------------------------------------------------------------------ logging
class MetricsLog:
    """Rank 0's record of a run: a ``metrics.csv`` row per step, the progress bar, sample PNGs."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, total_steps: int, start_step: int) -> None:
        self.cfg, self.run_dir, self.total_steps = cfg, run_dir, total_steps
        new = not (run_dir / METRICS).is_file()
        self.file = open(run_dir / METRICS, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=METRIC_FIELDS)
        if new:
            self.writer.writeheader()
        self.progress = None
        if not cfg.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            self.progress.start()
            self.task = self.progress.add_task("train", total=total_steps, completed=start_step, info="")
        self.t_last = time.perf_counter()

    def log_step(self, state: TrainState, epoch: int, stage: int, loss, terms: dict) -> None:
        """One row for the step just taken (``epoch``: the epoch it belongs to) and the bar."""
        now = time.perf_counter()
        its = 1 / max(now - self.t_last, 1e-9)
        self.t_last = now
        row = {"step": state.step, "epoch": epoch, "stage": stage, "loss": f"{loss.item():.6g}",
               "lr": f"{state.opt_g.param_groups[0]['lr']:.6g}", "it_s": f"{its:.4g}"}
        row.update({k: f"{v.item():.6g}" for k, v in terms.items()})
        self.writer.writerow(row)
        self.file.flush()
        if self.progress is not None:
            self.progress.update(self.task, completed=state.step, info=(
                f"st{stage} loss {loss.item():.4f} l1 {terms['l1'].item():.4f} "
                f"hole {terms['hole'].item():.4f} perc {terms['perceptual'].item():.3f} "
                f"style {terms['style'].item():.3f} G {terms['gan_g'].item():.3f} "
                f"D {terms['gan_d'].item():.3f} {its:.2f} it/s"))

    def maybe_sample(self, step: int, frames, masks, out) -> None:
        """A sample PNG every ``sample_every`` steps and at the last step."""
        every = self.cfg.sample_every
        if every > 0 and (step % every == 0 or step == self.total_steps):
            _save_sample(self.run_dir / "samples" / f"step_{step:07d}.png", frames, masks, out)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.file.close()


# ---------------------------------------------------------------------------------- the loop
def train_loop(cfg: TrainConfig, state: TrainState, nets: Nets, data: Data, total_steps: int,
               ckpt_path: Path, rt: Runtime, log: MetricsLog | None) -> None:
    """Steps until ``total_steps``, epoch by epoch (an epoch may start part-way, on resume)."""
    while state.step < total_steps:
        data.sampler.set_epoch(state.epoch, skip=state.batch_in_epoch * cfg.batch_size)
        for batch in data.loader:
            stage = 1 if state.step < cfg.stage1_steps else 2
            frames, masks, flows = get_batch(batch, rt.device)
            out, loss, terms = train_step(cfg, nets, state, frames, masks, flows, stage)
            epoch = state.epoch
            epoch_done = state.advance(data.steps_per_epoch)
            if log is not None:
                log.log_step(state, epoch, stage, loss, terms)
                log.maybe_sample(state.step, frames, masks, out)
            if (cfg.ckpt_every > 0 and state.step % cfg.ckpt_every == 0) or state.step >= total_steps:
                save_checkpoint(state, cfg, ckpt_path, rt)
            if state.step >= total_steps or epoch_done:
                break


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False) -> Path:
    """Train (or resume) a run in ``run_dir``; returns the exported generator's path."""
    from tsam_cli.model.official import save_generator

    run_dir = Path(run_dir)
    rt = setup_distributed(cfg)
    cfg.validate()
    ckpt_path = _check_run_dir(run_dir, resume, rt.master)
    _seed_everything(cfg.seed)
    data = make_data(cfg, run_dir, rt)
    total_steps = cfg.steps if cfg.steps > 0 else cfg.epochs * data.steps_per_epoch
    state, vgg = build_training(cfg, rt, resume)
    if resume:
        state.load(ckpt_path)
        if rt.master:
            _trim_metrics(run_dir / METRICS, state.step)
    if rt.master:
        _atomic_write_text(run_dir / CONFIG, json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    nets = make_nets(cfg, state, vgg, rt)
    log = MetricsLog(cfg, run_dir, total_steps, state.step) if rt.master else None
    try:
        train_loop(cfg, state, nets, data, total_steps, ckpt_path, rt, log)
    finally:
        if log is not None:
            log.close()

    out_path = run_dir / GENERATOR
    if rt.master:
        save_generator(state.gen, out_path, extra_metadata={"tsam_train_step": str(state.step),
                                                            "tsam_train_dataset": cfg.dataset})
    rt.close()
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


__all__ = ["TrainConfig", "TrainState", "train", "load_run_config", "CHECKPOINT", "CONFIG", "METRICS",
           "GENERATOR", "METRIC_FIELDS"]
