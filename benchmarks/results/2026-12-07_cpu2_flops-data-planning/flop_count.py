"""FLOPs of one training step and one generated map at 1024 px, default architecture.

Counted by torch.utils.flop_counter on the CPU at 256 px (batch 1, the plain fp32 step with its
three discriminator passes) and scaled by the pixel count. Run from the repository root:

    python benchmarks/results/2026-12-07_cpu2_flops-data-planning/flop_count.py
"""

import sys
import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, "benchmarks")
from bench_gpu import DEFAULT_SHAPE, config_for, make_trainer

SIZE = 256

torch.set_num_threads(2)
config = config_for(DEFAULT_SHAPE, batch_size=1)
with tempfile.TemporaryDirectory() as workdir:
    trainer = make_trainer(config, "cpu", workdir)
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    y = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        trainer.G(x)
    infer = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        trainer.train_step({"input": x, "target": y})
    train = counter.get_total_flops()
scale = (1024 / SIZE) ** 2
print(f"at {SIZE}px: infer {infer / 1e12:.4f} TFLOP, train step {train / 1e12:.4f} TFLOP")
print(f"scaled to 1024: infer {infer * scale / 1e12:.3f} TFLOP/map, "
      f"train {train * scale / 1e12:.3f} TFLOP/sample")
