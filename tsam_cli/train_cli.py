"""``tsam train``: train or fine-tune a TSAM generator (mount with ``app.command("train")(train_command)``).

torch is imported inside the command, so ``tsam --help`` stays fast. User mistakes raise
:mod:`tsam_cli.errors` types (DatasetError, UsageError, WeightsError), which the CLI turns
into one line and an exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import UsageError


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: write WIDTHxHEIGHT, e.g. 432x240") from None
    if w < 16 or h < 16 or w % 8 or h % 8:
        raise UsageError(f"--size {text}: width and height must be multiples of 8 and at least 16")
    return w, h


def train_command(
    dataset: str = typer.Option("folder", "--dataset", help="davis (ROOT/JPEGImages/480p/<seq>), youtube-vos (ROOT/train/JPEGImages/<id>) or folder (videos / frame folders in ROOT)."),
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset root folder."),
    split: str = typer.Option("paper", "--split", help="DAVIS only: paper (the 60 training videos of the paper) or all."),
    model: str = typer.Option("compact", "--model", help="Architecture: compact, full, or a JSON file with a model config."),
    size: str = typer.Option("432x240", "--size", help="Training clip size WIDTHxHEIGHT (multiples of 8; paper: 432x240)."),
    frames: int = typer.Option(7, "--frames", help="Frames per training clip (paper: 7)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Clips per batch and per process (paper: 8)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total optimiser steps (with --resume: the new total)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Total epochs (one random clip per video per epoch), instead of --steps."),
    stage1_steps: int = typer.Option(0, "--stage1-steps", help="Steps of stage 1 (L1 + perceptual + style); then stage 2 adds hole L1 and the GAN. 0 = stage 2 from the start (fine-tuning)."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate (official configs: 5e-4 pre-training, 2.5e-4 fine-tuning)."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed, same data and same weights."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Output folder of a new run (default runs/train-<time>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from these generator weights (tsam .safetensors or official .pth): fine-tuning."),
    vgg: str = typer.Option("vgg16-imagenet", "--vgg", help="VGG-16 weights for the perceptual/style losses: a path or a registry name."),
    no_perceptual: bool = typer.Option(False, "--no-perceptual", help="Train without the perceptual and style losses."),
    gan: str = typer.Option("lsgan", "--gan", help="GAN objective: lsgan (official: sigmoid + MSE), hinge or bce."),
    workers: int = typer.Option(2, "--workers", help="Data-loading processes per training process."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 autocast)."),
    amp_dtype: str = typer.Option("bf16", "--amp-dtype", help="bf16, or fp16 (with gradient scaling) for GPUs without bf16."),
    grad_clip: float = typer.Option(0.0, "--grad-clip", help="Clip the gradient norm to this value (0 = off, as the official code)."),
    sample_every: int = typer.Option(500, "--sample-every", help="Write a sample PNG every N steps (0 = never)."),
    ckpt_every: int = typer.Option(500, "--ckpt-every", help="Write a checkpoint every N steps (always at the end)."),
    flow_cache: Optional[Path] = typer.Option(None, "--flow-cache", help="Optical-flow cache folder (default RUN_DIR/flow_cache; share it between runs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Train a TSAM generator (paper §4.2 schedule); see docs/training.md."""
    import json
    import time

    from .train.trainer import TrainConfig, load_run_config, train

    if resume is not None:
        cfg = load_run_config(resume)
        if steps is not None:
            cfg.steps, cfg.epochs = steps, 0
        elif epochs is not None:
            cfg.epochs, cfg.steps = epochs, 0
        cfg.quiet, cfg.workers, cfg.device = quiet, workers, device
        out = train(cfg, resume, resume=True)
    else:
        if root is None:
            raise UsageError("give --root, the dataset folder (or --resume RUN_DIR)")
        if steps is None and epochs is None:
            raise UsageError("give --steps N or --epochs N")
        w, h = _parse_size(size)
        model_config = None
        if model.endswith(".json"):
            p = Path(model)
            if not p.is_file():
                raise UsageError(f"--model {model}: file not found")
            try:
                model_config = json.loads(p.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise UsageError(f"--model {model}: not valid JSON ({exc})") from None
        elif model not in ("compact", "full"):
            raise UsageError(f"--model {model!r}: use compact, full or a .json model config")
        if dataset not in ("davis", "youtube-vos", "folder"):
            raise UsageError(f"--dataset {dataset!r}: use davis, youtube-vos or folder")
        cfg = TrainConfig(
            dataset=dataset, root=str(root), split=split, model=model if model_config is None else "custom",
            model_config=model_config, width=w, height=h, frames=frames, batch_size=batch_size,
            steps=steps or 0, epochs=epochs or 0, stage1_steps=stage1_steps, lr=lr, seed=seed,
            init=str(init) if init else None, vgg=vgg, perceptual=not no_perceptual, gan=gan,
            workers=workers, device=device, amp=amp, amp_dtype=amp_dtype, grad_clip=grad_clip,
            sample_every=sample_every, ckpt_every=ckpt_every,
            flow_cache=str(flow_cache) if flow_cache else None, quiet=quiet,
        )
        if run_dir is None:
            import os

            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise UsageError("under torchrun give --run-dir (every process must use the same folder)")
            run_dir = Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
        out = train(cfg, run_dir)
    if not quiet:
        typer.echo(f"generator written to {out}")


__all__ = ["train_command"]
