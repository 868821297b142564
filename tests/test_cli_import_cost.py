"""``tsam --help`` loads the CLI modules, so they must not load numpy, cv2, av or torch at import
time: numpy alone costs about 80 ms of a 0.2-0.3 s start on 2 cores (docs/design.md, "CLI start-up").
Checked in a fresh interpreter, from what is in ``sys.modules`` (no timing)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "cv2", "av", "torch")


def heavy_modules_after(module: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after ``import module``."""
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_eval_command_module_imports_nothing_heavy():
    # it offers the mask kinds as choices: they come from a numpy-free module, not mask_gen
    assert heavy_modules_after("tsam_cli.cli.eval") == []


def test_mask_kinds_are_mask_gens_in_seed_order():
    from tsam_cli.data import mask_gen, mask_kinds

    assert mask_gen.KINDS is mask_kinds.KINDS
    # generate_masks seeds with KINDS.index(kind): the order is part of every generated mask
    assert mask_kinds.KINDS == ("object", "curve", "stationary")


def test_cli_imports_nothing_heavy():
    assert heavy_modules_after("tsam_cli.cli.main") == []
