"""Data-parallel training helpers: one process per GPU (or per CPU worker), launched by torchrun.

``torchrun --standalone --nproc_per_node=N -m farside_gan.cli train ...`` sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed`
reads them and joins the process group (NCCL on CUDA, gloo on CPU). Without them it returns a
single-process context and nothing else changes, so the same training code runs either way.

Only rank 0 writes checkpoints, logs at INFO level and shows progress bars; every rank sees a
disjoint shard of the data (:func:`make_sampler`) and gradients are averaged by
``DistributedDataParallel``, so N processes with batch B each train like one process with
batch N x B.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job. ``world_size == 1`` means not distributed."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment of a torchrun worker (or equivalent launcher) is present."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when CUDA is available, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(device)


def init_distributed(device: str | torch.device = "auto", timeout_s: float = 1800) -> DistContext:
    """Join the process group that torchrun describes, or return a single-process context.

    The backend follows the device: ``nccl`` for CUDA (each rank on GPU ``LOCAL_RANK``),
    ``gloo`` for CPU. Calling it again when the group already exists returns the same context.
    """
    if not launched_by_torchrun():
        return DistContext(device=resolve_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    world_size = int(os.environ["WORLD_SIZE"])
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)  # one GPU per process, whatever index was given
        # NVLink multicast (NVLS) can take shared GPUs out of service; it buys nothing for DDP.
        os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    ctx = DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=dev,
                      backend=backend)
    quiet_non_main_ranks(ctx)
    if ctx.is_main:
        log.info("data-parallel training: %d processes, backend %s", world_size, backend)
    return ctx


def destroy_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str | torch.device = "auto"):
    """``with distributed("auto") as ctx:`` joins the group for the block and always leaves it."""
    ctx = init_distributed(device)
    try:
        yield ctx
    finally:
        if ctx.enabled:
            destroy_distributed()


def quiet_non_main_ranks(ctx: DistContext) -> None:
    """Non-zero ranks log warnings and errors only, so the job log is not N copies of rank 0's."""
    if not ctx.is_main:
        logging.getLogger("farside_gan").setLevel(logging.WARNING)


def wrap_model(model: torch.nn.Module, ctx: DistContext, **ddp_kwargs) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when distributed; the plain module otherwise."""
    if not ctx.enabled:
        return model
    if ctx.device.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [ctx.device.index])
        ddp_kwargs.setdefault("output_device", ctx.device.index)
    # Gradients land straight in the communication buckets: one copy fewer per step.
    ddp_kwargs.setdefault("gradient_as_bucket_view", True)
    return torch.nn.parallel.DistributedDataParallel(model, **ddp_kwargs)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module under DDP and/or torch.compile wrappers (what checkpoints store)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def make_sampler(dataset, ctx: DistContext, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = True):
    """A DistributedSampler giving each rank a disjoint shard, or ``None`` when not distributed.

    Call ``sampler.set_epoch(epoch)`` each epoch so the shuffle differs between epochs.
    """
    if not ctx.enabled:
        return None
    return torch.utils.data.distributed.DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed,
        drop_last=drop_last)


def all_reduce_mean(value: torch.Tensor | float, ctx: DistContext) -> torch.Tensor:
    """Mean of ``value`` over all ranks (for logging losses); the value itself when single."""
    tensor = torch.as_tensor(value, dtype=torch.float64 if ctx.device.type == "cpu"
                             else torch.float32, device=ctx.device).clone()
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= ctx.world_size
    return tensor


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def broadcast_object(obj, ctx: DistContext, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (e.g. the resume step decided by rank 0)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def no_sync(model: torch.nn.Module):
    """DDP's ``no_sync`` (skip the gradient all-reduce, e.g. for accumulation), or a no-op."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def seed_offset(ctx: DistContext) -> int:
    """Add to per-rank RNG seeds (augmentation) so ranks don't draw identical transforms."""
    return ctx.rank
