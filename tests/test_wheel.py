"""A normal (non-editable) install must carry everything tsam needs, shipped weights included."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, translating_video, write_video


def test_wheel_install_runs_compact_model(tmp_path):
    if not (ROOT / "tsam_cli" / "shipped" / "tsam-compact.safetensors").is_file():
        pytest.skip("tsam_cli/shipped/tsam-compact.safetensors is not in this checkout")
    dist, site, src = tmp_path / "dist", tmp_path / "site", tmp_path / "src"
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources it builds
    for name in ("pyproject.toml", "README.md", "tsam_cli"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        src.mkdir(exist_ok=True)
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if name == "tsam_cli" else {}))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("tsam-*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    video = write_video(tmp_path / "in.mp4", translating_video(T=4, h=32, w=48), fps=10)
    # the installed copy only: the wheel's folder first on the path, run from outside the repository
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import sys, tsam_cli; assert tsam_cli.__file__.startswith(sys.argv[1]), tsam_cli.__file__; "
            "from tsam_cli.entry import run; sys.argv = ['tsam'] + sys.argv[2:]; run()")
    r = subprocess.run([sys.executable, "-c", code, str(site), "inpaint", str(video), "--box", "8,8,12,10",
                        "--model", "compact", "-o", str(tmp_path / "out.mp4"), "-q"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.mp4").stat().st_size > 0
    assert Path(site, "tsam_cli", "shipped", "tsam-compact.safetensors").is_file()
