"""Fast generator inference on CUDA: bf16 autocast, optional channels-last and torch.compile.

On the CPU the generator runs unchanged in float32, so CPU results stay bit-identical.
Measured on an H100 at 1024 x 1024 (benchmarks/README.md): bf16 alone is what pays in eager
mode; channels-last pays only with torch.compile, whose 20-30 s of compilation pays back only
over many thousands of maps.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

CHANNEL_ALIGNMENT = 8  # cuDNN's bf16 tensor-core kernels want channel counts divisible by 8


class AlignedConv2d(nn.Conv2d):
    """A Conv2d that, on CUDA, zero-pads its channel counts to a multiple of 8.

    Same parameters (the state dict does not change) and the same function: the extra input
    channels are zeros times zero weights and the extra outputs are dropped. It turns the
    3-channel 7x7 input conv, the 1-channel 7x7 output conv and the discriminators' 4-channel
    input and 1-channel score convs from cuDNN's slow "indexed"/non-tensor-core kernels
    into its tensor-core ones. On the CPU it is a plain Conv2d. Measured on an H100 it did
    not pay (the slow "indexed" kernels stayed; benchmarks/README.md), so it is off by default.
    """

    def pads(self, input: torch.Tensor) -> bool:
        return input.is_cuda and self.groups == 1 and self.padding_mode == "zeros"

    def _conv_forward(self, input, weight, bias):
        if not self.pads(input):
            return super()._conv_forward(input, weight, bias)
        cout, cin = weight.shape[:2]
        pad_in, pad_out = -cin % CHANNEL_ALIGNMENT, -cout % CHANNEL_ALIGNMENT
        if pad_in:
            input = F.pad(input, (0, 0, 0, 0, 0, pad_in))
        weight = F.pad(weight, (0, 0, 0, 0, 0, pad_in, 0, pad_out))
        if bias is not None and pad_out:
            bias = F.pad(bias, (0, pad_out))
        out = super()._conv_forward(input, weight, bias)
        return out[:, :cout] if pad_out else out


def align_conv_channels(module: nn.Module) -> int:
    """Make every Conv2d of ``module`` with unaligned channels an :class:`AlignedConv2d`.

    Changes only the class (parameters and state dict stay); returns how many convs changed.
    """
    changed = 0
    for m in module.modules():
        if type(m) is nn.Conv2d and m.groups == 1 and (m.in_channels % CHANNEL_ALIGNMENT or
                                                       m.out_channels % CHANNEL_ALIGNMENT):
            m.__class__ = AlignedConv2d
            changed += 1
    return changed


class GeneratorRunner:
    """Call with a (B, C, N, N) float32 batch on the runner's device; returns float32 (B, 1, N, N)."""

    def __init__(self, G: torch.nn.Module, device: torch.device, precision: str = "auto",
                 channels_last: bool = False, compile: bool = False, align_channels: bool = False):
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        cuda = device.type == "cuda"
        self.bf16 = precision == "bf16" or (precision == "auto" and cuda)
        self.memory_format = torch.channels_last if cuda and channels_last else torch.contiguous_format
        self.G = G.to(device, memory_format=self.memory_format).eval()
        if cuda and align_channels:
            align_conv_channels(self.G)
        self.run = torch.compile(self.G) if cuda and compile else self.G

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        ctx = (torch.autocast(x.device.type, dtype=torch.bfloat16) if self.bf16
               else contextlib.nullcontext())
        with ctx:
            return self.run(x).float()
