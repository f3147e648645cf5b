"""Exponential moving average of the generator's weights: the run's generator when
``training.ema_decay`` > 0.

After each generator step t (1, 2, ...): ``ema_1 = G_1`` and ``ema_t = decay x ema_(t-1) + (1 -
decay) x G_t`` (torch's ``get_ema_multi_avg_fn``, the update of ``torch.optim.swa_utils``), for
every parameter and floating-point buffer; integer buffers are copied. Starting from the first
step's weights, not the initial ones, keeps weights loaded before the first step (a pretrained
start) in the average. The average is a copy of the bare generator (never compiled or wrapped:
the wrappers share the bare module's parameters, which the update reads), on its device, in
float32 whatever the autocast; it adds no host synchronisation to a step. Under data-parallel
training every rank holds the same generator after its step, so every rank's average is the
same.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


class GeneratorAverage:
    """The moving average of ``generator``'s weights with ``decay`` in [0, 1) (0: a copy of
    the latest weights; training uses none then, ``ema_decay`` 0 being off)."""

    def __init__(self, generator: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"an average's decay must be in [0, 1), not {decay}")
        self.decay = decay
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)
        self._average = get_ema_multi_avg_fn(decay)

    @staticmethod
    def _tensors(module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(parameters and floating-point buffers, other buffers), in a fixed order."""
        floating = [p.detach() for p in module.parameters()]
        others = []
        for b in module.buffers():
            (floating if b.is_floating_point() else others).append(b)
        return floating, others

    @torch.no_grad()
    def update(self, generator: nn.Module, first: bool) -> None:
        """Average in ``generator``'s weights after a step; ``first``: the run's first step,
        whose weights the average starts from."""
        averaged, averaged_other = self._tensors(self.module)
        current, current_other = self._tensors(generator)
        if first:
            averaged_other, current_other = averaged + averaged_other, current + current_other
        else:
            self._average(averaged, current, None)
        for a, c in zip(averaged_other, current_other, strict=True):
            a.copy_(c)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
