"""ResUNet2 family: fully convolutional, stride-1 dense descriptors.

State-dict compatible with open-ucn (same parameter names and shapes), so its
published checkpoints load directly::

    model = build_model("ResUNetBN2F", n_out=32).eval()
    desc = model(gray)   # gray: B x 1 x H x W in [-0.5, 0.5] -> B x C x H x W, unit norm over C
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


NORM_MODES = ("running", "per-image")


class Norm2d(nn.BatchNorm2d):
    """BatchNorm2d (same parameters and buffers, so open-ucn's state dicts load) that can
    also normalise every image by its own statistics.

    ``per_image=False``: ordinary batch norm (batch statistics in training, running
    statistics in eval), as open-ucn's published models expect.
    ``per_image=True``: each image is normalised over its own H x W, in training and in
    inference alike (instance norm with the batch-norm affine). A model trained this way
    runs identically at any batch size and never depends on running statistics gathered
    over training crops.
    """

    per_image: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_image:
            return super().forward(x)
        if x.shape[0] == 1:
            # One image (inference): its own statistics are the batch's, so batch norm with batch
            # statistics (and no running buffers to update) gives the same numbers as
            # instance_norm. It also keeps channels-last and bf16 inputs as they are, where
            # instance_norm reshapes to (1, B*C, H, W) and casts to fp32: two copies per layer,
            # a third of the whole bf16 forward pass on the CPU.
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        if x.is_contiguous():
            # Group norm with one group per channel is instance norm with the batch-norm affine; its
            # CPU kernel keeps bf16 as it is and ran the bf16 training step (two images, forward +
            # backward) 1.2-1.4x faster than instance_norm at 160-256 px.
            return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)
        # Channels-last (where group norm's CPU kernel is slow): instance_norm over (B, C, H, W).
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity shortcut (channels unchanged)."""

    def __init__(self, channels: int, bn_momentum: float = 0.05) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = Norm2d(channels, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = Norm2d(channels, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


def _crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop the top-left of an upsampled map to the skip connection's size."""
    return x[:, :, : like.shape[2], : like.shape[3]]


class ResUNet2(nn.Module):
    """Residual U-Net with 4 scales (strides 1, 2, 4, 8) and a stride-1 output.

    Subclasses set CHANNELS / TR_CHANNELS (index 1..4; index 0 unused, as in open-ucn).
    Input:  B x in_channels x H x W, any H, W >= 1.
    Output: B x out_channels x H x W, L2-normalised over channels when normalize_feature.
    """

    CHANNELS: ClassVar[tuple[int, ...]] = (0, 32, 64, 128, 256)
    TR_CHANNELS: ClassVar[tuple[int, ...]] = (0, 32, 64, 64, 128)

    # Under bf16/fp16 autocast, run the full-resolution layers in fp32: the first stage
    # (whose output is also the skip connection into the head) and the 1x1 head. They are
    # ~6 % of the FLOPs; in bf16 they round the input image and the last activations to
    # 8 bits, which on the sample pairs turned ~5 % of the matches to another, near-tied
    # pixel (~2 % with them in fp32). Off by default (training keeps plain autocast);
    # extract_features switches it on.
    fp32_full_resolution: bool = False

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 32,
        bn_momentum: float = 0.05,
        normalize_feature: bool = True,
    ) -> None:
        super().__init__()
        c, t = self.CHANNELS, self.TR_CHANNELS
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize_feature = normalize_feature
        self.norm_mode = "running"

        def down(cin: int, cout: int, stride: int) -> tuple[nn.Module, nn.Module, nn.Module]:
            return (
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                Norm2d(cout, momentum=bn_momentum),
                nn.Sequential(BasicBlock(cout, bn_momentum)),
            )

        def up(cin: int, cout: int) -> tuple[nn.Module, nn.Module, nn.Module]:
            return (
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=0, bias=False),
                Norm2d(cout, momentum=bn_momentum),
                nn.Sequential(BasicBlock(cout, bn_momentum)),
            )

        self.conv1, self.norm1, self.blocks1 = down(in_channels, c[1], 1)
        self.conv2, self.norm2, self.blocks2 = down(c[1], c[2], 2)
        self.conv3, self.norm3, self.blocks3 = down(c[2], c[3], 2)
        self.conv4, self.norm4, self.blocks4 = down(c[3], c[4], 2)

        self.conv4_tr, self.norm4_tr, self.blocks4_tr = up(c[4], t[4])
        self.conv3_tr, self.norm3_tr, self.blocks3_tr = up(c[3] + t[4], t[3])
        self.conv2_tr, self.norm2_tr, self.blocks2_tr = up(c[2] + t[3], t[2])
        self.conv1_tr = nn.Conv2d(c[1] + t[2], t[1], 1, bias=False)
        self.final = nn.Conv2d(t[1], out_channels, 1, bias=True)

    def set_norm(self, mode: str) -> ResUNet2:
        """'running' (batch norm as trained with large batches) or 'per-image' (see Norm2d)."""
        if mode not in NORM_MODES:
            raise ValueError(f"unknown normalisation {mode!r}; known: {', '.join(NORM_MODES)}")
        self.norm_mode = mode
        for m in self.modules():
            if isinstance(m, Norm2d):
                m.per_image = mode == "per-image"
        return self

    @staticmethod
    def _stage(conv: nn.Module, norm: nn.Module, blocks: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # conv -> BN -> ReLU -> residual block; the block ends in a ReLU itself.
        return blocks(F.relu(norm(conv(x))))

    def _full_precision(self, x: torch.Tensor) -> AbstractContextManager:
        if self.fp32_full_resolution and torch.is_autocast_enabled(x.device.type):
            return torch.autocast(x.device.type, enabled=False)
        return nullcontext()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._full_precision(x):
            s1 = self._stage(self.conv1, self.norm1, self.blocks1, x)  # stride 1
        s2 = self._stage(self.conv2, self.norm2, self.blocks2, s1)  # stride 2
        s4 = self._stage(self.conv3, self.norm3, self.blocks3, s2)  # stride 4
        s8 = self._stage(self.conv4, self.norm4, self.blocks4, s4)  # stride 8

        out = self._stage(self.conv4_tr, self.norm4_tr, self.blocks4_tr, s8)
        out = self._stage(self.conv3_tr, self.norm3_tr, self.blocks3_tr, torch.cat((_crop_to(out, s4), s4), 1))
        out = self._stage(self.conv2_tr, self.norm2_tr, self.blocks2_tr, torch.cat((_crop_to(out, s2), s2), 1))
        with self._full_precision(x):
            out = F.relu(self.conv1_tr(torch.cat((_crop_to(out, s1).to(s1.dtype), s1), 1)))
            out = self.final(out).float()  # a no-op in fp32; under autocast the norm is taken in fp32
        if self.normalize_feature:
            # out / (|out| + 1e-8), written as a sum of squares and a product with the reciprocal:
            # torch.norm over the channels of an NCHW map and a broadcast division's backward were
            # 5x and 2x slower on the CPU (a 2 x 32 x 256 x 256 map: 33 -> 15 ms forward + backward).
            out = out * (out.square().sum(1, keepdim=True).sqrt() + 1e-8).reciprocal()
        return out


class ResUNetBN2(ResUNet2):
    CHANNELS = (0, 32, 64, 128, 256)
    TR_CHANNELS = (0, 32, 64, 64, 128)


class ResUNetBN2C(ResUNet2):
    CHANNELS = (0, 32, 64, 128, 256)
    TR_CHANNELS = (0, 64, 64, 64, 128)


class ResUNetBN2D2(ResUNet2):
    """The architecture of open-ucn's published YFCC model (64-dim output)."""

    CHANNELS = (0, 32, 64, 128, 256)
    TR_CHANNELS = (0, 128, 128, 128, 128)


class ResUNetBN2F(ResUNet2):
    """The light variant: ~5x fewer FLOPs than BN2D2, interactive on a CPU."""

    CHANNELS = (0, 16, 32, 64, 128)
    TR_CHANNELS = (0, 16, 32, 64, 128)


ARCHITECTURES: dict[str, type[ResUNet2]] = {
    cls.__name__: cls for cls in (ResUNetBN2, ResUNetBN2C, ResUNetBN2D2, ResUNetBN2F)
}


def build_model(arch: str, n_out: int, in_channels: int = 1, bn_momentum: float = 0.05, norm: str = "running") -> ResUNet2:
    """Instantiate an architecture by its open-ucn class name, with the given normalisation mode."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return cls(in_channels=in_channels, out_channels=n_out, bn_momentum=bn_momentum).set_norm(norm)
