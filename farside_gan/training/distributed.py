"""Data-parallel training helpers: one process per GPU (or per CPU worker), and their launcher.

``python -m farside_gan.training.distributed --nproc-per-node=N train ...`` (:func:`launch_local`, what
the workflow's train rule runs on one host), ``... --srun --nodes=N --ntasks=T train ...`` (in a
Slurm job: one task per GPU on each of its hosts, :func:`srun_command` and
:func:`slurm_task_environment`) or torchrun set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins the process
group (NCCL on CUDA, gloo on CPU). Without them it returns a single-process context and nothing
else changes, so the same training code runs either way.

Why not ``torchrun --standalone``: its rendezvous and worker stores (c10d TCPStores) listen on
every network interface whatever address is given (``--rdzv-endpoint=localhost:0`` and
``--master-addr=127.0.0.1`` included, torch 2.13), so anyone on the network can reach a
single-node job's store. :func:`launch_local` hosts the store itself on a socket bound to
127.0.0.1 and keeps NCCL's and gloo's own sockets on the loopback interface. Several hosts must
meet over the network: there rank 0 hosts the store on the job's first host.

Only rank 0 writes checkpoints, logs at INFO level and shows progress bars; every rank sees a
disjoint shard of the data (:func:`make_sampler`) and gradients are averaged by
``DistributedDataParallel``, so N processes with batch B each train like one process with
batch N x B.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import signal
import socket
import subprocess
import sys
import time
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
        # One GPU per process, whatever index was given: the LOCAL_RANK-th of the host's GPUs, or
        # the only one this process sees (srun --ntasks-per-gpu binds each task to its GPU).
        dev = torch.device("cuda", local_rank if torch.cuda.device_count() > 1 else 0)
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


# ----------------------------------------------------------------------------- launcher

#: Seconds the other workers get to exit after one fails or the launcher is stopped.
STOP_GRACE_S = 30.0


def launch_local(nproc: int, argv: list[str], module: str = "farside_gan",
                 python: str = sys.executable) -> int:
    """Run ``python -m MODULE ARGV`` as ``nproc`` data-parallel processes on this host.

    The processes meet at a TCPStore this launcher hosts on 127.0.0.1 (they connect to it as
    torchelastic's agent store), and NCCL/gloo keep their sockets on the loopback interface
    (``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME``, unless set). When one process fails the
    others are stopped; the exit status is the first failure's (0 when all succeed).
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(max(128, nproc))
    port = listener.getsockname()[1]
    store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False,  # noqa: F841
                          master_listen_fd=listener.fileno(), use_libuv=True)
    base = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(nproc),
                LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK="0", TORCHELASTIC_USE_AGENT_STORE="True")
    for key in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        base.setdefault(key, "lo")
    workers = [subprocess.Popen([python, "-m", module, *argv],
                                env=dict(base, RANK=str(rank), LOCAL_RANK=str(rank)))
               for rank in range(nproc)]
    stopped = []

    def stop(signum, _frame):
        stopped.append(signum)
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        status = _wait_for(workers)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(workers)
        listener.close()
    if stopped:
        return 128 + stopped[0]
    return status


def _wait_for(workers) -> int:
    while True:
        codes = [w.poll() for w in workers]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            rank = next(i for i, c in enumerate(codes) if c not in (None, 0))
            log.error("worker %d exited with status %d; stopping the others", rank, failed[0])
            return failed[0]
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.2)


def _stop(workers) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for w in workers:
        try:
            w.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


# ----------------------------------------------------------------------------- several hosts

#: A Slurm job's rendezvous port when MASTER_PORT is not set: one per job id (two jobs whose first
#: host is the same meet at different ports), below Linux's ephemeral ports (32768 and up).
SLURM_PORT_BASE, SLURM_PORT_SPAN = 10000, 20000
#: What srun sets in each task, and :func:`slurm_task_environment` reads.
SLURM_TASK_VARIABLES = ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS")


def slurm_port(job_id: str | int) -> int:
    return SLURM_PORT_BASE + int(job_id) % SLURM_PORT_SPAN


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``gpu[07-08]`` -> ``gpu07``), as scontrol expands it."""
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                           text=True, check=True).stdout.split()
    if not hosts:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} named no host")
    return hosts[0]


def slurm_task_environment(environ, first_host=first_host) -> dict[str, str]:
    """torch.distributed's variables for this srun task: its rank among the step's tasks, its
    rank on its host, their number, and the rendezvous: rank 0 (the first task on the step's
    first host, srun's block distribution) hosts the store at MASTER_PORT (the environment's,
    else :func:`slurm_port` of the job id)."""
    missing = [v for v in SLURM_TASK_VARIABLES if v not in environ]
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_NODELIST")
    if not nodelist:
        missing.append("SLURM_STEP_NODELIST")
    if missing:
        raise RuntimeError(f"not a task started by srun: {', '.join(missing)} unset "
                           "(--slurm-task runs under srun; use --srun inside a Slurm job)")
    return {"RANK": environ["SLURM_PROCID"], "LOCAL_RANK": environ["SLURM_LOCALID"],
            "WORLD_SIZE": environ["SLURM_NTASKS"], "MASTER_ADDR": first_host(nodelist),
            "MASTER_PORT": environ.get("MASTER_PORT") or str(slurm_port(environ["SLURM_JOB_ID"]))}


def srun_command(argv: list[str], nodes: int, ntasks: int, cpus_per_task: int,
                 ntasks_per_gpu: int = 0, module: str = "farside_gan",
                 python: str = sys.executable) -> list[str]:
    """srun starting ``python -m MODULE ARGV`` as ``ntasks`` tasks on ``nodes`` hosts of this
    Slurm job, each task one rank (``ntasks_per_gpu``: tasks bound to each GPU; 0: a CPU job).
    One failed task ends the others (--kill-on-bad-exit)."""
    gpus = [f"--ntasks-per-gpu={ntasks_per_gpu}"] if ntasks_per_gpu else []
    return ["srun", f"--nodes={nodes}", f"--ntasks={ntasks}", *gpus,
            f"--cpus-per-task={cpus_per_task}", "--kill-on-bad-exit=1",
            python, "-m", "farside_gan.training.distributed", "--slurm-task", "-m", module, *argv]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m farside_gan.training.distributed",
        description="Run a farside-gan command as data-parallel processes: N on this host, their "
                    "rendezvous on 127.0.0.1 (--nproc-per-node=N train ...), or, inside a Slurm "
                    "job, one srun task per rank on the job's hosts (--srun --nodes=2 --ntasks=8 "
                    "--ntasks-per-gpu=1 train ...).")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--nproc-per-node", type=int, metavar="N")
    mode.add_argument("--srun", action="store_true",
                      help="start the ranks with srun, in the Slurm job this runs in")
    mode.add_argument("--slurm-task", action="store_true",
                      help="(what --srun starts) run as the rank srun made this task")
    slurm = parser.add_argument_group("--srun")
    slurm.add_argument("--nodes", type=int, default=1, metavar="N", help="hosts (default 1)")
    slurm.add_argument("--ntasks", type=int, metavar="T", help="ranks in all")
    slurm.add_argument("--ntasks-per-gpu", type=int, default=0, metavar="K",
                       help="ranks bound to each GPU (0: a CPU job; default 0)")
    slurm.add_argument("--cpus-per-task", type=int, default=1, metavar="C",
                       help="CPUs of each rank (default 1)")
    parser.add_argument("-m", "--module", default="farside_gan",
                        help="the module each process runs (default farside_gan)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments, e.g. train ...")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.slurm_task:
        try:
            env = dict(os.environ, **slurm_task_environment(os.environ))
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            parser.error(str(exc))
        os.execve(sys.executable, [sys.executable, "-m", args.module, *args.args], env)
    if args.srun:
        if "SLURM_JOB_ID" not in os.environ:
            parser.error("--srun starts the ranks in the Slurm job this runs in, but SLURM_JOB_ID "
                         "is unset: run the workflow with the SLURM executor "
                         "(--profile workflow/profiles/slurm)")
        if not args.ntasks or args.ntasks < 2 or not 1 <= args.nodes <= args.ntasks:
            parser.error("--srun needs --ntasks of at least 2 and --nodes from 1 to --ntasks")
        command = srun_command(args.args, args.nodes, args.ntasks, max(1, args.cpus_per_task),
                               args.ntasks_per_gpu, module=args.module)
        log.info("%s", " ".join(command))
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            parser.error(f"cannot run srun: {exc}")
    if args.nproc_per_node < 1:
        parser.error("--nproc-per-node must be at least 1")
    return launch_local(args.nproc_per_node, args.args, module=args.module)


if __name__ == "__main__":
    sys.exit(main())
