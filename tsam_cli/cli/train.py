"""``tsam train``: train or fine-tune a TSAM generator (mount with ``app.command("train")(train_command)``).

torch is imported inside the command, so ``tsam --help`` stays fast (:mod:`.train.trainer`
imports it lazily too). The option defaults and the checks of their values live in
:class:`~tsam_cli.train.trainer.TrainConfig`; this module only turns flags into a config.
User mistakes raise :mod:`tsam_cli.errors` types (DatasetError, UsageError, WeightsError),
which the CLI turns into one line and an exit code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from tsam_cli.errors import UsageError
from tsam_cli.options import parse_size
from tsam_cli.train.trainer import TrainConfig

_D = TrainConfig()  # the defaults of the options below


def _read_model(text: str) -> tuple[str, dict | None]:
    """--model as (preset name, model config): a name as it is, a .json file read as a config."""
    if not text.endswith(".json"):
        return text, None
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"--model {text}: file not found")
    try:
        model_config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--model {text}: cannot read it ({exc.strerror or exc}): check the file") from None
    except ValueError as exc:
        raise UsageError(f"--model {text}: not valid JSON ({exc})") from None
    return (text if model_config is None else "custom"), model_config


#: what a resumed run may change; everything else comes from its config.json
_RESUME_OPTIONS = {"resume", "steps", "epochs", "quiet", "workers", "device"}


def _refuse_ignored_options(ctx: typer.Context) -> None:
    """With --resume, an option the resumed run would silently ignore is a UsageError."""
    for param in ctx.command.params:
        # by name: typer may bring its own copy of click's ParameterSource enum
        given = getattr(ctx.get_parameter_source(param.name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")
        if given and param.name not in _RESUME_OPTIONS:
            raise UsageError(f"{param.opts[0]} cannot change with --resume (the run keeps the options of its "
                             "config.json): leave it out, or start a new run with --run-dir")


def _resumed_config(run_dir: Path, steps: int | None, epochs: int | None, **runtime) -> TrainConfig:
    """The saved config of ``run_dir`` (checked), with a new total length if one is given
    and the ``runtime`` options (quiet, workers, device) of this command."""
    from tsam_cli.train.trainer import load_run_config

    if steps is not None and epochs is not None:
        raise UsageError("give --steps N or --epochs N, not both")
    cfg = load_run_config(run_dir)
    if steps is not None:
        cfg.steps, cfg.epochs = steps, 0
    elif epochs is not None:
        cfg.epochs, cfg.steps = epochs, 0
    for name, value in runtime.items():
        setattr(cfg, name, value)
    cfg.validate()
    return cfg


def _default_run_dir() -> Path:
    """``runs/train-<time>`` in the current folder; under torchrun every process must be told
    the same folder instead."""
    from tsam_cli.train.trainer import torchrun_env

    if torchrun_env()[1] > 1:
        raise UsageError("under torchrun give --run-dir (every process must use the same folder)")
    return Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")


def _new_config(p: dict) -> TrainConfig:
    """The :class:`TrainConfig` of a new run from the command's parameters, validated."""
    if p["root"] is None:
        raise UsageError("give --root, the dataset folder (or --resume RUN_DIR)")
    width, height = parse_size(p["size"])
    model_name, model_config = _read_model(p["model"])
    same = ("dataset", "split", "frames", "batch_size", "stage1_steps", "lr", "seed", "vgg", "gan", "workers",
            "device", "amp", "amp_dtype", "grad_clip", "sample_every", "ckpt_every", "quiet")
    cfg = TrainConfig(
        root=str(p["root"]), model=model_name, model_config=model_config, width=width, height=height,
        steps=p["steps"] or 0, epochs=p["epochs"] or 0, init=str(p["init"]) if p["init"] else None,
        perceptual=not p["no_perceptual"], flow_cache=str(p["flow_cache"]) if p["flow_cache"] else None,
        **{name: p[name] for name in same},
    )
    cfg.validate()
    return cfg


def train_command(
    ctx: typer.Context,
    dataset: str = typer.Option(_D.dataset, "--dataset", help="davis (ROOT/JPEGImages/480p/<seq>), youtube-vos (ROOT/train/JPEGImages/<id>) or folder (videos / frame folders in ROOT)."),
    root: Path | None = typer.Option(None, "--root", help="Dataset root folder."),
    split: str = typer.Option(_D.split, "--split", help="DAVIS only: paper (the 60 training videos of the paper) or all."),
    model: str = typer.Option(_D.model, "--model", help="Architecture: compact, full, or a JSON file with a model config."),
    size: str = typer.Option(f"{_D.width}x{_D.height}", "--size", help="Training clip size WIDTHxHEIGHT (multiples of 8; paper: 432x240)."),
    frames: int = typer.Option(_D.frames, "--frames", help="Frames per training clip (paper: 7)."),
    batch_size: int = typer.Option(_D.batch_size, "--batch-size", help="Clips per batch and per process (paper: 8)."),
    steps: int | None = typer.Option(None, "--steps", help="Total optimiser steps (with --resume: the new total)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Total epochs (one random clip per video per epoch), instead of --steps."),
    stage1_steps: int = typer.Option(_D.stage1_steps, "--stage1-steps", help="Steps of stage 1 (L1 + perceptual + style); then stage 2 adds hole L1 and the GAN. 0 = stage 2 from the start (fine-tuning)."),
    lr: float = typer.Option(_D.lr, "--lr", help="Adam learning rate (official configs: 5e-4 pre-training, 2.5e-4 fine-tuning)."),
    seed: int = typer.Option(_D.seed, "--seed", help="Seed: same seed, same data and same weights."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Output folder of a new run (default runs/train-<time>)."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint (its options stay; give only --steps/--epochs, --workers, --device, -q)."),
    init: Path | None = typer.Option(_D.init, "--init", help="Start from these generator weights (tsam .safetensors or official .pth): fine-tuning."),
    vgg: str = typer.Option(_D.vgg, "--vgg", help="VGG-16 weights for the perceptual/style losses: a path or a registry name."),
    no_perceptual: bool = typer.Option(not _D.perceptual, "--no-perceptual", help="Train without the perceptual and style losses."),
    gan: str = typer.Option(_D.gan, "--gan", help="GAN objective: lsgan (official: sigmoid + MSE), hinge or bce."),
    workers: int = typer.Option(_D.workers, "--workers", help="Data-loading processes per training process."),
    device: str = typer.Option(_D.device, "--device", help="auto, cpu or cuda."),
    amp: bool = typer.Option(_D.amp, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 autocast)."),
    amp_dtype: str = typer.Option(_D.amp_dtype, "--amp-dtype", help="bf16, or fp16 (with gradient scaling) for GPUs without bf16."),
    grad_clip: float = typer.Option(_D.grad_clip, "--grad-clip", help="Clip the gradient norm to this value (0 = off, as the official code)."),
    sample_every: int = typer.Option(_D.sample_every, "--sample-every", help="Write a sample PNG every N steps (0 = never)."),
    ckpt_every: int = typer.Option(_D.ckpt_every, "--ckpt-every", help="Write a checkpoint every N steps (always at the end)."),
    flow_cache: Path | None = typer.Option(_D.flow_cache, "--flow-cache", help="Optical-flow cache folder (default RUN_DIR/flow_cache; share it between runs)."),
    quiet: bool = typer.Option(_D.quiet, "--quiet", "-q", help="No progress display."),
) -> None:
    """Train a TSAM generator (paper §4.2 schedule); see docs/training.md."""
    from tsam_cli.train.trainer import train

    if resume is not None:
        _refuse_ignored_options(ctx)
        cfg = _resumed_config(resume, steps, epochs, quiet=quiet, workers=workers, device=device)
        out = train(cfg, resume, resume=True)
    else:
        cfg = _new_config(ctx.params)
        out = train(cfg, run_dir if run_dir is not None else _default_run_dir())
    if not quiet:
        typer.echo(f"generator written to {out}")


__all__ = ["train_command"]
