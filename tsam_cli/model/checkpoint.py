"""Helpers for state dicts as training code saves them."""

from __future__ import annotations

from collections.abc import Mapping


def strip_module_prefix(state: Mapping) -> dict:
    """Drop the ``module.`` prefix that ``DataParallel``/``DistributedDataParallel`` saves put
    on every key; a state dict where not *every* key has it is returned unchanged (as a dict)."""
    keys = list(state)
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)
