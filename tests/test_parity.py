"""Parity with the official TSAM forward (``../shared/reference/tsam_parity``, see its README).

A generator with seeded random weights was run through the official code (CPU, fp32); its
checkpoint (official layout, pickled ``utils.logger.Logger`` included) is loaded here through the
real loader and must reproduce the official outputs to <= 1e-6 in fp32 - directly, and through
the pipeline's :class:`~tsam_cli.core.model_fill.ModelRunner` (uint8 frames, True = hole masks,
:class:`~tsam_cli.flow.PairFlow` flows). Every speed or memory change must keep this.

Without ``../shared`` (a clean clone, CI) the same tests run on ``tests/fixtures/tsam_parity``:
the same official outputs stored compactly, and the checkpoint rebuilt from its seed (see the
fixture's README); :func:`test_in_repo_fixture_is_the_shared_one` checks, where ``../shared`` is
present, that the two are bit-identical.

Fixture conventions (official): masks 1 = known, flow masks 1 = unreliable; expected outputs
are the raw composite ``imgs * masks + pred * (1 - masks)``, not clamped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SHARED_FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "tsam_parity"
CKPT = SHARED_FIXTURE / "tsam_official_random_generator.pth"
INPUTS = SHARED_FIXTURE / "parity_inputs.npz"
IN_REPO = Path(__file__).resolve().parent / "fixtures" / "tsam_parity"
HAVE_SHARED = CKPT.is_file() and INPUTS.is_file()
needs_shared = pytest.mark.skipif(not HAVE_SHARED, reason="../shared/reference/tsam_parity is not present")
CASES = ("main", "stress", "noflow")
TOL = 1e-6  # fp32; the outputs reach magnitude ~8 (1 ulp of 8 is 9.5e-7)


def _in_repo():
    """The in-repo fixture's ``make_fixture`` module (rebuilds the weights and the arrays)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tsam_parity_fixture", IN_REPO / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_in_repo_checkpoint(path: Path) -> Path:
    """The shared checkpoint's twin from ``weights.json``: official top-level layout, a pickled
    ``utils.logger.Logger``, the same fp16 ``state_dict`` (aliases sharing storage)."""
    import torch
    from conftest import official_logger_module

    recipe = json.loads((IN_REPO / "weights.json").read_text())

    class Logger:  # what the official utils.logger.Logger pickles: an .entries dict
        def __init__(self):
            self.entries = {int(k): v for k, v in recipe["logger_entries"].items()}

    Logger.__module__, Logger.__qualname__ = "utils.logger", "Logger"  # pickled by that name
    with official_logger_module(Logger):
        torch.save({"arch": "VideoInpaintingModel", "epoch": 1, "logger": Logger(),
                    "state_dict": _in_repo().rebuild_state(recipe), "optimizer_g": None,
                    "optimizer_d_s": None, "optimizer_d_t": None, "monitor_best": float("inf"),
                    "config": recipe["config"]}, path)
    return path


def _in_repo_data() -> dict:
    """The in-repo cases as the shared npz holds them (``"<case>/<array>"`` keys)."""
    expand, data = _in_repo().expand_case, {}
    for name in CASES:
        with np.load(IN_REPO / f"{name}.npz") as d:
            data.update({f"{name}/{k}": v for k, v in expand({k: d[k] for k in d.files}).items()})
    return data


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    from tsam_cli.model.tsam_format import load_generator

    if HAVE_SHARED:
        torch.manual_seed(0)
        return load_generator(CKPT)  # an official .pth: official quirks on
    ckpt = _write_in_repo_checkpoint(tmp_path_factory.mktemp("parity") / "ckpt.pth")
    torch.manual_seed(0)
    loaded = load_generator(ckpt)
    ckpt.unlink()  # 64 MB: the basetemp of the last runs is kept
    return loaded


@pytest.fixture(scope="module")
def data():
    if not HAVE_SHARED:
        return _in_repo_data()
    with np.load(INPUTS) as d:
        return {k: d[k] for k in d.files}


@needs_shared
def test_in_repo_fixture_is_the_shared_one(tmp_path):
    """tests/fixtures/tsam_parity holds the official numbers: its arrays and its rebuilt
    checkpoint are bit-identical to ../shared's (what the clean-clone run compares against)."""
    import torch

    from tsam_cli.model.official import read_official_checkpoint

    with np.load(INPUTS) as d:
        shared = {k: d[k] for k in d.files}
    ours = _in_repo_data()
    assert ours.keys() == shared.keys()
    for k, v in shared.items():
        assert ours[k].dtype == v.dtype and ours[k].tobytes() == v.tobytes(), k
    want, got = (read_official_checkpoint(p) for p in (CKPT, _write_in_repo_checkpoint(tmp_path / "c.pth")))
    assert got["config"]["arch"] == want["config"]["arch"] and got["logger"].entries == want["logger"].entries
    assert list(got["state_dict"]) == list(want["state_dict"])
    for k, v in want["state_dict"].items():
        assert got["state_dict"][k].dtype == v.dtype and torch.equal(got["state_dict"][k], v), k


def _case(data: dict, name: str) -> dict:
    return {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith(name + "/")}


def _guide(c: dict):
    """Fixture flows -> the generator's dict (validity = 1 - official flowmask), or None."""
    import torch

    if "forward_flow" not in c:
        return None
    return {"forward": torch.from_numpy(c["forward_flow"]), "backward": torch.from_numpy(c["backward_flow"]),
            "forward_valid": torch.from_numpy(1.0 - c["forward_flowmask"]),
            "backward_valid": torch.from_numpy(1.0 - c["backward_flowmask"])}


def _runner_inputs(c: dict):
    """Fixture arrays -> ``(frames (T, H, W, 3) uint8, holes (T, H, W) bool, [PairFlow] * (T - 1))``."""
    from tsam_cli.flow.pair import PairFlow

    frames = np.rint(c["imgs"][0].transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
    holes = c["masks"][0, :, 0] == 0
    if "forward_flow" not in c:
        return frames, holes, [None] * (len(frames) - 1)
    flows = [PairFlow(c["forward_flow"][0, t].transpose(1, 2, 0), c["backward_flow"][0, t].transpose(1, 2, 0),
                      1.0 - c["forward_flowmask"][0, t, 0], 1.0 - c["backward_flowmask"][0, t, 0])
             for t in range(c["forward_flow"].shape[1])]
    return frames, holes, flows


def test_fixture_is_exact_in_uint8_and_binary(data):
    """The runner path relies on frames being multiples of 1/255 and masks being 0/1."""
    for name in CASES:
        c = _case(data, name)
        assert np.array_equal(np.rint(c["imgs"] * 255) / 255, c["imgs"].astype(np.float64).astype(np.float32))
        assert set(np.unique(c["masks"]).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("name", CASES)
def test_direct_forward_matches_official(model, data, name):
    import torch

    c = _case(data, name)
    frames = torch.from_numpy(c["imgs"])
    holes = 1.0 - torch.from_numpy(c["masks"])  # ours: 1 = hole
    with torch.inference_mode():
        out = model(frames, holes, _guide(c), clamp=False).numpy()
    diff = np.abs(out - c["expected_outputs"]).max()
    assert diff <= TOL, f"{name}: max |diff| {diff:.3g} vs the official forward"
    if name == "main":  # flows change the result: the flow path is really exercised
        with torch.inference_mode():
            plain = model(frames, holes, None, clamp=False).numpy()
        assert np.abs(plain - c["expected_outputs"]).max() > 1e-2


def _runner(model, T: int, name: str = "main", precision: str = "fp32"):
    from tsam_cli.core.model_fill import ModelRunner

    return ModelRunner(model, "cpu", length=T, stride=T, precision=precision, use_flow=name != "noflow")


def _expected(c: dict) -> np.ndarray:
    """Official output as the runner gives it: ``(T, H, W, 3)``, clamped to [0, 1]."""
    return np.clip(c["expected_outputs"][0].transpose(0, 2, 3, 1), 0.0, 1.0)


@pytest.mark.parametrize("name,chunk", [("main", 2), ("stress", 2), ("noflow", 2), ("main", None), ("main", 1)])
def test_model_runner_matches_official(model, data, name, chunk):
    """Through the runner (one window covering the clip), with the decoder's H/2 and H stages
    in chunks of ``chunk`` frames (2 = the runner's default; None = whole clip at once)."""
    c = _case(data, name)
    frames, holes, flows = _runner_inputs(c)
    runner = _runner(model, len(frames), name)
    runner.frame_chunk = chunk
    diff = np.abs(runner.predict(frames, holes, flows) - _expected(c))[holes].max()
    assert diff <= TOL, f"{name}: runner max |diff| {diff:.3g} in the holes (frame_chunk={chunk})"


def test_model_runner_uint8_output(model, data):
    """The runner's uint8 result: the official prediction rounded in the holes, input elsewhere."""
    c = _case(data, "main")
    frames, holes, flows = _runner_inputs(c)
    out = _runner(model, len(frames))(frames, holes, flows)
    want = np.where(holes[..., None], np.rint(_expected(c) * 255.0).astype(np.uint8), frames)
    assert np.array_equal(out, want)


def test_bf16_on_cpu_stays_close(model, data):
    """``--precision bf16`` on the CPU: autocast, close to fp32 (numbers in docs/benchmarks.md)."""
    c = _case(data, "main")
    frames, holes, flows = _runner_inputs(c)
    diff = np.abs(_runner(model, len(frames), precision="bf16").predict(frames, holes, flows) - _expected(c))[holes]
    assert 0 < diff.max() < 0.5 and diff.mean() < 0.05


# ------------------------------------------------------------------ without the fixture
def _small_clip(T: int = 5, h: int = 40, w: int = 56, seed: int = 0):
    """Random frames, holes (1 = hole) and flows with some invalid and far-out vectors."""
    import torch

    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(1, T, 3, h, w, generator=g)
    holes = (torch.rand(1, T, 1, h, w, generator=g) > 0.7).float()
    flows = {"forward": torch.randn(1, T - 1, 2, h, w, generator=g) * 4,
             "backward": torch.randn(1, T - 1, 2, h, w, generator=g) * 4,
             "forward_valid": (torch.rand(1, T - 1, 1, h, w, generator=g) > 0.3).float(),
             "backward_valid": (torch.rand(1, T - 1, 1, h, w, generator=g) > 0.3).float()}
    flows["forward"][..., :4, :] = 500.0  # lands outside the frame
    return frames, holes, flows


@pytest.mark.parametrize("quirks,use_flows", [(False, True), (True, True), (True, False)])
def test_frame_chunks_give_the_whole_clip_result(quirks, use_flows):
    """Decoder stages run in chunks of frames (with 1 neighbour frame each side) compute what the
    whole clip computes: chunk sizes 1, 2 and one longer than the clip. Up to float rounding:
    oneDNN may pick another kernel for another batch size (~2e-8 here; on the full model the
    parity tests above are bit-identical with chunks)."""
    import torch

    from tsam_cli.model import COMPACT, TSAMGenerator

    torch.manual_seed(1)
    g = TSAMGenerator(COMPACT.replace(official_quirks=quirks)).eval()
    frames, holes, flows = _small_clip()
    guide = flows if use_flows else None
    with torch.inference_mode():
        whole = g(frames, holes, guide, clamp=False)
        for chunk in (1, 2, 9):
            torch.testing.assert_close(g(frames, holes, guide, clamp=False, frame_chunk=chunk), whole,
                                       rtol=0, atol=1e-6, msg=f"frame_chunk={chunk}")
        other = frames.clone()
        other[:, 0] = 1.0 - other[:, 0]  # frame 0 changes frame 1's result through the shifts
        changed = g(other, holes, guide, clamp=False, frame_chunk=1)
    assert (changed[:, 1] - whole[:, 1]).abs().max() > 1e-3


def test_fit_window_shrinks_to_the_memory_available():
    from tsam_cli.core.model_fill import fit_window, window_bytes
    from tsam_cli.errors import UsageError

    h, w = 240, 432
    plenty = 100 * window_bytes(12, h, w)
    assert fit_window(12, 8, h, w, plenty) == (12, 8)
    budget = window_bytes(6, h, w) / 0.6 + 1  # room for 6 frames, not 7
    length, stride = fit_window(12, 8, h, w, int(budget))
    assert length == 6 and stride == 4 and window_bytes(7, h, w) > budget * 0.6
    assert window_bytes(12, 1080, 1920) > window_bytes(12, h, w) * 15  # grows with pixels
    with pytest.raises(UsageError, match="--max-size"):
        fit_window(12, 8, 1080, 1920, window_bytes(1, 1080, 1920) // 2)


def test_runner_auto_window_notes_when_it_shrinks(monkeypatch):
    """``auto_window``: the runner asks for the free memory once per size and says so when the
    window gets shorter; without it the configured window is used as given."""
    from tsam_cli.core import model_fill
    from tsam_cli.ui import NullReporter

    class Notes(NullReporter):
        def __init__(self):
            super().__init__()
            self.lines = []

        def info(self, msg):
            self.lines.append(msg)

    asked = []
    monkeypatch.setattr(model_fill, "available_memory",
                        lambda dev: asked.append(dev) or int(model_fill.window_bytes(4, 240, 432) / 0.6) + 1)
    rep = Notes()
    import torch

    r = model_fill.ModelRunner(torch.nn.Identity(), "cpu", 12, 8, auto_window=True, reporter=rep)
    assert r.window_for(240, 432) == (4, 3) and r.window_for(240, 432) == (4, 3)
    assert len(asked) == 1 and len(rep.lines) == 1 and "instead of 12" in rep.lines[0]
    assert model_fill.ModelRunner(torch.nn.Identity(), "cpu", 12, 8).window_for(240, 432) == (12, 8)
