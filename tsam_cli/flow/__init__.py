"""The flow stage, below both inpainting (:mod:`tsam_cli.core`) and mask making
(:mod:`tsam_cli.masking`), one module per paper component:

* :mod:`.estimate`: optical flow (OpenCV DIS), pluggable estimators;
* :mod:`.complete`: flow completion inside holes by motion layers;
* :mod:`.validity`: paper Eq. 2 and the motion-layer check;
* :mod:`.pair`: one pair of neighbouring frames: both flows, completed, with validity;
* :mod:`.beyond`: outpainting: the region past a still edge of the picture held still;
* :mod:`.warp`: tensor helpers (grow a hole, sample along a flow).

Conventions (numpy, processing resolution): frames ``(H, W, 3) uint8 RGB``; holes ``(H, W)
bool``, True = hole; a flow ``F`` is ``(H, W, 2) float32`` in pixels, ``F[y, x] = (dx, dy)``:
the pixel at ``(x, y)`` of the first image moves to ``(x + dx, y + dy)`` in the second
(paper Eq. 1).
"""

from tsam_cli.flow.complete import GlobalMotion, complete_flow, smooth_fill
from tsam_cli.flow.estimate import make_estimator
from tsam_cli.flow.pair import PairFlow, pair_flow, still_pair_flow, upscale_pair_flow
from tsam_cli.flow.validity import validity
from tsam_cli.flow.warp import grow, sample

__all__ = [
    "GlobalMotion", "PairFlow", "complete_flow", "grow", "make_estimator", "pair_flow", "sample", "smooth_fill",
    "still_pair_flow", "upscale_pair_flow", "validity",
]
