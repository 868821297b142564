"""LPIPS v0.1 with the AlexNet backbone (Zhang et al., "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", CVPR 2018), per frame.  Lower = more similar; 0 for
identical frames.

Definition (``lpips`` package of richzhang/PerceptualSimilarity, ``lpips/lpips.py``
``LPIPS.forward`` with its defaults ``net='alex'``, ``version='0.1'``, ``spatial=False``):

1. inputs are RGB in **[-1, 1]**, shape (N, 3, H, W); the "scaling layer" maps them to
   ``(x - shift) / scale`` with ``shift = (-0.030, -0.088, -0.188)`` and
   ``scale = (0.458, 0.448, 0.450)`` per channel (``ScalingLayer``; the v0.0 release
   skipped this step, v0.1 has it);
2. AlexNet ``features`` (torchvision layout) is run and the outputs of its five ReLUs are
   taken (``pretrained_networks.py`` ``alexnet``: slices ``features[0:2]``, ``[2:5]``,
   ``[5:8]``, ``[8:10]``, ``[10:12]``), with 64, 192, 384, 256, 256 channels;
3. each feature map is unit-normalised over channels, ``f / (sqrt(sum_c f^2) + 1e-10)``
   (``lpips.normalize_tensor``), for both images;
4. the squared difference of the normalised features goes through a 1x1 convolution with
   one output channel and no bias (``NetLinLayer``: learned non-negative channel weights),
   is averaged over height and width (``spatial_average``),
5. and the five layer values are summed.

Weights, two files (neither ships with tsam, see ``docs/eval.md``):

* backbone: torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth``
  (``AlexNet_Weights.IMAGENET1K_V1``), a full ``AlexNet`` state_dict.  Only the ``features.*``
  keys are used -- ``features.{0,3,6,8,10}.{weight,bias}`` of shapes (64, 3, 11, 11),
  (192, 64, 5, 5), (384, 192, 3, 3), (256, 384, 3, 3), (256, 256, 3, 3) -- and the
  ``classifier.*`` keys are ignored.  Module indices follow torchvision
  ``torchvision/models/alexnet.py`` ``AlexNet.features`` (Conv 0, ReLU 1, MaxPool 2, Conv 3,
  ReLU 4, MaxPool 5, Conv 6, ReLU 7, Conv 8, ReLU 9, Conv 10, ReLU 11, MaxPool 12);
* linear layers: ``lpips/weights/v0.1/alex.pth`` of PerceptualSimilarity (6009 bytes, a
  legacy-format ``torch.save`` of an ``OrderedDict``), exactly the five keys
  ``lin{0..4}.model.1.weight`` of shapes (1, C, 1, 1), C = 64, 192, 384, 256, 256 (index 1:
  ``NetLinLayer.model`` is ``Sequential(Dropout, Conv2d)``; dropout is a no-op at
  evaluation).

Both are loaded strictly (every expected key present with the expected shape); any problem
is a :class:`tsam_cli.errors.WeightsError` with a one-line message.  The scaling constants
are not in either file (the lpips package keeps them as buffers and loads ``alex.pth`` with
``strict=False``); here they are non-persistent buffers.

Minimum frame size: 31x31 (the 5th ReLU needs two 3x3/2 max-poolings after the 11x11/4
convolution to leave at least one position); smaller frames raise ``ValueError``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from tsam_cli.model.checkpoint import strip_module_prefix

# lpips/lpips.py ScalingLayer
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# lpips/lpips.py LPIPS.__init__, net == 'alex'
CHANNELS = (64, 192, 384, 256, 256)
# torchvision AlexNet.features index of the ReLU closing each LPIPS slice
# (pretrained_networks.py alexnet: slices [0:2], [2:5], [5:8], [8:10], [10:12])
TAPS = (1, 4, 7, 9, 11)
EPS = 1e-10  # lpips.normalize_tensor
MIN_SIZE = 31

BACKBONE_WEIGHTS_NAME = "alexnet-imagenet"
LIN_WEIGHTS_NAME = "lpips-alex-v0.1"
BACKBONE_FILENAME = "alexnet-owt-7be5be79.pth"
LIN_FILENAME = "alex.pth"
BACKBONE_SOURCE = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
LIN_SOURCE = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"


def alexnet_features() -> nn.Sequential:
    """torchvision's ``AlexNet.features`` (same module indices, so the same state_dict keys)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # 0
        nn.ReLU(),  # 1
        nn.MaxPool2d(kernel_size=3, stride=2),  # 2
        nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3
        nn.ReLU(),  # 4
        nn.MaxPool2d(kernel_size=3, stride=2),  # 5
        nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6
        nn.ReLU(),  # 7
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8
        nn.ReLU(),  # 9
        nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10
        nn.ReLU(),  # 11
        nn.MaxPool2d(kernel_size=3, stride=2),  # 12 (not used by LPIPS; kept for the layout)
    )


class NetLinLayer(nn.Module):
    """``model = Sequential(Dropout, Conv2d(C, 1, 1, bias=False))``: key ``model.1.weight``."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1, AlexNet.  ``forward(x0, x1)``: two float (N, 3, H, W) batches of RGB in
    [-1, 1] -> (N,) distances.  Parameters: ``features.*`` (torchvision AlexNet keys) and
    ``lin0..lin4.model.1.weight`` (lpips ``alex.pth`` keys)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.features = alexnet_features()
        for i, c in enumerate(CHANNELS):
            self.add_module(f"lin{i}", NetLinLayer(c))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five ReLU outputs of AlexNet for an already scaled input."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x)
            if i == TAPS[-1]:
                break
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(
                f"expected two (N, 3, H, W) batches of the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}"
            )
        if min(x0.shape[2:]) < MIN_SIZE:
            raise ValueError(
                f"LPIPS (AlexNet) needs frames of at least {MIN_SIZE}x{MIN_SIZE}, got {x0.shape[3]}x{x0.shape[2]}"
            )
        f0 = self.taps((x0 - self.shift) / self.scale)
        f1 = self.taps((x1 - self.shift) / self.scale)
        total = x0.new_zeros(x0.shape[0])
        for i, (a, b) in enumerate(zip(f0, f1, strict=True)):
            a = a / (torch.sqrt((a * a).sum(dim=1, keepdim=True)) + EPS)
            b = b / (torch.sqrt((b * b).sum(dim=1, keepdim=True)) + EPS)
            d = self._modules[f"lin{i}"]((a - b) ** 2)  # (N, 1, h, w)
            total = total + d.mean(dim=(1, 2, 3))
        return total


def backbone_layout() -> OrderedDict[str, tuple[int, ...]]:
    """Key -> shape of the ``features.*`` entries of torchvision's AlexNet state_dict."""
    return OrderedDict((f"features.{k}", tuple(v.shape)) for k, v in alexnet_features().state_dict().items())


def lin_layout() -> OrderedDict[str, tuple[int, ...]]:
    """Key -> shape of the published ``lpips/weights/v0.1/alex.pth``."""
    return OrderedDict((f"lin{i}.model.1.weight", (1, c, 1, 1)) for i, c in enumerate(CHANNELS))


# ----------------------------------------------------------------------------- weights


def resolve_lpips_weights(backbone: str | Path | None = None, lin: str | Path | None = None) -> tuple[Path, Path]:
    """Paths of the two LPIPS files: explicit paths, else the weight cache
    (``tsam_cli.weights.resolve``).  Raises ``WeightsError`` with one line naming every
    missing file, where to get it and the option that passes it."""
    from tsam_cli.errors import WeightsError
    from tsam_cli.weights import resolve

    found: list[Path] = []
    problems: list[str] = []
    for path, name, filename, source, option in (
        (backbone, BACKBONE_WEIGHTS_NAME, BACKBONE_FILENAME, BACKBONE_SOURCE, "--lpips-alex"),
        (lin, LIN_WEIGHTS_NAME, LIN_FILENAME, LIN_SOURCE, "--lpips-lin"),
    ):
        if path is not None:
            p = Path(path).expanduser()
            if p.is_file():
                found.append(p)
            else:
                problems.append(f"{filename} not found at {p} (get it from {source} and pass it with {option})")
            continue
        try:
            found.append(Path(resolve(name)))
        except WeightsError as exc:
            problems.append(f"{str(exc).splitlines()[0]} (or pass {option} PATH to {filename})")
    if problems:
        raise WeightsError("LPIPS weights missing: " + "; ".join(problems))
    return found[0], found[1]


def _read_state_dict(path: Path, what: str) -> dict:
    from tsam_cli.errors import WeightsError

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, HTML page, git-lfs pointer, ...
        raise WeightsError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsError(f"{what} {path} is not a state_dict (got {type(sd).__name__})")
    return strip_module_prefix(sd)


def _check_layout(sd: dict, layout: OrderedDict[str, tuple[int, ...]], path: Path, what: str) -> None:
    from tsam_cli.errors import WeightsError

    missing = [k for k in layout if k not in sd]
    if missing:
        raise WeightsError(f"{what} {path} lacks {missing[0]} ({len(missing)} of {len(layout)} expected keys missing)")
    for k, shape in layout.items():
        v = sd[k]
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != shape:
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise WeightsError(f"{what} {path}: {k} has shape {got}, expected {shape}")


def load_lpips(
    backbone_path: str | Path | None = None,
    lin_path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> LPIPS:
    """Build :class:`LPIPS`, load both files strictly, return it in eval mode on ``device``.

    Args:
        backbone_path: torchvision ``alexnet-owt-7be5be79.pth`` (a full AlexNet state_dict;
            ``classifier.*`` keys are ignored, anything else unexpected is an error), or
            ``None`` for the ``alexnet-imagenet`` entry of tsam's weight cache.
        lin_path: lpips ``weights/v0.1/alex.pth`` (exactly ``lin0..4.model.1.weight``), or
            ``None`` for the ``lpips-alex-v0.1`` cache entry.
        device: where to put the network.

    Raises ``tsam_cli.errors.WeightsError`` (one line) when a file is missing, unreadable or
    not in the published layout.
    """
    from tsam_cli.errors import WeightsError

    bpath, lpath = resolve_lpips_weights(backbone_path, lin_path)
    model = LPIPS()

    what = "AlexNet weights"
    sd = _read_state_dict(bpath, what)
    blay = backbone_layout()
    _check_layout(sd, blay, bpath, what)
    extra = [k for k in sd if k not in blay and not str(k).startswith("classifier.")]
    if extra:
        raise WeightsError(f"{what} {bpath} are not a torchvision AlexNet state_dict (unexpected key {extra[0]})")
    model.features.load_state_dict(
        OrderedDict((k[len("features."):], sd[k].float()) for k in blay), strict=True
    )

    what = "LPIPS linear weights"
    sd = _read_state_dict(lpath, what)
    llay = lin_layout()
    _check_layout(sd, llay, lpath, what)
    extra = [k for k in sd if k not in llay]
    if extra:
        raise WeightsError(f"{what} {lpath} are not lpips v0.1 alex.pth (unexpected key {extra[0]})")
    for i in range(len(CHANNELS)):
        model._modules[f"lin{i}"].load_state_dict({"model.1.weight": sd[f"lin{i}.model.1.weight"].float()}, strict=True)

    return model.eval().requires_grad_(False).to(device)


# ----------------------------------------------------------------------------- frames


def frames_to_tensor(frames) -> torch.Tensor:
    """uint8 RGB (T, H, W, 3) in [0, 255] -> float32 (T, 3, H, W) in [-1, 1]
    (``x / 127.5 - 1``, as ``lpips.im2tensor``)."""
    x = torch.as_tensor(np.asarray(frames))
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) RGB frames, got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def lpips_frames(model: LPIPS, gt, pred, batch_size: int = 8, device=None) -> np.ndarray:
    """Per-frame LPIPS between two videos.

    Args:
        model: a loaded :class:`LPIPS` (:func:`load_lpips`).
        gt, pred: uint8 RGB arrays (T, H, W, 3) (or one (H, W, 3) frame), values 0-255,
            same shape, H and W >= 31.
        batch_size: frames per forward pass.

    Returns:
        float64 array of shape (T,): 0 for identical frames, larger = more different.
    """
    a, b = np.asarray(gt), np.asarray(pred)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: ground truth {a.shape} vs result {b.shape}")
    dev = device if device is not None else next(model.parameters()).device
    out = []
    n = 1 if a.ndim == 3 else len(a)
    a4, b4 = (a[None], b[None]) if a.ndim == 3 else (a, b)
    for s in range(0, n, max(1, batch_size)):
        x0 = frames_to_tensor(a4[s : s + batch_size]).to(dev)
        x1 = frames_to_tensor(b4[s : s + batch_size]).to(dev)
        out.append(model(x0, x1).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
