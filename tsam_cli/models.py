"""The models ``--model`` names, in one table, and the ``--model auto`` policy beside it.

:data:`MODELS` says, for each name, what the model is, which entry of the weight registry
(:data:`tsam_cli.weights.REGISTRY`) holds its weights and which architecture preset
(:data:`tsam_cli.model.config.PRESETS`) it is built from. ``auto`` is not a model but a choice
(:func:`choose_model`): the official network on a CUDA GPU, the classical filler on the CPU,
where the network costs seconds per frame. Any other ``--model`` value is a weight file.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

from tsam_cli import weights
from tsam_cli.errors import WeightsError


@dataclass(frozen=True)
class ModelEntry:
    """One ``--model`` name."""

    description: str
    weights: str | None  # name in tsam_cli.weights.REGISTRY; None: no network
    preset: str | None  # architecture in tsam_cli.model.config.PRESETS (the file's own config wins)


#: every ``--model`` name that is not a file
MODELS: dict[str, ModelEntry] = {
    "classical": ModelEntry("flow-guided propagation + Telea / exemplar texture: no network", None, None),
    "compact": ModelEntry("a small TSAM generator shipped with tsam (CPU-friendly)", "tsam-compact", "compact"),
    "full": ModelEntry("the official TSAM network (the paper's weights, downloaded on first use)",
                       weights.OFFICIAL, "full"),
}
#: ``--model`` values that name no file: the models and the ``auto`` choice
MODEL_CHOICES = (*MODELS, "auto")

#: What ``--model full`` costs on a CPU, quoted by ``--model auto`` there (whole pipeline,
#: official-shaped weights, 24 frames at 432x240, 2 cores, quiet machine; docs/benchmarks.md,
#: "Speed of the learned path"): 0.91 s/frame on bmx-trees with propagation (the generator runs
#: only where holes are left), 2.36 s/frame when every frame keeps holes; peak 1.5-2.1 GiB.
#: The slower figure is quoted: at 432x240 it holds whatever the clip. Update it here only.
CPU_FULL_COST = {"s_per_frame": 2.4, "peak_gb": 2.2}
_HINTED: weakref.WeakSet = weakref.WeakSet()  # reporters that already showed the CPU hint


def cpu_cost() -> str:
    """What ``--model full`` costs on a CPU, in words (from :data:`CPU_FULL_COST`)."""
    cost = CPU_FULL_COST
    return f"about {cost['s_per_frame']:g} s/frame at 432x240 and {cost['peak_gb']:g} GB of RAM on 2 CPU cores"


def cpu_hint() -> str:
    """The one line ``--model auto`` prints on a CPU: how to get the network and its cost."""
    need = "" if os.path.isfile(weights.target_path(weights.OFFICIAL)) or os.path.isfile(weights.converted_path()) else (
        f", after `tsam weights download {weights.OFFICIAL}`")
    return (
        f"--model auto on the CPU: using the classical filler; the TSAM network is --model full"
        f"{need} ({cpu_cost()})"
    )


def choose_model(model: str, device: str, reporter=None) -> str:
    """What ``--model`` stands for in this run: ``"classical"``, a name of the ``--model``
    table (``"compact"``) or the path of a weight file.

    * ``auto`` on a CUDA device: the official weights (:func:`tsam_cli.weights.official_weights`, downloaded on
      first use); when they cannot be had (offline, corrupt download, unwritable cache) a
      warning and ``"classical"``, never an error. On the CPU: ``"classical"`` and one info
      line (:func:`cpu_hint`, once per reporter).
    * ``full``: the converted official weights, converted from the cached ``.pth`` on first
      use (not downloaded: a missing file is the usual "run tsam weights download" error).
    * anything else is returned unchanged.

    ``device`` is ``--device``; ``cuda`` without a GPU raises :class:`UsageError` as everywhere.
    """
    from tsam_cli.device import resolve_device
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    if model == "full":
        return str(weights.official_weights(reporter=rep))
    if model != "auto":
        return model
    if resolve_device(device) == "cpu":
        if rep not in _HINTED:
            _HINTED.add(rep)
            rep.info(cpu_hint())
        return "classical"
    try:
        return str(weights.official_weights(download=True, reporter=rep))
    except WeightsError as err:
        rep.warn(f"--model auto: cannot use the official TSAM weights ({err}); using the classical filler")
        return "classical"


def auto_pick(device: str = "auto") -> tuple[str, str]:
    """``(what --model auto uses on this machine, why)``, without downloading or converting."""
    from tsam_cli.device import cuda_available, cuda_name

    if device == "cpu" or not cuda_available():
        return "classical", f"no CUDA GPU seen by PyTorch; --model full costs {cpu_cost()}"
    gpu = f"CUDA GPU {cuda_name()}"
    if os.path.isfile(weights.converted_path()):
        return weights.OFFICIAL, f"{gpu}; converted weights cached ({weights.converted_path()})"
    if os.path.isfile(weights.target_path(weights.OFFICIAL)):
        return weights.OFFICIAL, f"{gpu}; converted to safetensors on first use"
    return weights.OFFICIAL, f"{gpu}; downloaded on first use (classical with a warning if that fails)"
