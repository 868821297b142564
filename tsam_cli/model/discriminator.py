"""Temporal PatchGAN discriminator (official ``SNTemporalPatchGANDiscriminator``,
networks.py:161-212; facts 36-38 of docs/official-checkpoint.md).

The official "3-D" convs are per-frame 2-D 5x5 convs (stride 2) preceded by a zero-padded
temporal shift (fold C // 4), i.e. TSM "3-D by 2-D" convolutions. Layers: conv1 5->nf (padding 1),
conv2 nf->2nf, conv3 2nf->4nf, conv4..conv6 4nf->4nf (padding 2); LeakyReLU(0.2) after conv1-5,
nothing after conv6, optional sigmoid at the end.

Spectral norm: the official wrapper computes SN but never uses it (fact 23), so the official
forward equals ``spectral_norm=False``. ``spectral_norm=True`` (for training) applies a real
``torch.nn.utils.spectral_norm`` to conv1-5 (keys ``convX.featureConv.layer.weight_orig``,
``weight_u``, ``weight_v``; conv6 has no SN, as in the official model).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tsam_cli.model.tsam_conv import ShiftFrameConv


class DiscriminatorConv(nn.Module):
    """TSM + 5x5 stride-2 conv (+ LeakyReLU). Key prefix ``featureConv.layer.``."""

    def __init__(
        self, in_channels: int, out_channels: int, padding: int, activation: bool,
        spectral_norm: bool, fold_div: int = 4, leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.featureConv = ShiftFrameConv(
            in_channels, out_channels, 5, stride=2, padding=padding, fold_div=fold_div
        )
        if spectral_norm:
            self.featureConv.layer = nn.utils.spectral_norm(self.featureConv.layer)
        self.activation = activation
        self.leaky_slope = leaky_slope

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        out = self.featureConv(x, t, None)
        return F.leaky_relu(out, self.leaky_slope) if self.activation else out


class TemporalPatchDiscriminator(nn.Module):
    """Temporal PatchGAN discriminator.

    ``forward(video)``: video (B, T, C, H, W) with C = ``in_channels`` (official: RGB in [0, 1],
    mask with 1 = valid, zero guidance; fact 36). Returns (B, T, 4*nf, h', w') scores, in (0, 1)
    when ``use_sigmoid`` (240x432 -> 4x7). Parameters for the official sizes: 5,948,416.
    """

    def __init__(
        self, in_channels: int = 5, nf: int = 64, use_sigmoid: bool = True,
        spectral_norm: bool = False, fold_div: int = 4, leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.use_sigmoid = use_sigmoid
        chans = [in_channels, nf, 2 * nf, 4 * nf, 4 * nf, 4 * nf, 4 * nf]
        for i in range(6):
            last = i == 5
            conv = DiscriminatorConv(
                chans[i], chans[i + 1], padding=1 if i == 0 else 2, activation=not last,
                spectral_norm=spectral_norm and not last, fold_div=fold_div,
                leaky_slope=leaky_slope,
            )
            setattr(self, f"conv{i + 1}", conv)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5:
            raise ValueError(f"video must have shape (B, T, C, H, W), got {tuple(video.shape)}")
        b, t, c, h, w = video.shape
        x = video.reshape(b * t, c, h, w)
        for i in range(1, 7):
            x = getattr(self, f"conv{i}")(x, t)
        if self.use_sigmoid:
            x = torch.sigmoid(x)
        return x.view(b, t, *x.shape[1:])
