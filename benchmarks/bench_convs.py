"""Per-layer timing of the few-channel convs: cuDNN's kernels against their GEMM forms.

The profile of the compiled training step (benchmarks/README.md, GPU speed) shows the
generator's 3->32 7x7 input conv and 32->1 7x7 output conv and the discriminators' 4-channel
input convs running on slow non-tensor-core cuDNN kernels. This times each of those layers at
its real shape (1024 px, generator batch 8, discriminator batch 16 = fake + real) in bf16:
forward alone (inference) and forward + backward (training), eager and torch.compile'd, as
cuDNN's conv (``nn.Conv2d``) and as ``farside_gan.model.accel.GemmConv2d``.

    python benchmarks/bench_convs.py                  # GPU, 1024 px
    python benchmarks/bench_convs.py --autotune       # also torch.compile(mode="max-autotune-no-cudagraphs")
    python benchmarks/bench_convs.py --tiny           # CPU smoke (64 px, eager only)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch
from torch import nn

from farside_gan.model.accel import GemmConv2d, gemm_route


def layers(size: int, batch: int):
    """(name, input shape, conv, input needs grad) at image size ``size`` (default architecture)."""
    d = size // 8 - 1  # the discriminator's last feature map before the score conv
    return [
        ("G in 3->32 k7", (batch, 3, size + 6, size + 6), nn.Conv2d(3, 32, 7), False),
        ("G out 32->1 k7", (batch, 32, size + 6, size + 6), nn.Conv2d(32, 1, 7), True),
        ("D0 in 4->64 k4s2", (2 * batch, 4, size, size), nn.Conv2d(4, 64, 4, 2, 1), True),
        ("D1 in 4->64 k4s2", (2 * batch, 4, size // 2, size // 2), nn.Conv2d(4, 64, 4, 2, 1), True),
        ("D0 score 512->1 k4", (2 * batch, 512, d, d), nn.Conv2d(512, 1, 4, 1, 1), True),
        ("D1 score 512->1 k4", (2 * batch, 512, d // 2, d // 2), nn.Conv2d(512, 1, 4, 1, 1), True),
    ]


def timed_ms(fn, cuda: bool, iters: int, windows: int = 3) -> float:
    results = []
    for _ in range(windows):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        if cuda:
            torch.cuda.synchronize()
        results.append((time.perf_counter() - t0) * 1e3 / iters)
    return statistics.median(results)


def bench_layer(conv: nn.Module, shape, needs_grad: bool, device, mode: str | None, iters: int,
                warmup: int) -> dict:
    cuda = device.type == "cuda"
    x = (torch.rand(shape, device=device) * 2 - 1).to(torch.bfloat16 if cuda else torch.float32)
    x.requires_grad_(needs_grad)
    run = conv if mode is None else torch.compile(conv, mode=None if mode == "default" else mode)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext())

    def forward():
        with torch.inference_mode(), autocast:
            run(x.detach())

    def train():
        with autocast:
            out = run(x)
        out.float().square().mean().backward()

    out = {}
    for name, fn in (("fwd_ms", forward), ("fwd_bwd_ms", train)):
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn()
        out[name.replace("ms", "warmup_s")] = time.perf_counter() - t0
        out[name] = timed_ms(fn, cuda, iters)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="CPU smoke size: 64 px, eager only")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--batch", type=int, default=8, help="generator batch (D sees twice this)")
    p.add_argument("--autotune", action="store_true",
                   help='add torch.compile(mode="max-autotune-no-cudagraphs") of the cuDNN conv')
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--only", default="", help="time only layers whose name contains this")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not a.tiny else "cpu")
    cuda = device.type == "cuda"
    size = a.size or (1024 if cuda else 64)
    batch = a.batch if cuda else 2
    iters = a.iters or (20 if cuda else 2)
    torch.backends.cudnn.benchmark = True
    modes = [None, "default"] if cuda else [None]
    rows = []
    print(f"device={torch.cuda.get_device_name() if cuda else 'cpu'} torch={torch.__version__} "
          f"size={size} batch={batch} bf16={cuda}", flush=True)
    for name, shape, conv, needs_grad in layers(size, batch):
        if a.only not in name:
            continue
        conv = conv.to(device)
        gemm = GemmConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          conv.padding).to(device)
        gemm.load_state_dict(conv.state_dict())
        variants = [("cudnn", conv, m) for m in modes] + [("gemm:" + str(gemm_route(gemm)), gemm, m)
                                                          for m in modes]
        if a.autotune and cuda:
            variants.append(("cudnn", conv, "max-autotune-no-cudagraphs"))
        for kind, module, mode in variants:
            res = bench_layer(module, shape, needs_grad, device, mode, iters, warmup=3)
            row = {"layer": name, "shape": list(shape), "kind": kind, "compile": mode or "eager", **res}
            rows.append(row)
            print(f"{name:22s} {kind:12s} {row['compile']:28s} fwd {res['fwd_ms']:8.3f} ms   "
                  f"fwd+bwd {res['fwd_bwd_ms']:8.3f} ms", flush=True)
            torch._dynamo.reset()
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
