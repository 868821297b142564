"""Official-checkpoint loading: a synthetic checkpoint in the exact official layout, restricted
unpickling, key mapping, an independent functional transcription of the official forward, and
the safetensors round trip."""

from __future__ import annotations

import collections
import os
import pickle
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import official_logger_module

from tsam_cli.errors import WeightsError
from tsam_cli.model import FULL, TSAMGenerator
from tsam_cli.model.official import (
    InertLogger,
    convert_official,
    load_official_discriminator,
    load_official_generator,
    map_official_state,
    read_official_checkpoint,
)
from tsam_cli.model.tsam_format import load_generator, save_generator

REFERENCE_MD = Path(__file__).resolve().parents[1] / "docs" / "official-checkpoint.md"  # the project's reference notes


# ============================================================================ official key list
def official_generator_keys() -> list[tuple[str, tuple[int, ...]]]:
    """The 408 official generator keys in state_dict order (reference tables / facts 12-25)."""
    keys: list[tuple[str, tuple[int, ...]]] = []

    def bn(name: str, c: int) -> None:
        keys.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,)), (f"{name}.running_mean", (c,)),
                     (f"{name}.running_var", (c,)), (f"{name}.num_batches_tracked", ())])

    p = "coarse_net.downsample_module.base_model."
    keys.append((p + "conv1.weight", (64, 5, 7, 7)))
    bn(p + "bn1", 64)
    inplanes = 64
    for li, (planes, depth) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True), start=1):
        for bi in range(depth):
            q = f"{p}layer{li}.{bi}."
            keys.append((q + "conv1.net.weight", (planes, inplanes, 1, 1)))
            keys.append((q + "conv1.gating_conv.weight", (planes, inplanes, 1, 1)))
            bn(q + "bn1", planes)
            keys.append((q + "conv2.weight", (planes, planes, 3, 3)))
            bn(q + "bn2", planes)
            keys.append((q + "conv3.weight", (planes * 4, planes, 1, 1)))
            bn(q + "bn3", planes * 4)
            if bi == 0:
                keys.append((q + "downsample.0.weight", (planes * 4, inplanes, 1, 1)))
                bn(q + "downsample.1", planes * 4)
            inplanes = planes * 4

    u = "coarse_net.upsample_module."

    def sn(name: str, cout: int, cin: int, k: int) -> None:
        keys.extend([(f"{name}.bias", (cout,)), (f"{name}.weight_orig", (cout, cin, k, k)),
                     (f"{name}.weight_u", (cout,)), (f"{name}.weight_v", (cin * k * k,)),
                     (f"{name}.layer.weight", (cout, cin, k, k)), (f"{name}.layer.bias", (cout,))])

    def plain(name: str, cout: int, cin: int, k: int) -> None:
        keys.extend([(f"{name}.weight", (cout, cin, k, k)), (f"{name}.bias", (cout,)),
                     (f"{name}.layer.weight", (cout, cin, k, k)), (f"{name}.layer.bias", (cout,))])

    for name, cin, k in (("conv_c2", 512, 1), ("conv_c4", 1024, 1)):
        sn(u + name + ".featureConv", 256, cin, k)
        sn(u + name + ".gatingConv", 256, cin, k)
    sn(u + "deconv1.conv.featureConv", 256, 2048, 1)
    sn(u + "conv9.featureConv", 256, 256, 3)
    sn(u + "conv9.gatingConv", 256, 256, 3)
    sn(u + "deconv2.conv.featureConv", 256, 256, 1)
    sn(u + "conv10.featureConv", 256, 256, 3)
    sn(u + "conv10.gatingConv", 256, 256, 3)
    sn(u + "deconv3.conv.featureConv", 256, 256, 1)
    plain(u + "conv11.featureConv", 3, 256, 3)
    plain(u + "conv11.gatingConv", 3, 256, 3)
    return keys


def official_discriminator_keys() -> list[tuple[str, tuple[int, ...]]]:
    keys = []
    chans = [5, 64, 128, 256, 256, 256, 256]
    for i in range(1, 7):
        cin, cout, name = chans[i - 1], chans[i], f"conv{i}.featureConv"
        w = (cout, cin, 5, 5)
        if i < 6:
            keys += [(f"{name}.bias", (cout,)), (f"{name}.weight_orig", w), (f"{name}.weight_u", (cout,)),
                     (f"{name}.weight_v", (cin * 25,)), (f"{name}.layer.weight", w),
                     (f"{name}.layer.bias", (cout,))]
        else:
            keys += [(f"{name}.weight", w), (f"{name}.bias", (cout,)), (f"{name}.layer.weight", w),
                     (f"{name}.layer.bias", (cout,))]
    return keys


def vgg_keys() -> list[tuple[str, tuple[int, ...]]]:
    """Frozen VGG16 slices of the perceptual loss (fact 40)."""
    layers = [("slice1.0", 64, 3), ("slice1.2", 64, 64), ("slice2.5", 128, 64), ("slice2.7", 128, 128),
              ("slice3.10", 256, 128), ("slice3.12", 256, 256), ("slice3.14", 256, 256),
              ("slice4.17", 512, 256), ("slice4.19", 512, 512), ("slice4.21", 512, 512)]
    keys = []
    for name, cout, cin in layers:
        keys += [(f"{name}.weight", (cout, cin, 3, 3)), (f"{name}.bias", (cout,))]
    return keys


def _parse_reference_table(title: str) -> list[tuple[str, tuple[int, ...]]]:
    text = REFERENCE_MD.read_text(encoding="utf-8")
    section = text.split(title, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \| \(([\d,]*)\) \|", section, flags=re.M)
    return [(k, tuple(int(s) for s in shape.split(",") if s)) for k, shape in rows]


def test_key_lists_match_reference():
    gen, disc, vgg = official_generator_keys(), official_discriminator_keys(), vgg_keys()
    assert len(gen) == 408 and len(disc) == 34 and len(vgg) == 20
    assert len(gen) + len(disc) + len(vgg) + 2 == 464
    assert sum(int(np.prod(s)) for k, s in vgg) == 7_635_264
    if not REFERENCE_MD.is_file():
        pytest.skip(f"reference file not available: {REFERENCE_MD}")
    assert gen == _parse_reference_table("## Generator state_dict")
    assert disc == _parse_reference_table("## Temporal discriminator state_dict")


# ============================================================================ synthetic checkpoint
def _fake_logger_module():
    """A class named utils.logger.Logger, like the official training logger, in a fake module."""
    utils = types.ModuleType("utils")
    logger_mod = types.ModuleType("utils.logger")

    class Logger:
        def __init__(self):
            self.entries = {}

        def add_entry(self, entry):
            self.entries[len(self.entries) + 1] = entry

    Logger.__module__ = "utils.logger"
    Logger.__qualname__ = "Logger"
    logger_mod.Logger = Logger
    utils.logger = logger_mod
    return utils, logger_mod, Logger


def _is_alias(key: str, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether ``key`` is a spectral-norm alias of a ``.layer.weight`` / ``.layer.bias`` key."""
    base, _, leaf = key.rpartition(".")
    if leaf in ("weight_orig", "weight") and f"{base}.layer.weight" in shapes:
        return True
    return leaf == "bias" and f"{base}.layer.bias" in shapes


def _random_tensor(leaf: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """A random tensor with a sane scale for a state-dict entry named ``...<leaf>``."""
    if leaf == "num_batches_tracked":
        return torch.tensor(1234, dtype=torch.int64)
    if leaf == "running_var":
        return torch.rand(shape, generator=gen) + 0.5
    if leaf in ("running_mean", "bias"):
        return torch.randn(shape, generator=gen) * 0.1
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return torch.randn(shape, generator=gen) / fan_in**0.5
    if leaf == "weight" and len(shape) == 1:  # BN gamma
        return torch.rand(shape, generator=gen) * 0.5 + 0.5
    return F.normalize(torch.randn(shape, generator=gen), dim=0)  # weight_u / weight_v


def _with_aliases(keys, state: dict[str, torch.Tensor]) -> collections.OrderedDict[str, torch.Tensor]:
    """``state`` in the official key order, aliases pointing at the same tensors."""
    out: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    for key, _shape in keys:
        base, _, leaf = key.rpartition(".")
        if key in state:
            out[key] = state[key]
        elif leaf == "bias":
            out[key] = state[f"{base}.layer.bias"]
        else:
            out[key] = state[f"{base}.layer.weight"]
    return out


def _random_state(keys, gen: torch.Generator) -> collections.OrderedDict[str, torch.Tensor]:
    """Random tensors with sane scales; aliases share the very same tensor (as in the official)."""
    state: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    shapes = dict(keys)
    for key, shape in keys:
        if key in state or _is_alias(key, shapes):
            continue  # aliases are filled from .layer.weight / .layer.bias by _with_aliases
        state[key] = _random_tensor(key.rpartition(".")[2], shape, gen)
    return _with_aliases(keys, state)


def write_official_checkpoint(path: Path, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    g_state = _random_state(official_generator_keys(), gen)
    d_state = _random_state(official_discriminator_keys(), gen)
    v_state = _random_state(vgg_keys(), gen)
    state: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    state.update((f"generator.{k}", v) for k, v in g_state.items())
    state.update((f"temporal_discriminator.{k}", v) for k, v in d_state.items())
    state.update((f"vgg.{k}", v) for k, v in v_state.items())
    state["advloss.real_label"] = torch.tensor(1.0)
    state["advloss.fake_label"] = torch.tensor(0.0)
    state._metadata = collections.OrderedDict([("", {"version": 1})])  # as nn.Module.state_dict()
    assert len(state) == 464

    _, _, Logger = _fake_logger_module()
    logger = Logger()
    logger.add_entry({"epoch": 1, "loss": 0.25, "psnr": np.float64(28.5), "hist": np.arange(3)})
    optim = {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(4)}},
             "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                               "amsgrad": False, "params": [0]}]}
    ckpt = {
        "arch": "VideoInpaintingModel",
        "epoch": 100,
        "logger": logger,
        "state_dict": state,
        "optimizer_g": optim,
        "optimizer_d_s": None,
        "optimizer_d_t": optim,
        "monitor_best": float("inf"),
        "config": {"name": "flow_finetune_davis", "use_flow": True,
                   "arch": {"type": "VideoInpaintingModel",
                            "args": {"nc_in": 5, "nc_out": 3,
                                     "opts": {"backbone": "resnet", "norm": "SN", "nf": 64,
                                              "conv_type": "gated", "conv_by": "2dtsm",
                                              "flow_tsm": True}}}},
    }
    with official_logger_module(Logger):
        torch.save(ckpt, path)


@pytest.fixture(scope="module")
def official_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "TSAM_davis.pth"
    write_official_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def official_model(official_ckpt) -> TSAMGenerator:
    return load_official_generator(official_ckpt, official_quirks=True)


# ============================================================================ loading
def test_restricted_load_reads_layout_with_inert_logger(official_ckpt):
    assert "utils.logger" not in sys.modules
    ckpt = read_official_checkpoint(official_ckpt)
    assert "utils.logger" not in sys.modules  # never imported
    assert isinstance(ckpt["logger"], InertLogger)
    assert ckpt["logger"].entries[1]["epoch"] == 1
    assert ckpt["arch"] == "VideoInpaintingModel" and ckpt["monitor_best"] == float("inf")
    assert len(ckpt["state_dict"]) == 464


def test_all_generator_keys_consumed(official_ckpt, official_model):
    ckpt = read_official_checkpoint(official_ckpt)
    official = {k[len("generator."):]: v for k, v in ckpt["state_dict"].items()
                if k.startswith("generator.")}
    assert len(official) == 408
    mapped = map_official_state(official, official_model.state_dict())
    assert len(mapped) == 360 == len(official_model.state_dict())
    # effective weight = X.layer.weight (fact 23); the alias keys were dropped
    key = "coarse_net.upsample_module.conv9.featureConv.layer.weight"
    assert torch.equal(official_model.state_dict()[key], official[key])
    assert torch.equal(official[key], official[key.replace(".layer.weight", ".weight_orig")])
    assert official_model.config.official_quirks and official_model.config.use_flow
    # one extra key / one missing key / inconsistent aliases are all refused
    with pytest.raises(WeightsError, match="unexpected"):
        map_official_state({**official, "coarse_net.extra.weight": torch.zeros(1)},
                           official_model.state_dict())
    missing = dict(official)
    del missing["coarse_net.downsample_module.base_model.layer3.2.conv2.weight"]
    with pytest.raises(WeightsError, match="missing"):
        map_official_state(missing, official_model.state_dict())
    bad = dict(official)
    bad["coarse_net.upsample_module.conv9.featureConv.weight_orig"] = torch.zeros(256, 256, 3, 3)
    with pytest.raises(WeightsError, match="differs"):
        map_official_state(bad, official_model.state_dict())


def test_discriminator_loads_from_checkpoint(official_ckpt):
    d = load_official_discriminator(official_ckpt)
    d_sn = load_official_discriminator(official_ckpt, spectral_norm=True)
    ckpt = read_official_checkpoint(official_ckpt)
    w = ckpt["state_dict"]["temporal_discriminator.conv2.featureConv.layer.weight"]
    assert torch.equal(d.conv2.featureConv.layer.weight, w)
    assert torch.equal(d_sn.conv2.featureConv.layer.weight_orig, w)
    with torch.inference_mode():
        assert d(torch.rand(1, 2, 5, 32, 32)).shape == (1, 2, 256, 1, 1)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pth"
    torch.save({"state_dict": {"generator.x": torch.zeros(1)}, "logger": _Evil(marker)}, zipped)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    evalpk = tmp_path / "eval.pth"
    evalpk.write_bytes(b"cbuiltins\neval\n(Vprint(1)\ntR.")
    for path in (zipped, raw, evalpk):
        for loader in (read_official_checkpoint, load_generator):
            with pytest.raises(WeightsError) as err:
                loader(path)
            assert "\n" not in str(err.value)
            assert not marker.exists()
    with pytest.raises(WeightsError, match="refused to load '(posix|os|nt).system'"):
        read_official_checkpoint(zipped)


def test_bad_files_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_generator(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(WeightsError):
        load_generator(junk)
    not_tsam = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.w": torch.zeros(2)}}, not_tsam)
    with pytest.raises(WeightsError, match="no generator weights"):
        load_generator(not_tsam)
    from safetensors.torch import save_file

    nometa = tmp_path / "nometa.safetensors"
    save_file({"a": torch.zeros(2)}, str(nometa))
    with pytest.raises(WeightsError, match="config"):
        load_generator(nometa)


# ============================================================================ reference forward
# A direct functional transcription of the official forward (facts 5-35), in the official
# [B, C, L, H, W] layout, reading the official state dict by its official key names.
def _per_frame(fn, x):
    b, c, l, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * l, c, h, w))
    return y.reshape(b, l, *y.shape[1:]).transpose(1, 2)


def _ref_resize_flow(flow, size):  # visual_helper.resize_flow
    h, w = size
    fh, fw = flow.shape[-2:]
    flow = F.interpolate(flow, [h, w], mode="nearest")
    flow[:, 0] = flow[:, 0] * w / fw
    flow[:, 1] = flow[:, 1] * h / fh
    return flow


def _ref_flow_to_grid(flow):  # visual_helper.flow_to_grid
    n, _, h, w = flow.shape
    fx = flow[:, 0] / float(w) * 2.0
    fy = flow[:, 1] / float(h) * 2.0
    y, x = torch.meshgrid(torch.linspace(-1, 1, h, dtype=flow.dtype),
                          torch.linspace(-1, 1, w, dtype=flow.dtype), indexing="ij")
    grid = torch.zeros(n, h, w, 2, dtype=flow.dtype)
    grid[..., 0] = x[None] + fx
    grid[..., 1] = y[None] + fy
    return grid


def _ref_flow_shift(x, flows, fold_div):  # FlowGatedTemporalShift.shift
    b, c, l, h, w = x.shape
    x = x.transpose(1, 2)
    lf, rf, lm, rm = flows
    fh, fw = lf.shape[-2:]
    lf = lf.transpose(1, 2).reshape(b * (l - 1), 2, fh, fw)
    rf = rf.transpose(1, 2).reshape(b * (l - 1), 2, fh, fw)
    lm = lm.transpose(1, 2).reshape(b * (l - 1), 1, fh, fw)
    rm = rm.transpose(1, 2).reshape(b * (l - 1), 1, fh, fw)
    fold = c // fold_div
    out = torch.zeros_like(x)
    lgrid = _ref_flow_to_grid(_ref_resize_flow(lf, (h, w)))
    rgrid = _ref_flow_to_grid(_ref_resize_flow(rf, (h, w)))
    lm = F.interpolate(lm, (h, w), mode="nearest").reshape(b, l - 1, 1, h, w)
    rm = F.interpolate(rm, (h, w), mode="nearest").reshape(b, l - 1, 1, h, w)
    lfeat = F.grid_sample(x[:, 1:, :fold].reshape(b * (l - 1), fold, h, w), lgrid,
                          align_corners=False).reshape(b, l - 1, fold, h, w)
    rfeat = F.grid_sample(x[:, :-1, fold:2 * fold].reshape(b * (l - 1), fold, h, w), rgrid,
                          align_corners=False).reshape(b, l - 1, fold, h, w)
    lm = torch.clamp(lm + (lfeat.sum(2, keepdim=True) == 0).to(x.dtype), 0, 1).int().to(x.dtype)
    rm = torch.clamp(rm + (lfeat.sum(2, keepdim=True) == 0).to(x.dtype), 0, 1).int().to(x.dtype)
    out[:, :-1, :fold] = lfeat * (1 - lm) + lm * x[:, :-1, :fold]
    out[:, 1:, fold:2 * fold] = rfeat * (1 - rm) + rm * x[:, 1:, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.transpose(1, 2)


def reference_official_forward(sd, imgs, masks, flows):
    """imgs [B,L,3,H,W]; masks [B,L,1,H,W] with 1 = valid; flows = [fwd, bwd, fwd_mask, bwd_mask]
    each [B,L-1,C,H,W] with flowmask 1 = unreliable. Returns the clamped composite."""
    masked = imgs * masks
    inp = torch.cat([masked, masks, torch.zeros_like(masks)], dim=2).transpose(1, 2)
    flows = [f.transpose(1, 2) for f in flows]
    e = "coarse_net.downsample_module.base_model."

    def bn(x, name):
        return _per_frame(lambda y: F.batch_norm(y, sd[name + ".running_mean"], sd[name + ".running_var"],
                                                 sd[name + ".weight"], sd[name + ".bias"], False, 0.1, 1e-5), x)

    def conv(x, name, stride=1, padding=0, dilation=1, bias=None):
        return _per_frame(lambda y: F.conv2d(y, sd[name], bias, stride, padding, dilation), x)

    x = conv(inp, e + "conv1.weight", 2, 3)
    x = F.relu(bn(x, e + "bn1"))
    x = _per_frame(lambda y: F.max_pool2d(y, 3, 2, 1), x)
    feats = []
    # (layer, blocks, stride of block 0, dilation of block 0, dilation of other blocks) - fact 12
    for li, n, stride, d0, d1 in ((1, 3, 1, 1, 1), (2, 4, 2, 1, 1), (3, 6, 1, 1, 2), (4, 3, 1, 2, 4)):
        for bi in range(n):
            q = f"{e}layer{li}.{bi}."
            s, d = (stride, d0) if bi == 0 else (1, d1)
            xs = _ref_flow_shift(x, flows, 8)
            out = torch.sigmoid(conv(xs, q + "conv1.gating_conv.weight")) * conv(xs, q + "conv1.net.weight")
            out = F.relu(bn(out, q + "bn1"))
            out = F.relu(bn(conv(out, q + "conv2.weight", s, d, d), q + "bn2"))
            out = bn(conv(out, q + "conv3.weight"), q + "bn3")
            identity = x
            if bi == 0:
                identity = bn(conv(x, q + "downsample.0.weight", s), q + "downsample.1")
            x = F.relu(out + identity)
        feats.append(x)
    x1, x2, x3, x4 = feats
    u = "coarse_net.upsample_module."

    def gated(x, name, pad, act=True):
        gate = conv(x, u + name + ".gatingConv.layer.weight", padding=pad,
                    bias=sd[u + name + ".gatingConv.layer.bias"])
        feat = conv(_ref_flow_shift(x, flows, 4), u + name + ".featureConv.layer.weight", padding=pad,
                    bias=sd[u + name + ".featureConv.layer.bias"])
        if act:
            feat = F.leaky_relu(feat, 0.2)
        return torch.sigmoid(gate) * feat

    def deconv(x, name):
        x = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.leaky_relu(conv(x, u + name + ".conv.featureConv.layer.weight",
                                 bias=sd[u + name + ".conv.featureConv.layer.bias"]), 0.2)

    def up(x, s):
        return _per_frame(lambda y: F.interpolate(y, scale_factor=s, mode="nearest"), x)

    c2 = up(gated(x2, "conv_c2", 0), 4)
    c4 = up(gated(x3, "conv_c4", 0), 2)
    c1 = up(x1, 4)
    d1 = deconv(x4, "deconv1") + c4
    c9 = gated(d1, "conv9", 1)
    d2 = deconv(c9, "deconv2") + c2
    c10 = gated(d2, "conv10", 1)
    d3 = deconv(c10, "deconv3") + c1
    c11 = gated(d3, "conv11", 1, act=False)
    out = c11.transpose(1, 2) * (1 - masks) + masked
    return out.clamp(0, 1)  # inference.py:175


def test_full_quirks_forward_matches_official_transcription(official_ckpt, official_model):
    ckpt = read_official_checkpoint(official_ckpt)
    sd = {k[len("generator."):]: v.double() for k, v in ckpt["state_dict"].items()
          if k.startswith("generator.") and v.is_floating_point()}
    g = torch.Generator().manual_seed(42)
    b, t, h, w = 1, 3, 64, 96
    imgs = torch.rand(b, t, 3, h, w, generator=g, dtype=torch.float64)
    hole = torch.zeros(b, t, 1, h, w, dtype=torch.float64)
    hole[..., 16:40, 30:70] = 1
    fwd = torch.randn(b, t - 1, 2, h, w, generator=g, dtype=torch.float64) * 3
    bwd = torch.randn(b, t - 1, 2, h, w, generator=g, dtype=torch.float64) * 3
    fwd[..., :10, :20] = 500.0  # far out of frame: warped features are exactly zero (fact 33)
    valid_f = (torch.rand(b, t - 1, 1, h, w, generator=g) > 0.3).double()
    valid_b = (torch.rand(b, t - 1, 1, h, w, generator=g) > 0.3).double()
    valid_f[..., 40:, :] = 0.3  # fractional validity -> official int() truncation
    valid_b[..., :24, 48:] = 0.6

    model = official_model.double()
    try:
        with torch.inference_mode():
            ours = model(imgs, hole, {"forward": fwd, "backward": bwd,
                                      "forward_valid": valid_f, "backward_valid": valid_b})
            ref = reference_official_forward(sd, imgs, 1 - hole,
                                             [fwd, bwd, 1 - valid_f, 1 - valid_b])
            model.set_official_quirks(False)
            clean = model(imgs, hole, (fwd, bwd, valid_f, valid_b))
    finally:
        model.set_official_quirks(True)
        model.float()
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    assert (ours - clean).abs().max() > 1e-3  # the clean mode really differs
    assert torch.equal(ours[hole.expand_as(ours) == 0], imgs[hole.expand_as(imgs) == 0])


# ============================================================================ round trip
def test_convert_then_load_roundtrip(official_ckpt, official_model, tmp_path):
    dst = convert_official(official_ckpt, tmp_path / "tsam_full.safetensors")
    from safetensors import safe_open

    with safe_open(str(dst), framework="pt") as fh:
        meta = fh.metadata()
    assert FULL.replace(official_quirks=True).to_json() == meta["tsam_config"]
    loaded = load_generator(dst)
    assert loaded.config == official_model.config
    via_pth = load_generator(official_ckpt)
    g = torch.Generator().manual_seed(5)
    frames = torch.rand(1, 2, 3, 32, 48, generator=g)
    masks = (torch.rand(1, 2, 1, 32, 48, generator=g) > 0.6).float()
    flows = (torch.randn(1, 1, 2, 32, 48, generator=g), torch.randn(1, 1, 2, 32, 48, generator=g))
    with torch.inference_mode():
        a = official_model(frames, masks, flows)
        assert torch.equal(loaded(frames, masks, flows), a)
        assert torch.equal(via_pth(frames, masks, flows), a)
    assert load_generator(dst, official_quirks=False).config.official_quirks is False


def test_compact_save_load_roundtrip(tmp_path):
    from tsam_cli.model import COMPACT

    torch.manual_seed(0)
    m = TSAMGenerator(COMPACT).eval()
    path = save_generator(m, tmp_path / "compact.safetensors")
    back = load_generator(path)
    assert back.config == COMPACT
    x = torch.rand(1, 2, 3, 16, 16)
    mk = torch.zeros(1, 2, 1, 16, 16)
    mk[..., 4:10, 4:10] = 1
    with torch.inference_mode():
        assert torch.equal(back(x, mk), m(x, mk))


def test_cli_convert(official_ckpt, tmp_path, capsys):
    """`tsam weights convert` on a synthetic official checkpoint writes a loadable file; bad input is one line."""
    from tsam_cli.cli.main import main
    from tsam_cli.model.tsam_format import load_generator

    src = official_ckpt
    out = tmp_path / "full.safetensors"
    assert main(["weights", "convert", str(src), "-o", str(out)]) == 0
    assert load_generator(out).config.official_quirks
    assert main(["weights", "convert", str(src), "-o", str(out)]) == 5  # exists
    assert main(["weights", "convert", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "x.safetensors")]) == 6
    err = capsys.readouterr().err
    assert "already exists" in err and "not found" in err
    assert not (tmp_path / "x.safetensors").exists()
