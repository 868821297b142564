"""VGG-16 feature extractor for the perceptual and style losses (paper §3.4, refs [18], [9]).

Built here (torchvision is not a dependency) with torchvision's module layout, so the
ImageNet file ``vgg16-397923af.pth`` (registry name ``vgg16-imagenet``) loads with its own key
names ``features.N.weight`` / ``features.N.bias``: the ``features`` part strictly, the
``classifier.*`` part (the fully connected head, not needed for features) checked by name and
dropped. Files holding only ``features.*`` keys are accepted too.

Outputs: relu1_2, relu2_2, relu3_3, relu4_3 (= ``features`` indices 3, 8, 15, 22), the four
slices of the official ``Vgg16`` (src/model/vgg.py:16-23).

Input: RGB in [0, 1], normalised here with the ImageNet mean/std that torchvision's weights
expect. Note: the official code feeds [0, 1] pixels *without* this normalisation
(src/model/video_inpainting_model.py:103); ``normalize=False`` reproduces that.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from tsam_cli.errors import WeightsError

#: torchvision VGG-16 "D" configuration: channels per conv, "M" = 2x2 max-pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: ``features`` indices after which relu1_2, relu2_2, relu3_3, relu4_3 are taken.
TAPS = (3, 8, 15, 22)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSIFIER_KEYS = {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    """Frozen VGG-16 trunk returning ``[relu1_2, relu2_2, relu3_3, relu4_3]``."""

    def __init__(self, normalize: bool = True) -> None:
        super().__init__()
        self.features = _features()
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:  # always frozen, always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                outs.append(x)
                if i == TAPS[-1]:
                    break
        return outs


def load_vgg16(path: str | Path, normalize: bool = True) -> VGG16Features:
    """Build :class:`VGG16Features` and load torchvision's ``vgg16-397923af.pth`` layout.

    Raises :class:`WeightsError` (one line) for a missing, unreadable or mismatching file.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"VGG-16 weights not found: {p}")
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = (str(exc).splitlines() or [""])[0][:160] or type(exc).__name__
        raise WeightsError(f"cannot read VGG-16 weights {p}: {msg}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{p} is not a VGG-16 state_dict")
    unknown = sorted(k for k in state if not k.startswith("features.") and k not in CLASSIFIER_KEYS)
    if unknown:
        raise WeightsError(f"{p} is not torchvision's VGG-16 layout (unexpected key '{unknown[0]}')")
    model = VGG16Features(normalize=normalize)
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    try:
        model.features.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise WeightsError(f"{p} does not match VGG-16: {first}") from None
    return model


__all__ = ["VGG16Features", "load_vgg16", "VGG16_CFG", "TAPS", "IMAGENET_MEAN", "IMAGENET_STD"]
