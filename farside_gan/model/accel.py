"""Fast generator inference on CUDA: bf16 autocast, optional channels-last and torch.compile.

On the CPU the generator runs unchanged in float32, so CPU results stay bit-identical.
Measured on an H100 at 1024 x 1024 (benchmarks/README.md): bf16 alone is what pays in eager
mode; channels-last pays only with torch.compile, whose 20-30 s of compilation pays back only
over many thousands of maps.
"""

from __future__ import annotations

import contextlib

import torch


class GeneratorRunner:
    """Call with a (B, C, N, N) float32 batch on the runner's device; returns float32 (B, 1, N, N)."""

    def __init__(self, G: torch.nn.Module, device: torch.device, precision: str = "auto",
                 channels_last: bool = False, compile: bool = False):
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        cuda = device.type == "cuda"
        self.bf16 = precision == "bf16" or (precision == "auto" and cuda)
        self.memory_format = torch.channels_last if cuda and channels_last else torch.contiguous_format
        self.G = G.to(device, memory_format=self.memory_format).eval()
        self.run = torch.compile(self.G) if cuda and compile else self.G

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        ctx = (torch.autocast(x.device.type, dtype=torch.bfloat16) if self.bf16
               else contextlib.nullcontext())
        with ctx:
            return self.run(x).float()
