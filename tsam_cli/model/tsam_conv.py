"""Temporal shift (TSM), temporal shift-and-align (TSAM) and the gated convolutions built on them.

Only ``nn.Module`` classes live here. Tensors inside the network are *frame-stacked*:
``(N, C, H, W)`` with ``N = B * T`` and frames of one clip contiguous (``n = b * T + t``); every
shift module also receives ``t`` (= T, the clip length) to recover ``(B, T, C, H, W)``.

Flow guidance is a plain ``dict`` built once per forward pass by the generator
(:meth:`tsam_cli.model.generator.TSAMGenerator.forward`) with frame-stacked tensors::

    {"forward":        (B*(T-1), 2, Hf, Wf)  flow t -> t+1 on frame t's grid, pixels (dx, dy)
     "backward":       (B*(T-1), 2, Hf, Wf)  flow t+1 -> t on frame t+1's grid, pixels
     "forward_valid":  (B*(T-1), 1, Hf, Wf)  validity of "forward", 1 = reliable, in [0, 1]
     "backward_valid": (B*(T-1), 1, Hf, Wf)  validity of "backward", 1 = reliable
     "cache":          {}                    per-resolution grids, filled lazily}

Shift direction (docs/official-checkpoint.md fact 31, official temporal_shift.py:106-113): channels ``[0, f)`` of
frame t are taken from frame **t+1** (sampled at ``p + forward[t](p)``), channels ``[f, 2f)``
from frame **t-1** (sampled at ``p + backward[t-1](p)``); the rest are untouched. (The paper's
Eq. 3 labels the groups the other way round; we follow the official code, which the weights
were trained with.) Clip ends have
no neighbour and get zeros (fact 34; the same zero padding as TSM, so that the module reduces
exactly to TSM without flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

FlowGuide = dict[str, Any] | None


class TemporalShift(nn.Module):
    """Plain TSM shift (paper §3.2), zero padded at the clip ends.

    ``fold = C // fold_div``. Output channels ``[0, fold)`` of frame t come from frame t+1,
    ``[fold, 2*fold)`` from frame t-1, the rest from frame t. Frame T-1 gets zeros in the first
    group and frame 0 in the second (official ``GatedTemporalShift.shift``, temporal_shift.py:39-55,
    and the in-place ``tsm`` of tsm_utils.py, which shifts the same way; fact 35).
    No parameters.
    """

    def __init__(self, fold_div: int) -> None:
        super().__init__()
        self.fold_div = int(fold_div)

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}"

    def fold(self, channels: int) -> int:
        return channels // self.fold_div

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> torch.Tensor:
        """x: (B*t, C, H, W) -> (B*t, C, H, W). ``flows`` is ignored."""
        n, c, h, w = x.shape
        fold = self.fold(c)
        if fold == 0:
            return x
        x5 = x.view(n // t, t, c, h, w)
        zeros = x5.new_zeros(n // t, 1, fold, h, w)
        from_next = torch.cat([x5[:, 1:, :fold], zeros], dim=1)
        from_prev = torch.cat([zeros, x5[:, :-1, fold : 2 * fold]], dim=1)
        out = torch.cat([from_next, from_prev, x5[:, :, 2 * fold :]], dim=2)
        return out.view(n, c, h, w)


class ShiftAlign(TemporalShift):
    """TSAM temporal shift-and-align (paper §3.3, Eq. 3-4; Fig. 3c). No parameters.

    Without flow (``flows is None``) this *is* :class:`TemporalShift`.

    With flow, the two shifted channel groups are warped onto frame t's grid with bilinear
    ``grid_sample``; flows are resized (nearest) to the feature size and their vectors scaled by
    the size ratio (fact 30; official ``resize_flow``, visual_helper.py:116-125); validity masks are
    resized nearest.

    Clean behaviour (``official_quirks=False``, the default):
        * sample position = ``p + flow(p)`` exactly (``align_corners=True`` normalisation), so a
          zero flow is the identity warp and an integer flow moves features by whole pixels;
        * Eq. 4 blend ``X = w * warped + (1 - w) * shifted``, where ``shifted`` is the plain TSM
          result (the neighbour's unwarped channels) and ``w = v * inside``: ``v`` is the given
          validity (1 = reliable, used as is, fractions allowed) and ``inside`` is 0 where the
          sample falls outside the frame. Hence ``v = 0`` gives exactly TSM.

    Official behaviour (``official_quirks=True``; facts 32-34, temporal_shift.py:99-113):
        * grid = ``linspace(-1, 1)`` base + ``flow * 2 / W`` (``flow_to_grid``,
          visual_helper.py:138-152) sampled with ``align_corners=False`` and zero padding, so a
          zero flow is *not* the identity (fact 32);
        * the fallback mask is ``m = int(clamp((1 - v) + [sum of warped group == 0], 0, 1))``
          (fractions truncate to 0, fact 33); where ``m = 1`` frame t keeps its **own** unshifted
          channels, elsewhere it takes the warped ones;
        * the zero test of the t-1 group uses the t+1 group's warped features
          (temporal_shift.py:109 bug, fact 33);
        * clip ends are zeros (fact 34) - as in clean mode.
    """

    def __init__(self, fold_div: int, official_quirks: bool = False) -> None:
        super().__init__(fold_div)
        self.official_quirks = bool(official_quirks)

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}, official_quirks={self.official_quirks}"

    # ------------------------------------------------------------------ grids
    @staticmethod
    def _resize_flow(flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Nearest resize of a (N, 2, Hf, Wf) pixel flow to (h, w), vectors scaled (fact 28/30)."""
        fh, fw = flow.shape[-2:]
        out = F.interpolate(flow, size=(h, w), mode="nearest")
        # exactly as the official resize_flow (visual_helper.py:116-125): ``flow * w / fw`` left
        # to right, also at equal size (``x * w / w`` is not always x in fp32). With
        # ``flow * (w / fw)``, or no rescale at equal size, fp32 outputs differ by up to 6e-5
        # on the parity fixture (tests/test_parity.py, docs/benchmarks.md)
        return torch.cat([out[:, :1] * w / fw, out[:, 1:] * h / fh], dim=1)

    @staticmethod
    def _resize_mask(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if mask.shape[-2:] == (h, w):
            return mask
        return F.interpolate(mask, size=(h, w), mode="nearest")

    @staticmethod
    def _clean_grid(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampling grid (N, h, w, 2) for align_corners=True and an in-frame mask (N, 1, h, w)."""
        n, _, h, w = flow.shape
        ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
        xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
        sx = xs + flow[:, 0]
        sy = ys + flow[:, 1]
        inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
        gx = sx * (2.0 / max(w - 1, 1)) - 1.0
        gy = sy * (2.0 / max(h - 1, 1)) - 1.0
        return torch.stack([gx, gy], dim=-1), inside.unsqueeze(1).to(flow.dtype)

    @staticmethod
    def _official_grid(flow: torch.Tensor) -> torch.Tensor:
        """``flow_to_grid`` of the official code (visual_helper.py:138-152), as (N, h, w, 2)."""
        n, _, h, w = flow.shape
        base_y = torch.linspace(-1.0, 1.0, h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
        base_x = torch.linspace(-1.0, 1.0, w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
        gx = base_x + flow[:, 0] / float(w) * 2.0
        gy = base_y + flow[:, 1] / float(h) * 2.0
        return torch.stack([gx, gy], dim=-1)

    def _grids(self, flows: dict[str, Any], h: int, w: int) -> tuple[torch.Tensor, ...]:
        """Per-resolution grids and blend masks, cached in ``flows["cache"]``."""
        cache = flows.setdefault("cache", {})
        key = (h, w, self.official_quirks)
        hit = cache.get(key)
        if hit is not None:
            return hit
        fwd = self._resize_flow(flows["forward"], h, w)
        bwd = self._resize_flow(flows["backward"], h, w)
        v_f = self._resize_mask(flows["forward_valid"], h, w)
        v_b = self._resize_mask(flows["backward_valid"], h, w)
        if self.official_quirks:
            # official flowmask: 1 = unreliable (fact 33) = 1 - our validity
            res = (self._official_grid(fwd), 1.0 - v_f, self._official_grid(bwd), 1.0 - v_b)
        else:
            g_f, in_f = self._clean_grid(fwd)
            g_b, in_b = self._clean_grid(bwd)
            res = (g_f, v_f * in_f, g_b, v_b * in_b)
        cache[key] = res
        return res

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> torch.Tensor:
        """x: (B*t, C, H, W) features; flows: guide dict (module docstring) or None.

        Returns (B*t, C, H, W).
        """
        n, c, h, w = x.shape
        fold = self.fold(c)
        if flows is None or t < 2 or fold == 0:
            return super().forward(x, t)
        b = n // t
        x5 = x.view(b, t, c, h, w)
        g_f, m_f, g_b, m_b = self._grids(flows, h, w)
        align = not self.official_quirks  # official: default align_corners=False (fact 32)

        nxt = x5[:, 1:, :fold]  # frame t+1's group A, for t = 0..T-2
        prv = x5[:, :-1, fold : 2 * fold]  # frame t-1's group B, for t = 1..T-1
        warped_a = F.grid_sample(
            nxt.reshape(b * (t - 1), fold, h, w), g_f, mode="bilinear",
            padding_mode="zeros", align_corners=align,
        ).view(b, t - 1, fold, h, w)
        warped_b = F.grid_sample(
            prv.reshape(b * (t - 1), fold, h, w), g_b, mode="bilinear",
            padding_mode="zeros", align_corners=align,
        ).view(b, t - 1, fold, h, w)
        m_f = m_f.view(b, t - 1, 1, h, w)
        m_b = m_b.view(b, t - 1, 1, h, w)

        if self.official_quirks:
            # fact 33: clamp(flowmask + [sum == 0]).int(); the t-1 branch tests warped_a too.
            empty = (warped_a.sum(dim=2, keepdim=True) == 0).to(x.dtype)
            keep_a = torch.clamp(m_f + empty, 0, 1).int().to(x.dtype)
            keep_b = torch.clamp(m_b + empty, 0, 1).int().to(x.dtype)
            group_a = warped_a * (1 - keep_a) + keep_a * x5[:, :-1, :fold]
            group_b = warped_b * (1 - keep_b) + keep_b * x5[:, 1:, fold : 2 * fold]
        else:
            # paper Eq. 4 with the TSM result as the unaligned fallback
            group_a = m_f * warped_a + (1 - m_f) * nxt
            group_b = m_b * warped_b + (1 - m_b) * prv

        zeros = x5.new_zeros(b, 1, fold, h, w)  # clip ends (fact 34)
        out = torch.cat(
            [
                torch.cat([group_a, zeros], dim=1),
                torch.cat([zeros, group_b], dim=1),
                x5[:, :, 2 * fold :],
            ],
            dim=2,
        )
        return out.view(n, c, h, w)

    # ------------------------------------------------------------------ kept frames only
    def shift_frames(self, frames: Sequence[torch.Tensor], flows: FlowGuide, a: int, b: int) -> torch.Tensor:
        """The shift of frames ``[a, b)`` only, of one clip (B = 1) given as its ``(1, C, H, W)``
        frames: ``self(torch.cat(frames), len(frames), flows)[a:b]`` with the same values (the same
        ops per pair of frames), but no stack of whole frames is made, only the kept frames are
        built and only the shifted channel groups of their neighbours are read.

        Frame f's group A comes from pair f (frame f + 1 warped by ``forward[f]``), its group B
        from pair f - 1 (frame f - 1 warped by ``backward[f - 1]``); with the official quirks the
        zero test of group B reads the group-A warp of pair f - 1 (fact 33), so that is made too.
        Returns ``(b - a, C, H, W)``.
        """
        t = len(frames)
        _, c, h, w = frames[0].shape
        fold = self.fold(c)
        own = frames[a] if b - a == 1 else torch.cat(list(frames[a:b]))
        if fold == 0:
            return own
        zeros = own.new_zeros(1, fold, h, w)  # clip ends (fact 34)
        grp_a, grp_b = slice(0, fold), slice(fold, 2 * fold)
        pa, pb = (a, min(b, t - 1)), (max(a, 1) - 1, b - 1)  # pairs read by groups A and B

        def cat(f_range, group):
            return torch.cat([frames[f][:, group] for f in f_range])

        if flows is None or t < 2:
            parts_a = [cat(range(pa[0] + 1, pa[1] + 1), grp_a)] if pa[1] > pa[0] else []
            parts_b = [cat(range(*pb), grp_b)] if pb[1] > pb[0] else []
        else:
            parts_a, parts_b = self._aligned_groups(frames, flows, pa, pb, cat, (grp_a, grp_b))
        parts_a += [zeros] if b == t else []
        parts_b = ([zeros] if a == 0 else []) + parts_b
        return torch.cat([torch.cat(parts_a), torch.cat(parts_b), own[:, 2 * fold :]], dim=1)

    def _aligned_groups(self, frames, flows, pa, pb, cat, groups):
        """Warped-and-blended group A of pairs ``pa`` and group B of pairs ``pb`` (``(lo, hi)``
        pair ranges) for :meth:`shift_frames`, each a list of one ``(n, fold, H, W)`` tensor
        (empty for an empty range); the same ops as :meth:`forward`."""
        grp_a, grp_b = groups
        h, w = frames[0].shape[-2:]
        g_f, m_f, g_b, m_b = self._grids(flows, h, w)
        align = not self.official_quirks
        quirks = self.official_quirks

        def warp(f_range, group, grid, lo, hi):
            return F.grid_sample(cat(f_range, group), grid[lo:hi], mode="bilinear",
                                 padding_mode="zeros", align_corners=align)

        wa = (min(pa[0], pb[0]), max(pa[1], pb[1])) if quirks else pa  # pairs whose A warp is read
        warped_a = warp(range(wa[0] + 1, wa[1] + 1), grp_a, g_f, *wa) if wa[1] > wa[0] else None
        if quirks and warped_a is not None:
            empty = (warped_a.sum(dim=1, keepdim=True) == 0).to(warped_a.dtype)
        parts_a, parts_b = [], []
        if pa[1] > pa[0]:
            wa_a = warped_a[pa[0] - wa[0] : pa[1] - wa[0]]
            if quirks:
                keep = torch.clamp(m_f[pa[0] : pa[1]] + empty[pa[0] - wa[0] : pa[1] - wa[0]], 0, 1)
                keep = keep.int().to(wa_a.dtype)
                parts_a.append(wa_a * (1 - keep) + keep * cat(range(*pa), grp_a))
            else:
                m = m_f[pa[0] : pa[1]]
                parts_a.append(m * wa_a + (1 - m) * cat(range(pa[0] + 1, pa[1] + 1), grp_a))
        if pb[1] > pb[0]:
            warped_b = warp(range(*pb), grp_b, g_b, *pb)
            if quirks:
                keep = torch.clamp(m_b[pb[0] : pb[1]] + empty[pb[0] - wa[0] : pb[1] - wa[0]], 0, 1)
                keep = keep.int().to(warped_b.dtype)
                parts_b.append(warped_b * (1 - keep) + keep * cat(range(pb[0] + 1, pb[1] + 1), grp_b))
            else:
                m = m_b[pb[0] : pb[1]]
                parts_b.append(m * warped_b + (1 - m) * cat(range(*pb), grp_b))
        return parts_a, parts_b


class EncoderGatedShiftConv(nn.Module):
    """Gated TSAM 1x1 conv replacing every bottleneck conv1 of the encoder (facts 14-15).

    ``out = sigmoid(gating_conv(xs)) * net(xs)`` with ``xs = ShiftAlign(x)``: in the encoder the
    gate sees the **shifted** input (official ``FlowGatedTemporalShift.forward``,
    temporal_shift.py:74-77). Both convs are bias-free; BN and ReLU follow in the bottleneck.
    Keys: ``net.weight``, ``gating_conv.weight`` (as the official ``conv1.net`` /
    ``conv1.gating_conv``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, fold_div: int = 8,
        official_quirks: bool = False, kernel_size: int = 1,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.net = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.gating_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.shift = ShiftAlign(fold_div, official_quirks)

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> torch.Tensor:
        xs = self.shift(x, t, flows)
        if torch.is_grad_enabled():
            return torch.sigmoid(self.gating_conv(xs)) * self.net(xs)
        gate = self.gating_conv(xs)  # inference: the same ops, in place on the fresh outputs
        feature = self.net(xs)
        del xs
        return torch.sigmoid_(gate).mul_(feature)


class FrameConv(nn.Module):
    """A per-frame 2-D conv kept as ``.layer`` (official ``NN3Dby2D.Conv3d``, blocks.py:131-147).

    The official temporal kernel/stride/padding are dropped (fact 16); the official wrapper's
    spectral norm is ineffective in the forward pass (fact 23), so none is applied here.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        padding: int = 0, bias: bool = True,
    ) -> None:
        super().__init__()
        self.layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class ShiftFrameConv(FrameConv):
    """``FrameConv`` preceded by a (flow-aligned) temporal shift (official ``NN3Dby2DTSM.Conv3d``,
    blocks.py:160-188). ``flows=None`` gives the plain TSM conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        padding: int = 0, bias: bool = True, fold_div: int = 4, official_quirks: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias)
        self.shift = ShiftAlign(fold_div, official_quirks)

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None) -> torch.Tensor:  # type: ignore[override]
        return self.layer(self.shift(x, t, flows))


class DecoderGatedConv(nn.Module):
    """Decoder gated TSAM conv (official ``GatedConv`` with ``conv_by='2dtsm'``; facts 19-20).

    ``out = sigmoid(gatingConv(x)) * act(featureConv(shift(x)))``: only the feature branch is
    shifted, the gate sees the **unshifted** x (blocks.py:286-311). ``act`` is LeakyReLU(0.2), or
    nothing for conv11. Keys: ``featureConv.layer.{weight,bias}``, ``gatingConv.layer.{weight,bias}``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, fold_div: int = 4,
        official_quirks: bool = False, activation: bool = True, leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.featureConv = ShiftFrameConv(
            in_channels, out_channels, kernel_size, padding=pad, fold_div=fold_div,
            official_quirks=official_quirks,
        )
        self.gatingConv = FrameConv(in_channels, out_channels, kernel_size, padding=pad)
        self.activation = activation
        self.leaky_slope = leaky_slope

    def forward(self, x: torch.Tensor, t: int, flows: FlowGuide = None, keep: slice | None = None) -> torch.Tensor:
        """x: (B*t, C, H, W) -> (B*t, C_out, H, W); with ``keep`` (B = 1), only frames ``x[keep]``
        are convolved (the shift still reads their neighbours in x): (len(keep), C_out, H, W)."""
        if keep is None:
            gate = torch.sigmoid(self.gatingConv(x))
            feature = self.featureConv(x, t, flows)
        else:
            shifted = self.featureConv.shift(x, t, flows)[keep]
            gate = torch.sigmoid(self.gatingConv(x[keep]))
            feature = self.featureConv.layer(shifted)
            del shifted
        if self.activation:
            feature = F.leaky_relu(feature, self.leaky_slope)
        return gate * feature

    def forward_frames(self, frames: Sequence[torch.Tensor], flows: FlowGuide, a: int, b: int) -> torch.Tensor:
        """``self(torch.cat(frames), len(frames), flows, keep=slice(a, b))`` (one clip, B = 1,
        frames ``(1, C, H, W)``) with the same values, without stacking the frames: the shift is
        built for the kept frames only (:meth:`ShiftAlign.shift_frames`); in place where no
        gradient is recorded. Returns ``(b - a, C_out, H, W)``."""
        if torch.is_grad_enabled():
            return self.forward(torch.cat(list(frames)), len(frames), flows, keep=slice(a, b))
        shifted = self.featureConv.shift.shift_frames(frames, flows, a, b)
        feature = self.featureConv.layer(shifted)
        del shifted
        own = frames[a] if b - a == 1 else torch.cat(list(frames[a:b]))
        gate = self.gatingConv(own)
        del own
        if self.activation:
            F.leaky_relu(feature, self.leaky_slope, inplace=True)
        return torch.sigmoid_(gate).mul_(feature)


class ConvAct(nn.Module):
    """Non-gated, non-shifted per-frame conv + LeakyReLU (official ``VanillaConv`` with
    ``conv_by='2d'``). Key: ``featureConv.layer.{weight,bias}``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.featureConv = FrameConv(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.leaky_slope = leaky_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place on the fresh conv output when no gradient is recorded (saves one tensor)
        return F.leaky_relu(self.featureConv(x), self.leaky_slope, inplace=not torch.is_grad_enabled())


class UpConv(nn.Module):
    """"Deconv" block: nearest x2 upsampling then :class:`ConvAct` (official ``VanillaDeconv``,
    blocks.py:273; fact 18: no transposed conv). Key prefix ``conv.``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, leaky_slope: float = 0.2,
        scale_factor: int = 2,
    ) -> None:
        super().__init__()
        self.conv = ConvAct(in_channels, out_channels, kernel_size, leaky_slope)
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (conv then upsample would be the same sum on 4x fewer pixels, but oneDNN then picks
        # another kernel: 1.9e-5 off the official outputs in fp32, so the official order stays)
        return self.conv(F.interpolate(x, scale_factor=self.scale_factor, mode="nearest"))
