"""TSAM generator (paper Fig. 2; facts 2-3, 5-21 of docs/official-checkpoint.md).

Module tree (attribute names chosen so that, for ``FULL``, our ``state_dict()`` keys are exactly
the official generator keys minus the 48 spectral-norm alias/buffer keys, see
:mod:`tsam_cli.model.official`)::

    TSAMGenerator
      coarse_net: CoarseNet
        downsample_module: Encoder
          base_model: DilatedResNet       stem conv1/bn1 + layer1..layer4 of Bottleneck
        upsample_module: UpSampleResNetSkipGated

Inside the network, tensors are frame-stacked ``(B*T, C, H, W)``; see
:mod:`tsam_cli.model.tsam_conv`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from tsam_cli.model.config import EXPANSION, FULL, ModelConfig
from tsam_cli.model.tsam_conv import DecoderGatedConv, EncoderGatedShiftConv, FlowGuide, ShiftAlign, UpConv

FlowsArg = Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | None


class Bottleneck(nn.Module):
    """ResNet V1.5 bottleneck (stride on conv2; resnet.py:83-135) whose conv1 is a gated TSAM conv
    (fact 14). The residual path is not shifted."""

    def __init__(
        self, inplanes: int, planes: int, stride: int, dilation: int, downsample: bool,
        fold_div: int, official_quirks: bool, bn_eps: float,
    ) -> None:
        super().__init__()
        out = planes * EXPANSION
        self.conv1 = EncoderGatedShiftConv(inplanes, planes, fold_div, official_quirks)
        self.bn1 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out, eps=bn_eps)
        self.downsample: nn.Sequential | None = None
        if downsample:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out, eps=bn_eps),
            )

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        if torch.is_grad_enabled():
            out = F.relu(self.bn1(self.conv1(x, t, flows)))
            out = F.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return F.relu(out + identity)
        # inference: the same ops in place on fresh outputs (fewer large blocks to allocate)
        out = self.bn1(self.conv1(x, t, flows)).relu_()
        out = self.bn2(self.conv2(out)).relu_()
        return self.bn3(self.conv3(out)).add_(identity).relu_()


class DilatedResNet(nn.Module):
    """ResNet encoder with output stride 8 (fact 12; ``replace_stride_with_dilation=[F, T, T]``).

    Returns ``[x1 (4*w0 ch, H/4), x2 (4*w1, H/8), x3 (4*w2, H/8), x4 (4*w3, H/8)]``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.in_channels, cfg.stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem_width, eps=cfg.bn_eps)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = cfg.stem_width
        dilation = 1
        # (stride, dilate) per stage, torchvision _make_layer semantics (resnet.py:191-209)
        plan = [(1, False), (2, False), (2, True), (2, True)]
        stages = []
        for planes, depth, (stride, dilate) in zip(cfg.widths, cfg.depths, plan, strict=True):
            previous = dilation
            if dilate:
                dilation *= stride
                stride = 1
            blocks = []
            for i in range(depth):
                first = i == 0
                blocks.append(
                    Bottleneck(
                        inplanes, planes,
                        stride=stride if first else 1,
                        dilation=previous if first else dilation,
                        downsample=first and (stride != 1 or inplanes != planes * EXPANSION),
                        fold_div=cfg.shift_div_encoder,
                        official_quirks=cfg.official_quirks,
                        bn_eps=cfg.bn_eps,
                    )
                )
                inplanes = planes * EXPANSION
            stages.append(nn.ModuleList(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> list[torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x, t, flows)
            feats.append(x)
        return feats


class Encoder(nn.Module):
    """Holds the ResNet as ``base_model`` (the official ``TSN`` wrapper, fact 2)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.base_model = DilatedResNet(cfg)

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> list[torch.Tensor]:
        return self.base_model(x, t, flows)


class UpSampleResNetSkipGated(nn.Module):
    """Skip-connected decoder (facts 16-21; modules.py:223-284).

    5 gated TSAM convs (conv_c2, conv_c4, conv9, conv10, conv11; decoder fold = C // 4) and
    3 nearest-x2 + 1x1 conv "deconvs" (not shifted, not gated). Output: (B*T, out_channels, H, W),
    no final activation (fact 9).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3, c4 = cfg.stage_channels
        d = cfg.decoder_width
        kw = dict(fold_div=cfg.shift_div_decoder, official_quirks=cfg.official_quirks,
                  leaky_slope=cfg.leaky_slope)
        self.conv_c2 = DecoderGatedConv(c2, d, 1, **kw)
        self.conv_c4 = DecoderGatedConv(c3, d, 1, **kw)
        self.deconv1 = UpConv(c4, d, 1, cfg.leaky_slope)
        self.conv9 = DecoderGatedConv(d, d, 3, **kw)
        self.deconv2 = UpConv(d, d, 1, cfg.leaky_slope)
        self.conv10 = DecoderGatedConv(d, d, 3, **kw)
        self.deconv3 = UpConv(d, d, 1, cfg.leaky_slope)
        self.conv11 = DecoderGatedConv(d, cfg.out_channels, 3, activation=False, **kw)

    def forward(
        self, feats: list[torch.Tensor], t: int, flows: FlowGuide = None, frame_chunk: int | None = None,
    ) -> torch.Tensor:
        """``feats`` = encoder output ``[x1, x2, x3, x4]``; the list is emptied so that each
        feature map is released once used. With ``frame_chunk`` (one clip, B = 1) the H/2 and H
        stages run ``frame_chunk`` frames at a time (:func:`chunked_gated_conv`, same result up
        to float rounding; bit-identical on the full model's parity fixture, tests/test_parity.py):
        at full resolution one frame of 256 channels is ~100 MB at 432x240."""
        x1, x2, x3, x4 = feats
        feats.clear()
        c4 = F.interpolate(self.conv_c4(x3, t, flows), scale_factor=2, mode="nearest")  # H/4
        del x3
        if frame_chunk is None:
            d1 = self.deconv1(x4) + c4
        else:  # frame by frame: x4 upsampled is 2048 channels at H/4 (~50 MB a frame at 432x240)
            d1 = torch.cat([self.deconv1(x4[f : f + 1]) for f in range(x4.shape[0])]).add_(c4)
        c9 = self.conv9(d1, t, flows)  # H/4
        del x4, c4, d1
        c2 = self.conv_c2(x2, t, flows)  # H/8, upsampled x4 to H/2 where it is added
        del x2
        if frame_chunk is None or c9.shape[0] != t:
            c10 = self.conv10(self.deconv2(c9) + F.interpolate(c2, scale_factor=4, mode="nearest"), t, flows)
            del c9, c2
            d3 = self.deconv3(c10) + F.interpolate(x1, scale_factor=4, mode="nearest")  # H
            del c10, x1
            return self.conv11(d3, t, flows)

        c10 = chunked_gated_conv(self.conv10, _frame_input(self.deconv2, c9, c2, 4), t, flows, frame_chunk)  # H/2
        del c9, c2
        return chunked_gated_conv(self.conv11, _frame_input(self.deconv3, c10, x1, 4), t, flows, frame_chunk)  # H


def _frame_input(up: UpConv, low: torch.Tensor, skip: torch.Tensor, factor: int) -> Callable[[int], torch.Tensor]:
    """``f -> up(low[f]) + skip[f]`` upsampled ``factor`` x (nearest): one frame of a decoder
    stage's input, ``(1, C, H, W)``."""
    return lambda f: up(low[f : f + 1]).add_(F.interpolate(skip[f : f + 1], scale_factor=factor, mode="nearest"))


def _pair_slice(flows: FlowGuide, lo: int, hi: int) -> FlowGuide:
    """The guide of frames ``[lo, hi)`` of one clip: pairs ``[lo, hi - 1)``, cached grids sliced."""
    if flows is None:
        return None
    sub: dict[str, Any] = {k: flows[k][lo : hi - 1] for k in ("forward", "backward", "forward_valid", "backward_valid")}
    sub["cache"] = {key: tuple(g[lo : hi - 1] for g in val) for key, val in flows.get("cache", {}).items()}
    return sub


def chunked_gated_conv(
    conv: DecoderGatedConv, make: Callable[[int], torch.Tensor], t: int, flows: FlowGuide, chunk: int,
) -> torch.Tensor:
    """``conv(cat([make(f) for f in range(t)]), t, flows)`` for one clip, ``chunk`` frames at a time.

    The shift of frame f reads frames f - 1 and f + 1 only, so each chunk is stacked with the
    frame before and after it and only its own frames are convolved; every input frame is made
    once and dropped when no later chunk needs it, and the frames are not stacked: the shift
    builds the chunk's own frames only (:meth:`DecoderGatedConv.forward_frames`). Same values as
    the whole stack up to float rounding (oneDNN may choose another kernel for another batch
    size; the flow grids are computed once for the clip and sliced); peak memory ~``chunk + 4``
    input frames.
    Returns ``(t, C_out, H, W)``.
    """
    inputs: dict[int, torch.Tensor] = {0: make(0)}
    if flows is not None:
        conv.featureConv.shift._grids(flows, *inputs[0].shape[-2:])
    outs = []
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        lo, hi = max(0, a - 1), min(t, b + 1)
        for f in range(lo, hi):
            if f not in inputs:
                inputs[f] = make(f)
        stack = [inputs[f] for f in range(lo, hi)]
        for f in [f for f in inputs if f < b - 1]:  # the next chunk reads frames b - 1 on only
            del inputs[f]
        outs.append(conv.forward_frames(stack, _pair_slice(flows, lo, hi), a - lo, b - lo))
        del stack
    return torch.cat(outs)


class CoarseNet(nn.Module):
    """Encoder + decoder (official ``CoarseNet``, networks.py:13-92)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.downsample_module = Encoder(cfg)
        self.upsample_module = UpSampleResNetSkipGated(cfg)

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None, frame_chunk: int | None = None) -> torch.Tensor:
        return self.upsample_module(self.downsample_module(x, t, flows), t, flows, frame_chunk)


class TSAMGenerator(nn.Module):
    """The TSAM video-inpainting generator.

    Build with a :class:`~tsam_cli.model.config.ModelConfig` (``FULL`` = official architecture,
    31,661,510 parameters; ``COMPACT`` = same design, small). Call ``.eval()`` before inference
    (BatchNorm uses running statistics, fact 13).
    """

    def __init__(self, config: ModelConfig = FULL) -> None:
        super().__init__()
        self.config = config
        self.coarse_net = CoarseNet(config)

    # convenient aliases (properties: they add no state_dict keys)
    @property
    def encoder(self) -> DilatedResNet:
        return self.coarse_net.downsample_module.base_model

    @property
    def decoder(self) -> UpSampleResNetSkipGated:
        return self.coarse_net.upsample_module

    def set_official_quirks(self, enabled: bool) -> None:
        """Switch every shift-and-align layer between clean and official behaviour."""
        for m in self.modules():
            if isinstance(m, ShiftAlign):
                m.official_quirks = bool(enabled)
        self.config = self.config.replace(official_quirks=bool(enabled))

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _flow_guide(flows: FlowsArg, b: int, t: int, like: torch.Tensor) -> FlowGuide:
        """Validate the public ``flows`` argument and build the internal guide dict."""
        if flows is None or t < 2:
            return None
        fwd, bwd, v_f, v_b = _flow_parts(flows)
        guide: dict[str, Any] = {"cache": {}}
        for name, tensor in (("forward", fwd), ("backward", bwd)):
            guide[name] = _guide_tensor(name, "flow", tensor, b, t, 2, like)
        for name, tensor, ref in (("forward_valid", v_f, "forward"), ("backward_valid", v_b, "backward")):
            if tensor is None:  # no validity given: every vector is trusted
                flow = guide[ref]
                guide[name] = flow.new_ones(flow.shape[0], 1, *flow.shape[-2:])
            else:
                guide[name] = _guide_tensor(name, "mask", tensor, b, t, 1, like)
        return guide

    def forward(
        self, frames: torch.Tensor, masks: torch.Tensor, flows: FlowsArg = None, *,
        clamp: bool = True, frame_chunk: int | None = None,
    ) -> torch.Tensor:
        """Inpaint a batch of clips.

        Args:
            frames: (B, T, 3, H, W) RGB in [0, 1] (no mean/std normalisation, fact 7).
                H and W must be multiples of 8 (fact 10); pad beforehand.
            masks: (B, T, 1, H, W), **1 = hole** (pixel to fill), 0 = known. Converted internally
                to the official polarity (1 = valid, fact 8). Fractions are allowed.
            flows: optional optical flow, in pixels at any resolution (resized per layer):
                a dict with keys ``forward`` (B, T-1, 2, Hf, Wf) = flow t -> t+1 on frame t,
                ``backward`` (B, T-1, 2, Hf, Wf) = flow t+1 -> t on frame t+1, and optional
                ``forward_valid`` / ``backward_valid`` (B, T-1, 1, Hf, Wf) in [0, 1], **1 = flow
                reliable** (default all ones); or a tuple in that order (2 or 4 items).
                Ignored when ``config.use_flow`` is False; ``None`` gives the gated-TSM network.
            clamp: clamp the predicted pixels to [0, 1] (as official inference, fact 9).
            frame_chunk: with one clip (B = 1), run the H/2 and full-resolution decoder stages
                this many frames at a time (same result up to float rounding, far less memory; see
                :meth:`UpSampleResNetSkipGated.forward`). None = the whole clip at once.

        Returns:
            (B, T, 3, H, W): ``frames * (1 - masks) + prediction * masks``; where ``masks == 0``
            the output equals the input exactly.
        """
        b, t, _, h, w = _check_inputs(frames, masks)
        guide = self._flow_guide(flows, b, t, frames) if self.config.use_flow else None

        masks = masks.to(frames.dtype)
        valid = 1.0 - masks  # official polarity: 1 = known (fact 8)
        masked = frames * valid  # video_inpainting_model.py:91
        parts = [masked, valid]
        if self.config.in_channels == 5:
            parts.append(torch.zeros_like(valid))  # guidance channel, zeros at inference (fact 6)
        inp = torch.cat(parts, dim=2).reshape(b * t, self.config.in_channels, h, w)

        del parts
        pred = self.coarse_net(inp, t, guide, frame_chunk).view(b, t, self.config.out_channels, h, w)
        if clamp:
            pred = pred.clamp(0.0, 1.0)
        return masked + pred * masks  # networks.py:85-92 composite


def _check_inputs(frames: torch.Tensor, masks: torch.Tensor) -> tuple[int, int, int, int, int]:
    """The shape ``(B, T, 3, H, W)`` of ``frames``, after checking it and the masks' ``(B, T, 1, H, W)``."""
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames must have shape (B, T, 3, H, W), got {tuple(frames.shape)}")
    b, t, c, h, w = frames.shape
    if tuple(masks.shape) != (b, t, 1, h, w):
        raise ValueError(f"masks must have shape (B, T, 1, H, W) = {(b, t, 1, h, w)}, got {tuple(masks.shape)}")
    if h % 8 or w % 8:
        raise ValueError(f"frame size {w}x{h} is not a multiple of 8: pad frames to a multiple of 8 first")
    if t < 1 or b < 1:
        raise ValueError("need at least one clip of one frame")
    return b, t, c, h, w


def _flow_parts(flows) -> list:
    """``flows`` (a mapping or a 2/4-sequence) -> ``[forward, backward, forward_valid, backward_valid]``."""
    if isinstance(flows, Mapping):
        unknown = set(flows) - {"forward", "backward", "forward_valid", "backward_valid"}
        if unknown:
            raise ValueError(f"unknown flow keys: {sorted(unknown)}")
        parts = [flows.get("forward"), flows.get("backward"), flows.get("forward_valid"), flows.get("backward_valid")]
    else:
        parts = list(flows)
        if len(parts) not in (2, 4):
            raise ValueError("flows must be (forward, backward[, forward_valid, backward_valid])")
        parts += [None] * (4 - len(parts))
    if parts[0] is None or parts[1] is None:
        raise ValueError("flows need both a forward and a backward flow")
    return parts


def _guide_tensor(name: str, kind: str, tensor, b: int, t: int, ch: int, like: torch.Tensor) -> torch.Tensor:
    """A ``(B, T-1, ch, H, W)`` flow or mask, checked, as ``(B*(T-1), ch, H, W)`` on ``like``'s device/dtype."""
    if tensor.dim() != 5 or tuple(tensor.shape[:3]) != (b, t - 1, ch):
        raise ValueError(f"{name} {kind} must have shape (B, T-1, {ch}, H, W) = ({b}, {t - 1}, {ch}, H, W), "
                         f"got {tuple(tensor.shape)}")
    return tensor.to(like.device, like.dtype).reshape(b * (t - 1), ch, *tensor.shape[-2:])
