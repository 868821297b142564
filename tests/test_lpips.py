"""LPIPS (AlexNet, v0.1): weight files in the published formats (random values), strict
loading, the metric against an independent re-implementation of its formula, the weight
cache, and `tsam eval --metrics psnr lpips` with and without the files.

The real files cannot be downloaded in the test environment; the random files written here
have the exact key names, shapes and serialisation of the published ones:

* torchvision ``alexnet-owt-7be5be79.pth``: a full ``AlexNet`` state_dict, ``features.*``
  (torchvision/models/alexnet.py) and ``classifier.{1,4,6}.{weight,bias}`` (the classifier
  here has small shapes: the loader must ignore those keys whatever their shape);
* lpips ``weights/v0.1/alex.pth``: a legacy (non-zip) ``torch.save`` of an OrderedDict with
  exactly ``lin{0..4}.model.1.weight``, shapes (1, C, 1, 1), C = 64, 192, 384, 256, 256,
  non-negative values (as in richzhang/PerceptualSimilarity).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsam_cli import weights
from tsam_cli.errors import WeightsError
from tsam_cli.metrics.lpips import LPIPS, frames_to_tensor, load_lpips, lpips_frames

# Written out from torchvision/models/alexnet.py (AlexNet.features), independently of the module.
ALEX_FEATURES = OrderedDict([
    ("features.0.weight", (64, 3, 11, 11)), ("features.0.bias", (64,)),
    ("features.3.weight", (192, 64, 5, 5)), ("features.3.bias", (192,)),
    ("features.6.weight", (384, 192, 3, 3)), ("features.6.bias", (384,)),
    ("features.8.weight", (256, 384, 3, 3)), ("features.8.bias", (256,)),
    ("features.10.weight", (256, 256, 3, 3)), ("features.10.bias", (256,)),
])
LIN_CHANNELS = (64, 192, 384, 256, 256)


def _random_alexnet(seed=0, classifier=True) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k, shape in ALEX_FEATURES.items():
        if len(shape) > 1:  # He initialisation keeps the activations of all five layers alive
            sd[k] = torch.randn(shape, generator=g) * (2.0 / int(np.prod(shape[1:]))) ** 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.01
    if classifier:  # the real file has (4096, 9216), (4096, 4096), (1000, 4096): small stand-ins
        for k, shape in (("classifier.1.weight", (8, 9)), ("classifier.1.bias", (8,)), ("classifier.4.weight", (8, 8)),
                         ("classifier.4.bias", (8,)), ("classifier.6.weight", (10, 8)), ("classifier.6.bias", (10,))):
            sd[k] = torch.randn(shape, generator=g)
    return sd


def _random_lin(seed=1) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return OrderedDict((f"lin{i}.model.1.weight", torch.rand((1, c, 1, 1), generator=g)) for i, c in enumerate(LIN_CHANNELS))


def _write(tmp: Path, alex=None, lin=None) -> tuple[Path, Path]:
    a, b = tmp / "alexnet-owt-7be5be79.pth", tmp / "alex.pth"
    torch.save(alex if alex is not None else _random_alexnet(), a)
    torch.save(lin if lin is not None else _random_lin(), b, _use_new_zipfile_serialization=False)
    return a, b


def _reference_lpips(alex: dict, lin: dict, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Straight from the formula (Zhang et al. 2018, eq. 1, and lpips/lpips.py v0.1):
    scaling layer, AlexNet relu1..relu5, channel unit-normalisation, squared difference,
    1x1 weights, spatial mean, sum over layers.  Written with functional ops only."""
    alex = {k: v.double() for k, v in alex.items()}
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def feats(x):
        x = (x - shift) / scale
        r1 = F.relu(F.conv2d(x, alex["features.0.weight"], alex["features.0.bias"], stride=4, padding=2))
        r2 = F.relu(F.conv2d(F.max_pool2d(r1, 3, 2), alex["features.3.weight"], alex["features.3.bias"], padding=2))
        r3 = F.relu(F.conv2d(F.max_pool2d(r2, 3, 2), alex["features.6.weight"], alex["features.6.bias"], padding=1))
        r4 = F.relu(F.conv2d(r3, alex["features.8.weight"], alex["features.8.bias"], padding=1))
        r5 = F.relu(F.conv2d(r4, alex["features.10.weight"], alex["features.10.bias"], padding=1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for i, (a, b) in enumerate(zip(feats(x0.double()), feats(x1.double()), strict=True)):
        na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lin[f"lin{i}.model.1.weight"].double().view(1, -1, 1, 1)
        total += ((na - nb) ** 2 * w).sum(1).mean(dim=(1, 2))
    return total


def _frames(seed, t=3, h=48, w=64):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- loading


def test_loads_published_layout_strictly(tmp_path):
    a, b = _write(tmp_path)
    model = load_lpips(a, b)
    alex, lin = _random_alexnet(), _random_lin()
    sd = model.state_dict()
    assert set(sd) == set(ALEX_FEATURES) | set(lin)  # scaling constants are not parameters
    for k in ALEX_FEATURES:
        assert torch.equal(sd[k], alex[k])
    for k in lin:
        assert torch.equal(sd[k], lin[k])
    assert not model.training
    # the backbone without the classifier keys loads too
    torch.save(_random_alexnet(classifier=False), tmp_path / "features_only.pth")
    load_lpips(tmp_path / "features_only.pth", b)


@pytest.mark.parametrize(
    "case", ["missing_key", "bad_shape", "unexpected_key", "lin_bad_shape", "lin_extra", "not_dict", "garbage"]
)
def test_wrong_layouts_are_one_line_weights_errors(tmp_path, case):
    alex, lin = _random_alexnet(), _random_lin()
    if case == "missing_key":
        del alex["features.8.bias"]
    elif case == "bad_shape":
        alex["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    elif case == "unexpected_key":
        alex["fc.weight"] = torch.zeros(2)
    elif case == "lin_bad_shape":
        lin["lin2.model.1.weight"] = torch.zeros(1, 256, 1, 1)
    elif case == "lin_extra":
        lin["lin5.model.1.weight"] = torch.zeros(1, 8, 1, 1)
    a, b = _write(tmp_path, alex, lin)
    if case == "not_dict":
        torch.save([torch.zeros(1)], a)
    elif case == "garbage":
        b.write_text("<html>not found</html>\n")
    with pytest.raises(WeightsError) as exc:
        load_lpips(a, b)
    assert "\n" not in str(exc.value)


def test_missing_files_name_both_and_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("TSAM_HOME", str(tmp_path / "home"))  # empty weight cache
    with pytest.raises(WeightsError) as exc:
        load_lpips()
    msg = str(exc.value)
    assert "\n" not in msg
    assert "alexnet-imagenet" in msg and "lpips-alex-v0.1" in msg
    assert "--lpips-alex" in msg and "--lpips-lin" in msg
    a, _ = _write(tmp_path)
    with pytest.raises(WeightsError) as exc:
        load_lpips(a, tmp_path / "nope.pth")
    msg = str(exc.value)
    assert "\n" not in msg and "nope.pth" in msg and "--lpips-lin" in msg and "alexnet" not in msg


def test_registry_entries_and_cache(tmp_path, monkeypatch):
    reg = weights.REGISTRY
    alex, lin = reg["alexnet-imagenet"], reg["lpips-alex-v0.1"]
    assert alex.source.ref == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", alex.filename).group(1)
    assert alex.sha256.startswith(prefix)
    assert lin.source.ref.endswith("richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth")
    assert lin.size == 6009 and len(lin.sha256) == 64

    monkeypatch.setenv("TSAM_HOME", str(tmp_path / "home"))
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    _write(tmp_path)
    (tmp_path / "alexnet-owt-7be5be79.pth").rename(weights.target_path("alexnet-imagenet"))
    (tmp_path / "alex.pth").rename(weights.target_path("lpips-alex-v0.1"))
    # random files fail the published checksums: reported as corrupt, one line
    with pytest.raises(WeightsError, match="corrupt") as exc:
        load_lpips()
    assert "\n" not in str(exc.value)
    # with the checksums lifted, the cached files are found without any path
    monkeypatch.setattr(weights, "REGISTRY", dict(reg))
    for name in ("alexnet-imagenet", "lpips-alex-v0.1"):
        weights.REGISTRY[name] = dataclasses.replace(reg[name], sha256=None)
    load_lpips()


# ----------------------------------------------------------------------------- the metric


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    a, b = _write(tmp_path_factory.mktemp("lpips"))
    return load_lpips(a, b)


def test_matches_reference_formula(model):
    gt, res = _frames(0), _frames(1)
    got = lpips_frames(model, gt, res)
    want = _reference_lpips(_random_alexnet(), _random_lin(), frames_to_tensor(gt), frames_to_tensor(res)).numpy()
    assert got.shape == (3,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert np.all(got > 0)


def test_identity_symmetry_and_batching(model):
    gt, res = _frames(2, t=5), _frames(3, t=5)
    assert np.array_equal(lpips_frames(model, gt, gt), np.zeros(5))
    np.testing.assert_allclose(lpips_frames(model, gt, res), lpips_frames(model, res, gt), rtol=1e-6)
    np.testing.assert_allclose(lpips_frames(model, gt, res, batch_size=2), lpips_frames(model, gt, res, batch_size=8),
                               rtol=1e-5, atol=1e-8)
    one = lpips_frames(model, gt[0], res[0])  # a single (H, W, 3) frame
    assert one.shape == (1,)


def test_input_range_and_small_frames(model):
    x = frames_to_tensor(np.array([[[[0, 255, 128]]]], dtype=np.uint8))
    assert x.shape == (1, 3, 1, 1)
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)
    with pytest.raises(ValueError, match="31x31"):
        lpips_frames(model, _frames(0, h=30, w=64), _frames(1, h=30, w=64))
    with pytest.raises(ValueError, match="shape mismatch"):
        lpips_frames(model, _frames(0), _frames(1, t=2))
    assert isinstance(model, LPIPS)


# ----------------------------------------------------------------------------- tsam eval


def _davis(tmp_path: Path):
    import cv2
    from conftest import translating_video

    root = tmp_path / "davis"
    seq = root / "JPEGImages" / "480p" / "clip"
    res = tmp_path / "res" / "clip"
    seq.mkdir(parents=True)
    res.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(translating_video(T=4, h=48, w=64)):
        cv2.imwrite(str(seq / f"{i:05d}.png"), f[..., ::-1])
        noisy = np.clip(f.astype(np.int64) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(res / f"{i:05d}.png"), noisy[..., ::-1])
    return root, tmp_path / "res"


def test_cli_eval_lpips_unavailable_then_with_files(tmp_path, monkeypatch, capsys):
    from tsam_cli.cli.main import main
    from tsam_cli.eval.evaluate import read_frames

    monkeypatch.setenv("TSAM_HOME", str(tmp_path / "home"))
    root, res = _davis(tmp_path)
    out = tmp_path / "r.json"
    base = ["eval", "--dataset", "davis", "--root", str(root), "--results", str(res), "--size", "64x48",
            "--json", str(out), "--csv", str(tmp_path / "r.csv"), "--metrics", "psnr", "lpips"]
    code = main(base + ["-q"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    rep = json.loads(out.read_text())
    assert rep["metrics"] == ["psnr", "lpips"]
    assert rep["mean"]["psnr"] is not None and rep["mean"]["lpips"] is None
    reason = rep["unavailable"]["lpips"]
    assert "\n" not in reason and "alexnet-imagenet" in reason
    assert "LPIPS: unavailable" in cap.out
    assert "lpips" not in rep["videos"][0]

    a, b = _write(tmp_path)
    code = main(base + ["--lpips-alex", str(a), "--lpips-lin", str(b), "-q", "--overwrite"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    rep = json.loads(out.read_text())
    assert rep["unavailable"] == {} and "LPIPS: unavailable" not in cap.out
    expected = lpips_frames(load_lpips(a, b), read_frames(root / "JPEGImages" / "480p" / "clip"), read_frames(res / "clip"))
    assert rep["videos"][0]["lpips"] == pytest.approx(float(expected.mean()), rel=1e-6)
    assert rep["mean"]["lpips"] == pytest.approx(float(expected.mean()), rel=1e-6) and rep["mean"]["lpips"] > 0
    assert "lpips" in rep["conventions"]
    header, *rows = (tmp_path / "r.csv").read_text().splitlines()
    assert "lpips" in header.split(",")
