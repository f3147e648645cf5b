"""Pix2PixHD networks: the global generator and the multi-scale PatchGAN discriminator.

Architecture (docs/DESIGN.md, "The model"): with the defaults and 3 input channels the
generator has exactly 45,617,729 parameters and the two-scale discriminator (4-channel pairs)
5,531,522.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from farside_gan.core.header_checks import check_image_size_for_generator

NORMS = ("instance", "batch", "none")
PADDINGS = ("reflection", "replicate", "zero")


def norm_layer(kind: str):
    """Factory for the normalization layer after each conv (InstanceNorm without affine by default)."""
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def _pad(kind: str, size: int) -> tuple[list[nn.Module], int]:
    """Explicit padding layer(s) and the conv's own padding for a padding ``kind``."""
    if kind == "reflection":
        return [nn.ReflectionPad2d(size)], 0
    if kind == "replicate":
        return [nn.ReplicationPad2d(size)], 0
    if kind == "zero":
        return [], size
    raise ValueError(f"unknown padding {kind!r}; expected one of {PADDINGS}")


class ResidualBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, pad, conv3x3, norm)(x)."""

    def __init__(self, channels: int, norm: str = "instance", padding: str = "reflection"):
        super().__init__()
        Norm = norm_layer(norm)
        pad, p = _pad(padding, 1)
        self.block = nn.Sequential(
            *pad, nn.Conv2d(channels, channels, 3, padding=p), Norm(channels), nn.ReLU(True),
            *_pad(padding, 1)[0], nn.Conv2d(channels, channels, 3, padding=p), Norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class GlobalGenerator(nn.Module):
    """Encoder (7x7 conv + ``n_downsample`` stride-2 convs), residual blocks, decoder, 7x7 conv.

    Input sizes must be divisible by ``2 ** n_downsample``. The output is unbounded (no tanh,
    as in the reference implementation); targets live in [-1, 1] and inference clips to that range.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, ngf: int = 32,
                 n_downsample: int = 4, n_residual: int = 9, norm: str = "instance",
                 padding: str = "reflection"):
        super().__init__()
        self.n_downsample = n_downsample
        Norm = norm_layer(norm)
        pad3, p3 = _pad(padding, 3)
        layers: list[nn.Module] = [*pad3, nn.Conv2d(in_channels, ngf, 7, padding=p3),
                                   Norm(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_downsample):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), Norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm, padding) for _ in range(n_residual)]
        for _ in range(n_downsample):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       Norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [*_pad(padding, 3)[0], nn.Conv2d(ch, out_channels, 7, padding=p3)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for size in x.shape[-2:]:
            check_image_size_for_generator(size, self.n_downsample)
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN that returns the output of every block (for feature matching).

    Blocks: conv4 s2 -> ndf, LReLU; (n_layers - 1) x conv4 s2 doubling, norm, LReLU; conv4 s1
    doubling, norm, LReLU; conv4 s1 -> 1. The last list element is the patch score map.
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance"):
        super().__init__()
        Norm = norm_layer(norm)
        blocks = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                nn.LeakyReLU(0.2, True))]
        ch = ndf
        for _ in range(1, n_layers):
            blocks.append(nn.Sequential(nn.Conv2d(ch, min(ch * 2, 512), 4, stride=2, padding=1),
                                        Norm(min(ch * 2, 512)), nn.LeakyReLU(0.2, True)))
            ch = min(ch * 2, 512)
        blocks.append(nn.Sequential(nn.Conv2d(ch, min(ch * 2, 512), 4, stride=1, padding=1),
                                    Norm(min(ch * 2, 512)), nn.LeakyReLU(0.2, True)))
        ch = min(ch * 2, 512)
        blocks.append(nn.Sequential(nn.Conv2d(ch, 1, 4, stride=1, padding=1)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``n_D`` PatchGANs; scale k sees the pair average-pooled k times (3x3, stride 2, pad 1).

    ``forward`` returns one feature list per scale, finest first.
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_D: int = 2, n_layers: int = 3,
                 norm: str = "instance"):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers, norm)
                                    for _ in range(n_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outputs.append(disc(x))
        return outputs


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Conv weights ~ N(0, std) and conv biases 0; BatchNorm weights ~ N(1, std) (Pix2PixHD)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
