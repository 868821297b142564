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
    RUN_DIR/generator.safetensors  final generator (tsam_cli.model.tsam_format.save_generator)
    RUN_DIR/flow_cache/            cached optical flow (default location)

Every file is written to a temporary beside it and moved in place with ``os.replace``
(:func:`_write_atomically`), so a kill at any moment leaves the previous or the new file,
never a broken one. A checkpoint embeds the sha256 of its content (:func:`content_digest`),
checked on ``--resume`` (:func:`read_checkpoint`). Every random choice of a sample is a
function of (seed, epoch, index) and the checkpoint stores the position inside the epoch, so
``--resume`` reproduces the uninterrupted run.

Safety (docs/training.md, "Safety"): options, torchrun's variables and paths are checked
before any work (:meth:`TrainConfig.validate`, :func:`torchrun_env`, :func:`check_paths`); the
run folder (:class:`RunFolder`) is made only when data and networks are ready, locked, and
emptied of what a new run wrote when it stops before its first checkpoint; a signal ends in
:class:`~tsam_cli.errors.Interrupted` naming the checkpoint on disk.

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
import math
import os
import random
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsam_cli import hooks
from tsam_cli.device import usable_cpus
from tsam_cli.errors import (
    STOP_SIGNALS,
    DatasetError,
    Interrupted,
    OutputError,
    UsageError,
    WeightsError,
    signal_number,
)
from tsam_cli.options import _check_range

if TYPE_CHECKING:
    import torch

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.csv"
GENERATOR = "generator.safetensors"
METRIC_FIELDS = ["step", "epoch", "stage", "loss", "l1", "hole", "perceptual", "style",
                 "gan_g", "gan_d", "lr", "it_s"]
FLOW_KEYS = ("forward", "backward", "forward_valid", "backward_valid")

#: Largest training clip side: far above the paper's 432x240, far below what fills a GPU at batch 1.
MAX_SIDE = 8192
#: The command-line flag of each field a user sets with one (other fields are config.json keys).
_FLAGS = {"batch_size": "--batch-size", "stage1_steps": "--stage1-steps", "grad_clip": "--grad-clip",
          "sample_every": "--sample-every", "ckpt_every": "--ckpt-every", "flow_cache": "--flow-cache",
          "amp_dtype": "--amp-dtype", "model_config": "--model", "width": "--size", "height": "--size",
          "perceptual": "--no-perceptual", **{n: f"--{n}" for n in (
              "dataset", "root", "split", "model", "frames", "steps", "epochs", "lr", "seed", "init", "vgg",
              "gan", "workers", "device", "amp", "quiet")}}
#: (field, lowest, highest) of the numbers, both ends allowed. The tops only catch typos and
#: overflows (a step count is a 64-bit integer in torch's schedulers).
_RANGES = [("frames", 2, 1000), ("batch_size", 1, 65536), ("steps", 0, 10**12), ("epochs", 0, 10**9),
           ("stage1_steps", 0, 10**12), ("seed", 0, 2**63 - 1), ("workers", 0, 256), ("grad_clip", 0, 1e9),
           ("sample_every", 0, 10**12), ("ckpt_every", 0, 10**12), ("lr_step_epochs", 1, 10**9),
           ("d_nf", 1, 4096), ("w_l1", 0, 1e6), ("w_hole", 0, 1e6), ("w_perceptual", 0, 1e6),
           ("w_style", 0, 1e6), ("w_gan", 0, 1e6), ("max_stride", 1, 100), ("max_scale", 1, 4)]
#: (field, bound below (excluded), highest): numbers that cannot be 0.
_ABOVE = [("lr", 0, 10), ("lr_gamma", 0, 1)]
#: fields that may be None, and the type they hold otherwise
_OPTIONAL = {"model_config": dict, "init": str, "vgg": str, "flow_cache": str}
_KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a text",
               dict: "a model config (a JSON object)", tuple: "two numbers"}


def _flag(name: str) -> str:
    """How a message names a config field: its command-line flag, or its config.json key."""
    return _FLAGS.get(name, name)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        """Raise a one-line :class:`UsageError` naming the option for a value no run can use.

        Checks every field's type first (a resumed ``config.json`` may hold anything), then
        every number's range (NaN and infinities included), then every name."""
        self._check_types()
        w, h = self.width, self.height
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE) or w % 8 or h % 8:
            raise UsageError(f"--size {w}x{h}: width and height must be multiples of 8 from 16 to {MAX_SIDE}")
        for name, lo, hi in _RANGES:
            _check_range(_flag(name), getattr(self, name), lo, hi)
        for name, lo, hi in _ABOVE:  # open at the bottom: 0 is no learning rate, or a decay to nothing
            value = getattr(self, name)
            if not (math.isfinite(value) and lo < value <= hi):
                raise UsageError(f"{_flag(name)} {value!r} is out of range: give a value above {lo:g}, at most {hi:g}")
        if not all(math.isfinite(b) and 0 <= b < 1 for b in self.betas):
            raise UsageError(f"betas {list(self.betas)!r} are out of range: give two values from 0 to below 1")
        if self.steps <= 0 and self.epochs <= 0:
            raise UsageError("give --steps N or --epochs N")
        if self.steps > 0 and self.epochs > 0:
            raise UsageError("give --steps N or --epochs N, not both")
        self._check_names()

    def _check_types(self) -> None:
        """Each field holds its default's type (ints: no bools, no floats; floats: any number)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _OPTIONAL:
                ok, kind = value is None or isinstance(value, _OPTIONAL[f.name]), _OPTIONAL[f.name]
            elif f.name == "betas":
                ok, kind = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)), tuple
            else:
                kind = type(f.default)
                ok = _is_number(value) if kind is float else (
                    isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))
            if not ok:
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise UsageError(f"{_flag(f.name)} {shown}: give {_KIND_WORDS[kind]}")

    def _check_names(self) -> None:
        from tsam_cli.model.config import PRESETS, ModelConfig
        from tsam_cli.options import FLOW_METHODS
        from tsam_cli.train.data import DATASETS
        from tsam_cli.train.losses import GAN_KINDS

        if self.model_config is None and self.model not in PRESETS:
            raise UsageError(f"--model {self.model!r}: use {', '.join(sorted(PRESETS))} or a .json model config")
        if self.model_config is not None:
            try:
                ModelConfig.from_dict(self.model_config)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"--model: {(str(exc).splitlines() or [''])[0][:200]}: fix the model config") from None
        for flag, value, choices in [("--dataset", self.dataset, DATASETS), ("--split", self.split, ("paper", "all")),
                                     ("--gan", self.gan, GAN_KINDS), ("--amp-dtype", self.amp_dtype, ("bf16", "fp16")),
                                     ("flow_method", self.flow_method, FLOW_METHODS)]:
            if value not in choices:
                raise UsageError(f"{flag} {value!r}: use one of {', '.join(choices)}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UsageError(f"--device {self.device!r} is not known: use auto, cpu, cuda or cuda:N")
        if not self.root:
            raise UsageError("give --root, the dataset folder")


# ------------------------------------------------------------------------------ small helpers
def _warn(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def _write_atomically(path: Path, write: Callable[[Path], None], then: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with what ``write(tmp)`` puts in a temporary beside it, in one rename.

    The temporary (``NAME.tmp.SUFFIX``; a stale one of a killed run is replaced) gets the
    umask's normal mode (0644 with umask 022: some writers create 0600 files) and is fsynced
    before the rename. The rename and ``then()`` (the caller's record that the new file is
    there) run with signals held back, so a signal is reported true to what is on disk. Any
    exception or signal before the rename removes the temporary and leaves ``path`` as it was.
    """
    from tsam_cli.media.output import current_umask, signals_held

    tmp = path.with_name(_tmp_name(path.name))
    try:
        tmp.unlink(missing_ok=True)  # never write through whatever a killed run left there
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        hooks.pause_point(f"train-write-{path.stem}")
        with signals_held():
            os.replace(tmp, path)
            if then is not None:
                then()
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + ".part")):  # .part: save_generator's own temporary
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text(path: Path, text: str) -> None:
    _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


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

    device = torch.device(resolve_device(name, local_rank))
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: GPU {device.index} asked for (LOCAL_RANK={local_rank}), but "
                         f"PyTorch sees {torch.cuda.device_count()}: start at most one process per GPU")
    return device


def _env_int(name: str, default: int, lowest: int) -> int:
    """A whole number from the environment (torchrun's variables), at least ``lowest``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < lowest:
        raise UsageError(f"{name}={text!r} is not a whole number from {lowest}: start the run with torchrun "
                         f"(it sets RANK, WORLD_SIZE and LOCAL_RANK), or unset {name}")
    return value


def torchrun_env() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's RANK, WORLD_SIZE and LOCAL_RANK;
    ``(0, 1, 0)`` without them. Raises a one-line UsageError naming a bad variable."""
    world = _env_int("WORLD_SIZE", 1, 1)
    rank = _env_int("RANK", 0, 0)
    local_rank = _env_int("LOCAL_RANK", 0, 0)
    if rank >= world:
        raise UsageError(f"RANK={rank} must be below WORLD_SIZE={world}: start the run with torchrun "
                         "(it sets both), or unset RANK and WORLD_SIZE")
    return rank, world, local_rank


#: what a run writes in its folder (a new run refuses a folder that already holds one of them)
RUN_FILES = (CHECKPOINT, CONFIG, METRICS, GENERATOR, "samples", "flow_cache")


def _tmp_name(name: str) -> str:
    """The temporary a file is written to before its rename: ``NAME.tmp.SUFFIX`` (the suffix
    kept last, as image writers choose their format by it)."""
    stem, dot, suffix = name.partition(".")
    return f"{stem}.tmp{dot}{suffix}"


#: temporaries of the run folder's own files (save_generator adds ``.part`` to its target)
_RUN_TEMPS = {_tmp_name(n) for n in (CHECKPOINT, CONFIG, METRICS)} | {
    _tmp_name(GENERATOR), _tmp_name(GENERATOR) + ".part"}


def _is_within(inner: Path, outer: Path) -> bool:
    """True when ``inner`` is ``outer`` or inside it, by resolved name or by device + inode
    (links and ``..`` included); ``inner`` need not exist."""
    try:
        target = os.stat(outer)
    except OSError:
        target = None
    outer_r = outer.resolve()
    for p in (inner.resolve(), *inner.resolve().parents):
        if p == outer_r:
            return True
        if target is not None and p.exists() and os.path.samestat(os.stat(p), target):
            return True
    return False


def _check_writable_folder(path: Path, flag: str) -> None:
    """``path`` is a folder this process can write in, or can be created: else OutputError."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a folder: choose a folder (it is created if missing)")
    existing = path.absolute()
    while not existing.exists():  # the nearest folder that exists: the new ones are made in it
        existing = existing.parent
    where = "the current folder" if existing == Path.cwd() else str(existing)
    if not existing.is_dir():
        raise OutputError(f"cannot create {path}: {where} is a file: choose {flag} in a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write in" if existing == path.absolute() else "create"
        raise OutputError(f"cannot {verb} {path}: {where} is not writable: choose {flag} in a writable folder")


def check_paths(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Before any work: what the run writes (run folder, flow cache) can be written and is not
    in the dataset, and the weight files it reads are files. Raises OutputError / WeightsError."""
    root = Path(cfg.root)
    flow_cache = Path(cfg.flow_cache) if cfg.flow_cache else None
    for flag, path in (("--resume" if resume else "--run-dir", run_dir), ("--flow-cache", flow_cache)):
        if path is None:
            continue
        if flag == "--resume" and path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"--resume {path}: the folder is not writable: fix its permissions, or copy the run "
                              "to a writable folder and resume there")
        if _is_within(path, root) or _is_within(root, path):
            how = "is" if _is_within(root, path) and _is_within(path, root) else (
                "is inside" if _is_within(path, root) else "contains")
            raise OutputError(f"{flag} {path} {how} the dataset --root {root}, and tsam never writes into a "
                              "dataset: choose a folder outside it")
        _check_writable_folder(path, flag)
    if cfg.init and not (resume and cfg.model_config):  # a resumed run takes G from its checkpoint
        init = Path(cfg.init)
        if init.is_dir():
            raise WeightsError(f"--init {init} is a folder: give a generator weight file (.safetensors or official .pth)")
        if not init.is_file():
            raise WeightsError(f"--init {init}: file not found: check the path")
    if cfg.perceptual and cfg.vgg and Path(cfg.vgg).expanduser().is_dir():
        raise WeightsError(f"--vgg {cfg.vgg} is a folder: give the VGG-16 weight file (vgg16-397923af.pth)")


class RunFolder:
    """The run directory as one run uses it: checked before any work (:meth:`check`), made
    with its missing parents only when the run is ready to write (:meth:`create`), locked
    against a second run, and, when a new run fails before its first checkpoint, emptied of
    what this run wrote (:meth:`discard`). Only rank 0 (``master``) creates and writes."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path, self.resume, self.master = Path(path), resume, True
        self.created: list[Path] = []   # folders this run made, outermost first
        self.before: set[str] = set()   # names in the folder before this run (when it existed)
        self._lock_fd: int | None = None
        self.locked = False             # this run holds the folder (or its filesystem has no flock)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def check(self) -> None:
        """A resumed run's folder has a checkpoint; a new run's folder holds no run yet."""
        p = self.path
        if self.resume:
            if not self.checkpoint.is_file():
                raise UsageError(f"--resume {p}: no {CHECKPOINT} there (nothing to resume)")
            return
        if self.checkpoint.is_file():
            raise UsageError(f"{p} already holds a training run: use --resume {p} or another --run-dir")
        found = [n for n in RUN_FILES if (p / n).exists()] if p.is_dir() else []
        if found:
            raise OutputError(f"{p} already holds files of a training run ({', '.join(found)}) but no checkpoint "
                              "to resume: choose another --run-dir, or delete them first")

    def create(self) -> None:
        """Make the folder (and missing parents, remembered for :meth:`discard`) and lock it."""
        if not self.master:
            return
        missing, p = [], self.path
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        if not missing:
            self.before = set(os.listdir(self.path))
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue  # made meanwhile by someone else: not ours to remove
            except OSError as exc:
                self.discard()
                raise OutputError(f"cannot create {folder}: {exc.strerror}: choose --run-dir in a writable folder") from None
            self.created.append(folder)
        self._lock()

    def _lock(self) -> None:
        """``flock`` the folder itself (no lock file to leave behind) for the whole run."""
        import errno
        import fcntl

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                self.locked = True  # a filesystem without flock on folders (some NFS): run unlocked, as before
                return
            self.discard()  # unlocked: removes only the empty folders this run made
            raise OutputError(f"another tsam train is using {self.path} right now: wait for it to finish "
                              "or choose another --run-dir") from None
        self._lock_fd = fd
        self.locked = True

    def discard(self) -> None:
        """Remove what this new run wrote (never what was there before it), then the folders it
        made, each only if that leaves it empty. Files only once the run held the lock: before
        that, what is there may be another run's. Best effort: it runs while an error is raised."""
        if self.resume or not self.master:
            return
        if self.locked and self.path.is_dir():
            for entry in os.scandir(self.path):
                if (entry.name in RUN_FILES or entry.name in _RUN_TEMPS) and entry.name not in self.before:
                    _remove(Path(entry.path))
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                break  # holds something else: keep it and its parents

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.locked = False


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _save_sample(path: Path, frames, masks, out) -> None:
    """One PNG: rows = input with grey holes, output, ground truth; columns = frames."""
    import cv2
    import numpy as np
    import torch

    f, m, o = frames[0].float().cpu(), masks[0].float().cpu(), out[0].detach().float().cpu()
    shown = f * (1 - m) + 0.5 * m
    rows = [torch.cat(list(x), dim=2) for x in (shown, o.clamp(0, 1), f)]  # (3, H, T*W)
    img = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(exist_ok=True)

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):  # False, not an exception
            raise OSError(f"cannot write {tmp}")

    _write_atomically(path, write)


def _step_of(row: dict) -> int | None:
    try:
        return int(row.get("step") or "")
    except ValueError:
        return None


def _trim_metrics(path: Path, last_step: int) -> None:
    """After a resume: drop rows logged after the checkpoint (they will be logged again), and
    a row a kill cut short."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if (s := _step_of(r)) is not None and s <= last_step and None not in r.values()]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(keep)

    _write_atomically(path, write)


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

    _, world, local_rank = torchrun_env()
    device = _pick_device(cfg.device, local_rank)
    if world <= 1:
        return Runtime(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        local_world = _env_int("LOCAL_WORLD_SIZE", world, 1)
        torch.set_num_threads(max(1, usable_cpus() // local_world))  # the CPUs this process may use
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
    from tsam_cli.model.tsam_format import load_generator

    if cfg.init and not (resume and cfg.model_config):  # on resume the checkpoint has the weights
        g = _load_init(cfg.init, load_generator)
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


def _load_init(path: str, load_generator: Callable) -> Any:
    """The ``--init`` generator; whatever goes wrong is one WeightsError naming the file. Weights
    that are not all finite are refused too: a damaged data block loads without complaint."""
    import torch

    try:
        g = load_generator(path)
    except WeightsError as exc:
        raise WeightsError(f"--init: {exc}") from None
    except Exception as exc:  # a loader error here is a bad file, not a bug of this run
        raise WeightsError(f"--init {path} cannot be loaded ({_first_line(exc)}): give an intact generator "
                           "weight file (.safetensors or official .pth)") from None
    if not all(torch.isfinite(t).all() for t in g.state_dict().values() if t.is_floating_point()):
        raise WeightsError(f"--init {path} holds non-finite weights (a damaged file): give an intact generator "
                           "weight file")
    return g


def _load_vgg(cfg: TrainConfig, rank: int):
    if not cfg.perceptual or (cfg.w_perceptual == 0 and cfg.w_style == 0):
        return None
    from tsam_cli import weights
    from tsam_cli.train.vgg import load_vgg16

    try:
        path = weights.resolve(cfg.vgg or "vgg16-imagenet")
    except WeightsError as exc:  # not there (not downloaded): the run goes on without, and says so
        _warn(f"{exc} -> training WITHOUT the perceptual and style losses "
              f"(--no-perceptual silences this warning)", rank)
        return None
    try:  # a file that is there but does not load is an error: the user meant to use it
        return load_vgg16(path, normalize=cfg.vgg_normalize)
    except WeightsError as exc:
        raise WeightsError(f"--vgg: {exc}: give an intact VGG-16 file, or --no-perceptual") from None


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype, or None when autocast is off (--no-amp, or not on CUDA)."""
    import torch

    if not (cfg.amp and device.type == "cuda"):
        return None
    return torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16


# ------------------------------------------------------------------------------- checkpoints
#: the checkpoint's own entry holding the checksum of everything else in it
CHECKSUM_KEY = "sha256"
#: what every checkpoint holds, whatever the run's options
_CHECKPOINT_KEYS = ("step", "epoch", "batch_in_epoch", "generator", "opt_g", "sched_g", "scaler_g", "rng")


def _first_line(exc: BaseException) -> str:
    """The gist of an exception for a one-line message: its first sentence, at most 160 characters."""
    line = (str(exc).splitlines() or [""])[0]
    return line.split(". ")[0][:160] or type(exc).__name__


def _to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it detached and on the CPU (dicts, lists, tuples walked)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def content_digest(obj: Any, h: Any = None) -> str:
    """sha256 (hex) of a checkpoint's content in its stored order: every key, every tensor's
    dtype, shape and bytes, every other value's type and ``repr``. torch.save keeps the order
    of dicts and the types of values, so the digest of what :func:`read_checkpoint` loads
    equals the digest of what was saved unless a byte that matters changed."""
    import hashlib

    import torch

    top = h is None
    h = hashlib.sha256() if top else h
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}|".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy())  # the buffer itself: no copy of a large tensor
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}|".encode())
        for k, v in obj.items():
            h.update(f"K{k!r}|".encode())
            content_digest(v, h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}{len(obj)}|".encode())
        for v in obj:
            content_digest(v, h)
    else:
        h.update(f"{type(obj).__name__}:{obj!r}|".encode())
    return h.hexdigest() if top else ""


def read_checkpoint(path: Path) -> dict:
    """The checkpoint at ``path``, verified: its content must match the checksum stored in it.

    A checkpoint of an older tsam has no checksum and is loaded as it is. Unreadable, empty,
    truncated or altered files raise a one-line WeightsError naming the file."""
    import torch

    def damaged(why: str) -> WeightsError:
        return WeightsError(f"checkpoint {path} is damaged ({why}): it cannot be resumed; restore it from a "
                            "backup, or start a new run with another --run-dir")

    try:
        if path.stat().st_size == 0:
            raise damaged("the file is empty")
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except OSError as exc:
        raise WeightsError(f"cannot read checkpoint {path}: {exc.strerror or exc}: check the file and its "
                           "permissions") from None
    except Exception as exc:  # truncated zip, bad pickle: all one problem here
        raise damaged(f"cannot be read: {_first_line(exc)}") from None
    if not isinstance(ck, dict) or any(k not in ck for k in _CHECKPOINT_KEYS):
        raise damaged("not a tsam training checkpoint")
    stored = ck.pop(CHECKSUM_KEY, None)
    if stored is not None and stored != content_digest(ck):
        raise damaged("checksum mismatch: its content changed after it was written")
    if not all(type(ck[k]) is int and ck[k] >= 0 for k in ("step", "epoch", "batch_in_epoch")):
        raise damaged("its position in the run is not a step count")
    return ck


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
    saved_step: int | None = None  # the step of the checkpoint on disk (None: none yet)

    def save(self, path: Path, cfg: TrainConfig) -> None:
        """Write the checkpoint atomically, with its checksum (see :func:`read_checkpoint`):
        a kill or a signal leaves the old or the new complete file, never a part of one."""
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
        ck = _to_cpu(ck)  # once: the checksum and torch.save both read CPU copies
        ck[CHECKSUM_KEY] = content_digest(ck)
        step = self.step

        def write(tmp: Path) -> None:
            import torch

            torch.save(ck, tmp)

        _write_atomically(path, write, then=lambda: setattr(self, "saved_step", step))

    def load(self, path: Path) -> None:
        """Read (and verify) the checkpoint at ``path`` and restore it."""
        self.restore(read_checkpoint(path), path)

    def restore(self, ck: dict, path: Path) -> None:
        """Restore everything :meth:`save` wrote, the RNG states included. A checkpoint that
        does not fit the networks this config builds raises a one-line WeightsError."""
        try:
            self.gen.load_state_dict(ck["generator"])
            self.opt_g.load_state_dict(ck["opt_g"])
            self.sched_g.load_state_dict(ck["sched_g"])
            self.scaler_g.load_state_dict(ck["scaler_g"])
            if self.disc is not None:
                self.disc.load_state_dict(ck["discriminator"])
                self.opt_d.load_state_dict(ck["opt_d"])
                self.sched_d.load_state_dict(ck["sched_d"])
                self.scaler_d.load_state_dict(ck["scaler_d"])
            self.step, self.epoch, self.batch_in_epoch = (int(ck["step"]), int(ck["epoch"]),
                                                          int(ck["batch_in_epoch"]))
            _set_rng_state(ck["rng"])
        except Exception as exc:  # any mismatch is the same problem for the user
            raise WeightsError(f"checkpoint {path} does not fit the run's {CONFIG} ({_first_line(exc)}): "
                               f"restore the {CONFIG} it was written with, or start a new run") from None
        self.saved_step = self.step

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
    state.saved_step = state.step  # rank 0 set it with the rename; the others learn it here


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
        batches = iter(data.loader)
        try:
            for batch in batches:
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
        except BaseException:
            _stop_workers(batches)
            raise


def _stop_workers(batches: Any) -> None:
    """Stop the data-loader processes now, not when the traceback lets go of the iterator:
    they write the flow cache, which the clean-up of a failed run may be removing."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()


def _check_total(cfg: TrainConfig, total_steps: int, step: int, run_dir: Path) -> None:
    """A resumed run cannot go back: its new total must reach the checkpoint's step."""
    if total_steps >= step:
        return
    given = (f"--steps {cfg.steps}" if cfg.steps > 0 else
             f"--epochs {cfg.epochs} ({total_steps} step{'s' if total_steps != 1 else ''})")
    raise UsageError(f"{given}: the run in {run_dir} is already at step {step}: give --steps above {step} "
                     f"to train on (--steps {step} only exports its generator)")


def _export_generator(state: TrainState, cfg: TrainConfig, path: Path) -> None:
    """The final generator, for tsam inpaint: atomic, with the umask's mode."""
    from tsam_cli.model.tsam_format import save_generator

    meta = {"tsam_train_step": str(state.step), "tsam_train_dataset": cfg.dataset}
    try:
        _write_atomically(path, lambda tmp: save_generator(state.gen, tmp, extra_metadata=meta))
    except WeightsError as exc:  # save_generator reports a failed write so
        raise OutputError(f"{exc}: free some space or fix the permissions, then export it with "
                          f"tsam train --resume {shlex.quote(str(path.parent))}") from None


def _prepare(cfg: TrainConfig, run: RunFolder, ck: dict | None) -> tuple:
    """Everything before the first write: process group, data, networks, the checkpoint
    restored. Returns ``(runtime, data, state, nets, total_steps)``."""
    rt = setup_distributed(cfg)
    _seed_everything(cfg.seed)
    data = make_data(cfg, run.path, rt)
    total_steps = cfg.steps if cfg.steps > 0 else cfg.epochs * data.steps_per_epoch
    if ck is not None:
        _check_total(cfg, total_steps, int(ck["step"]), run.path)
    state, vgg = build_training(cfg, rt, ck is not None)
    if ck is not None:
        state.restore(ck, run.checkpoint)
    return rt, data, state, make_nets(cfg, state, vgg, rt), total_steps


def _run(cfg: TrainConfig, run: RunFolder, rt: Runtime, data: Data, state: TrainState, nets: Nets,
         total_steps: int) -> Path:
    """Write the config, train to ``total_steps`` (checkpoints on the way), export G."""
    if rt.master:
        if run.resume:
            _trim_metrics(run.path / METRICS, state.step)
        _write_text(run.path / CONFIG, json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    log = MetricsLog(cfg, run.path, total_steps, state.step) if rt.master else None
    try:
        train_loop(cfg, state, nets, data, total_steps, run.checkpoint, rt, log)
    finally:
        if log is not None:
            log.close()
    out_path = run.path / GENERATOR
    if rt.master:
        _export_generator(state, cfg, out_path)
    rt.close()
    return out_path


def _stopped(run: RunFolder, state: TrainState, exc: BaseException) -> BaseException:
    """What a run that stopped after its folder was made reports: true to what is on disk."""
    again = f"tsam train --resume {shlex.quote(str(run.path))}"
    if state.saved_step is None:
        after = "nothing to resume, and what the run wrote was removed"
    else:
        after = f"the last checkpoint is {run.checkpoint} (step {state.saved_step}); resume with {again}"
    if isinstance(exc, STOP_SIGNALS):
        where = f"at step {state.step}" + ("" if state.saved_step is not None else ", before the first checkpoint")
        return Interrupted(f"interrupted {where}: {after}", signal_number(exc))
    if isinstance(exc, OSError):
        what = f"{exc.filename}: " if exc.filename else ""
        return OutputError(f"training stopped at step {state.step} by an I/O error ({what}{exc.strerror or exc}): "
                           f"free some space or fix the permissions; {after}")
    return exc


def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False) -> Path:
    """Train (or resume) a run in ``run_dir``; returns the exported generator's path.

    Options, torchrun's variables, the paths and (on resume) the checkpoint are checked
    before any work; the run folder is made only once data and networks are ready. A new run
    that stops before its first checkpoint leaves nothing behind; a signal is reported with
    the checkpoint on disk (:class:`Interrupted`, exit 128 + signal)."""
    run = RunFolder(Path(run_dir), resume)
    cfg.validate()
    run.master = torchrun_env()[0] == 0
    check_paths(cfg, run.path, resume)
    run.check()
    ck = read_checkpoint(run.checkpoint) if resume else None
    if ck is not None and cfg.steps > 0:
        _check_total(cfg, cfg.steps, int(ck["step"]), run.path)  # before the data is read
    try:
        rt, data, state, nets, total_steps = _prepare(cfg, run, ck)
    except STOP_SIGNALS as exc:
        kept = f"{run.path} is unchanged" if resume else "nothing was written"
        raise Interrupted(f"interrupted before training started: {kept}", signal_number(exc)) from None
    del ck  # restored: do not hold a second copy of every weight for the whole run
    try:
        run.create()
        return _run(cfg, run, rt, data, state, nets, total_steps)
    except BaseException as exc:
        if state.saved_step is None:
            run.discard()
        reported = _stopped(run, state, exc)
        if reported is exc:
            raise
        raise reported from None
    finally:
        run.close()


def load_run_config(run_dir: Path) -> TrainConfig:
    """The :class:`TrainConfig` of an existing run directory, checked (:meth:`TrainConfig.validate`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UsageError(f"--resume {run_dir}: no {CONFIG} there (not a tsam training run)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        cfg = TrainConfig.from_dict(data)
        cfg.validate()
    except (OSError, ValueError, TypeError, UsageError) as exc:
        raise UsageError(f"{path} is not a valid training config ({_first_line(exc)}): restore it, "
                         "or start a new run") from None
    return cfg


__all__ = ["TrainConfig", "TrainState", "train", "load_run_config", "read_checkpoint", "content_digest",
           "torchrun_env", "check_paths", "RunFolder", "CHECKPOINT", "CONFIG", "METRICS", "GENERATOR",
           "METRIC_FIELDS", "CHECKSUM_KEY"]
