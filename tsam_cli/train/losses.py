"""TSAM training losses, paper Eq. 5-6 with the official normalisations.

``L_total = λa·L1_all + λc·L1_hole + λp·L_perc + λs·L_style + λG·L_G`` (Eq. 5, Eq. 6), weights
from paper §4.2 "Training Details": λa = 1, λc = 6, λp = 1, λs = 2, λG = 0.1.

Normalisation (Eq. 6 writes sums; the official code takes means):
  * ``l1``: mean |Y' - Y| over all B*T*3*H*W values (src/model/loss_module.py:16-27, L1Loss
    reduction "mean").
  * ``hole``: mean of |Y' - Y| * hole over *all* values, not over the hole pixels
    (loss_module.py:30-41: L1Loss(mean) of ``outputs*(1-masks)`` with masks 1 = valid).
  * ``perceptual``: sum over relu2_2, relu3_3, relu4_3 of the mean L1 between features
    (loss_module.py:49-56; relu1_2 is extracted but unused), averaged over frames.
  * ``style``: L1 between Gram matrices G = F·Fᵀ / (C·H·W) of relu2_2, relu3_3, relu4_3, layer i
    divided by 2^(i+1) (loss_module.py:80-109), averaged over frames. The official Gram views
    the whole batch as one (B·C x HW) matrix, mixing samples when B > 1; here each sample has
    its own Gram (identical for B = 1).
  * GAN (temporal PatchGAN on [RGB, valid mask, zero guidance], video_inpainting_model.py:119-
    144): ``lsgan`` = sigmoid scores + MSE to 1/0 (official, loss_module.py:327-361); ``hinge``
    and ``bce`` use raw scores (hinge: relu(1 -/+ D); bce: BCE-with-logits). D loss =
    (real + fake) / 2 (trainer.py:479-482).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_KINDS = ("lsgan", "hinge", "bce")


def l1_all(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def l1_hole(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Official normalisation: divided by the number of all values, not of hole values."""
    return ((pred - target).abs() * hole).mean()


def gram(feat: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices divided by C*H*W."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def vgg_losses(vgg, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Perceptual and style losses of (B, T, 3, H, W) videos, averaged over frames.

    Frames are batched through the VGG together; with B*T frames, "mean over elements then
    mean over frames" equals the mean over all elements, since every frame has the same size.
    Computed in float32 (Gram matrices overflow in float16).
    """
    b, t = pred.shape[:2]
    with torch.autocast(device_type=pred.device.type, enabled=False):
        x = torch.cat([pred.reshape(b * t, *pred.shape[2:]), target.reshape(b * t, *target.shape[2:])]).float()
        feats = vgg(x)
        perc = pred.new_zeros((), dtype=torch.float32)
        style = pred.new_zeros((), dtype=torch.float32)
        for i, f in enumerate(feats[1:]):  # relu2_2, relu3_3, relu4_3
            fo, ft = f[: b * t], f[b * t:].detach()
            perc = perc + (fo - ft).abs().mean()
            style = style + (gram(fo) - gram(ft)).abs().mean() / (2 ** (i + 1))
    return perc, style


def disc_input(video: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """[RGB, valid mask (1 = known), zero guidance] along channels: the official D input."""
    valid = 1.0 - hole
    return torch.cat([video, valid, torch.zeros_like(valid)], dim=2)


def gan_g_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss from the discriminator's scores on the output."""
    s = fake_scores.float()
    if kind == "lsgan":
        return F.mse_loss(s, torch.ones_like(s))
    if kind == "hinge":
        return -s.mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(s, torch.ones_like(s))
    raise ValueError(f"unknown GAN loss {kind!r}: use one of {', '.join(GAN_KINDS)}")


def gan_d_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator loss (real + fake) / 2."""
    r, f = real_scores.float(), fake_scores.float()
    if kind == "lsgan":
        real, fake = F.mse_loss(r, torch.ones_like(r)), F.mse_loss(f, torch.zeros_like(f))
    elif kind == "hinge":
        real, fake = F.relu(1.0 - r).mean(), F.relu(1.0 + f).mean()
    elif kind == "bce":
        real = F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
        fake = F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    else:
        raise ValueError(f"unknown GAN loss {kind!r}: use one of {', '.join(GAN_KINDS)}")
    return (real + fake) / 2


__all__ = [
    "GAN_KINDS", "l1_all", "l1_hole", "gram", "vgg_losses", "disc_input",
    "gan_g_loss", "gan_d_loss",
]
