"""The learned model inside the pipeline: padding, sliding windows, blending, CLI options."""

import numpy as np
import pytest
import torch
from conftest import moving_box_masks, read_video, translating_video, write_pngs, write_video

from tsam_cli.cli.main import main
from tsam_cli.core.model_fill import ModelRunner, Padder, window_starts, window_weights
from tsam_cli.errors import UsageError
from tsam_cli.model import TSAMGenerator, get_preset
from tsam_cli.model.tsam_format import save_generator


class Echo(torch.nn.Module):
    """Stand-in generator: returns its input frames (records window lengths and flows)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, frames, masks, flows=None):
        self.calls.append((frames.shape, None if flows is None else {k: v.shape for k, v in flows.items()}))
        assert frames.shape[-1] % 8 == 0 and frames.shape[-2] % 8 == 0
        return frames


@pytest.mark.parametrize("T,L,S", [(1, 5, 3), (5, 5, 3), (11, 5, 3), (12, 12, 8), (30, 12, 8), (9, 4, 4)])
def test_window_starts_cover_exactly(T, L, S):
    starts = window_starts(T, L, S)
    covered = np.zeros(T, int)
    for s in starts:
        covered[s : min(T, s + L)] += 1
        assert s + min(L, T) <= T  # never runs past the clip: no padding/repeated frames
    assert covered.min() >= 1
    assert starts == sorted(set(starts))


def test_padder_roundtrip():
    x = torch.rand(2, 3, 37, 51)
    p = Padder(37, 51)
    y = p.pad(x)
    assert y.shape[-2:] == (40, 56) and torch.equal(p.unpad(y), x)
    assert torch.equal(p.pad(x, fill=0.0)[..., 37:, :], torch.zeros(2, 3, 3, 56))
    assert Padder(40, 56).pad(y) is y  # already a multiple of 8: untouched


def test_runner_windows_map_frames_back_in_place():
    T, h, w = 13, 30, 45  # not multiples of 8
    v = translating_video(T=T, h=h, w=w)
    holes = np.zeros((T, h, w), bool)
    holes[:, 5:15, 10:25] = True
    echo = Echo()
    r = ModelRunner(echo, "cpu", length=5, stride=3)
    out = r(v, holes, [None] * (T - 1))
    assert np.array_equal(out, v)  # each frame's own prediction lands on that frame, blends normalise
    assert [c[0][1] for c in echo.calls] == [5] * len(window_starts(T, 5, 3))
    assert echo.calls[0][1]["forward"][1:] == (4, 2, 32, 48)
    holes_late = np.zeros_like(holes)
    holes_late[-2:, 5:15, 10:25] = True  # only the last window has holes
    echo2 = Echo()
    assert np.array_equal(ModelRunner(echo2, "cpu", length=5, stride=3)(v, holes_late, [None] * (T - 1)), v)
    assert len(echo2.calls) == 1  # windows without holes are not run
    r2 = ModelRunner(Echo(), "cpu", length=5, stride=3, use_flow=False)
    r2(v, holes, [None] * (T - 1))
    assert r2.model.calls[0][1] is None
    assert window_weights(5).tolist() == [1, 2, 3, 2, 1]


def test_runner_with_real_generator_keeps_known_pixels():
    torch.manual_seed(0)
    g = TSAMGenerator(get_preset("compact")).eval()
    T, h, w = 6, 36, 52
    v = translating_video(T=T, h=h, w=w)
    holes = np.zeros((T, h, w), bool)
    holes[:, 8:20, 10:30] = True
    out = ModelRunner(g, "cpu", length=4, stride=2)(v, holes, [None] * (T - 1))
    assert np.array_equal(out[~holes], v[~holes])


def test_runner_rejects_bad_settings():
    with pytest.raises(UsageError):
        ModelRunner(Echo(), "cpu", length=4, stride=5)
    with pytest.raises(UsageError, match="CUDA"):
        ModelRunner(Echo(), "cpu", length=4, stride=2, precision="fp16")


@pytest.fixture()
def clip(tmp_path):
    v = translating_video(T=8, h=48, w=72)
    return write_video(tmp_path / "in.mp4", v, fps=10), write_pngs(tmp_path / "m", moving_box_masks(8, 48, 72, (14, 10)))


@pytest.mark.parametrize("extra", [[], ["--no-propagation"], ["--no-flow", "--no-propagation"]])
def test_cli_model_path(clip, tmp_path, capsys, extra):
    torch.manual_seed(0)
    weights = save_generator(TSAMGenerator(get_preset("compact")).eval(), tmp_path / "g.safetensors")
    out = tmp_path / "o.mkv"
    code = main(["inpaint", str(clip[0]), "--mask", str(clip[1]), "-o", str(out), "--lossless", "-q",
                 "--model", str(weights), "--model-window", "4", "--model-stride", "3", *extra])
    assert code == 0, capsys.readouterr().err
    src, res = read_video(clip[0]), read_video(out)
    assert res.shape == src.shape
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    dil = np.stack([cv2.dilate(m, k) > 0 for m in moving_box_masks(8, 48, 72, (14, 10))])
    assert np.array_equal(res[~dil], src[~dil])


def test_cli_missing_weights(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TSAM_HOME", str(tmp_path / "home"))
    code = main(["inpaint", str(clip[0]), "--mask", str(clip[1]), "-o", str(tmp_path / "o.mp4"), "--model", "full"])
    err = capsys.readouterr().err
    assert code == 6 and "tsam weights download tsam-official" in err and len(err.strip().splitlines()) == 1
    code = main(["inpaint", str(clip[0]), "--mask", str(clip[1]), "-o", str(tmp_path / "o.mp4"), "--model", "nope.bin"])
    assert code in (2, 6) and "nope.bin" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_shipped_compact_weights(clip, tmp_path, capsys):
    """`--model compact` loads the file shipped in weights/ (checksum verified by the registry)."""
    from tsam_cli.weights import check, local_dir

    shipped = local_dir() / "tsam-compact.safetensors"
    if not shipped.is_file():
        pytest.skip("tsam_cli/shipped/tsam-compact.safetensors is not in this checkout")
    assert check(shipped, "tsam-compact") == "ok"
    out = tmp_path / "o.mp4"
    code = main(["inpaint", str(clip[0]), "--mask", str(clip[1]), "-o", str(out), "--model", "compact", "-q"])
    assert code == 0, capsys.readouterr().err
    assert read_video(out).shape == read_video(clip[0]).shape
