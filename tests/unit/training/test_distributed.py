"""Data-parallel training on CPU: two gloo processes must train exactly like one with both batches."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from farside_gan.training import distributed as fd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    # Instance norm is per sample, so sharding the batch leaves each sample's output unchanged.
    # (No bias before it: its gradient is rounding noise, which Adam would blow up to +-lr.)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.InstanceNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 1, 3, padding=1), torch.nn.Tanh())


def _batches(steps: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(batch, 3, 16, 16, generator=g), torch.rand(batch, 1, 16, 16, generator=g) * 2 - 1)
            for _ in range(steps)]


def _train(model, batches, ctx):
    model = fd.wrap_model(model, ctx)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.999))
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.l1_loss(model(x), y).backward()
        opt.step()
    return fd.unwrap_model(model)


def _worker(rank: int, world: int, port: int, result_dir: str, steps: int, per_rank: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with fd.distributed("cpu") as ctx:
        assert ctx.enabled and ctx.backend == "gloo" and ctx.rank == rank
        shards = [(x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank])
                  for x, y in _batches(steps, world * per_rank)]
        model = _train(_tiny_net(), shards, ctx)
        mean_rank = fd.all_reduce_mean(float(rank), ctx).item()
        picked = fd.broadcast_object({"from": rank}, ctx)
        fd.barrier(ctx)
        if ctx.is_main:
            torch.save({"state": model.state_dict(), "mean_rank": mean_rank, "picked": picked},
                       os.path.join(result_dir, "ddp.pt"))


def test_single_process_context_without_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = fd.init_distributed("cpu")
    assert (ctx.enabled, ctx.is_main, ctx.world_size, ctx.device) == (False, True, 1, torch.device("cpu"))
    model = _tiny_net()
    assert fd.wrap_model(model, ctx) is model
    assert fd.make_sampler(list(range(10)), ctx) is None
    assert fd.all_reduce_mean(3.0, ctx).item() == 3.0


def test_two_gloo_processes_match_one_process_with_combined_batch(tmp_path):
    steps, per_rank, world = 3, 2, 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path), steps, per_rank), nprocs=world,
             join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    assert ddp["mean_rank"] == pytest.approx(0.5)
    assert ddp["picked"] == {"from": 0}

    single = _train(_tiny_net(), _batches(steps, world * per_rank), fd.DistContext())
    untrained = _tiny_net().state_dict()
    for name, value in single.state_dict().items():
        # Same weights up to float32 rounding of the gradient average: this net's L1 gradients
        # (at least 2e-5, median 5e-3) stay far above Adam's eps (1e-8), so the average's
        # rounding (~1e-7 relative) changes no step by more than ~1e-7 of lr; rtol 1e-5 leaves
        # a margin of ~100. (The GAN's gradients reach eps: see the float64 test below.)
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-5, atol=1e-6)
        # ...and training really moved them (Adam steps of ~lr = 1e-2).
        assert (value - untrained[name]).abs().max() > 1e-3


TINY_GAN = dict(ngf=4, ndf=4, n_downsample=2, n_residual=1, log_every=1, preview_every=0,
                keep_every_epochs=0, progress=False, num_threads=1, epochs=2, epoch_decay=1)


def _float64_trainer(manifest, out_dir):
    """The real Trainer (the GAN's objective, DDP wrapping, single D pass under DDP) on float64
    networks: its rounding (1e-16) is too small for Adam to amplify into a visible difference."""
    from farside_gan.training import trainer
    from farside_gan.training.data import PairedFitsDataset

    build_float32 = trainer.build_networks
    trainer.build_networks = lambda config: tuple(n.double() for n in build_float32(config))
    try:
        # with the generator's weight average: each rank keeps its own, which must agree
        config = trainer.TrainConfig(**{**TINY_GAN, "batch_size": 1, "ema_decay": 0.5})
        return trainer.Trainer(config, PairedFitsDataset.from_manifest(manifest), out_dir,
                               device="cpu")
    finally:
        trainer.build_networks = build_float32


def _float64_batches(trainer, steps: int, per_step: int) -> list[dict]:
    items = [trainer.train_set[i] for i in range(steps * per_step)]
    return [{k: torch.stack([it[k] for it in items[s * per_step:(s + 1) * per_step]]).double()
             for k in ("input", "target")} for s in range(steps)]


def _gradients(trainer) -> dict:
    """Each network's gradient after a step: G's from its loss, D's from its own."""
    return {net: torch.cat([p.grad.flatten() for p in getattr(trainer, net).parameters()])
            for net in ("G", "D")}


def _float64_gan_steps(trainer, batches) -> dict:
    """Steps on ``batches``; the gradients of the first, the outputs of the generator and of
    its weight average after the last."""
    first = None
    for batch in batches:
        trainer.train_step(batch)
        first = first or _gradients(trainer)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)).double() * 2 - 1
    with torch.no_grad():
        output, average = trainer.G.eval()(x), trainer.ema.module(x)
    return {"gradients": first, "output": output, "average": average}


def _float64_gan_worker(rank: int, world: int, port: int, manifest: str, result_dir: str,
                        steps: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    trainer = _float64_trainer(manifest, os.path.join(result_dir, f"rank{rank}"))
    try:
        assert trainer.dist.enabled and trainer.single_d_pass
        shards = [{k: v[rank::world] for k, v in batch.items()}
                  for batch in _float64_batches(trainer, steps, world)]
        result = _float64_gan_steps(trainer, shards)
        torch.save(result, os.path.join(result_dir, "ddp.pt" if trainer.dist.is_main else
                                        f"rank{rank}.pt"))
    finally:
        fd.destroy_distributed()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_data_parallel_gan_step_in_float64_equals_one_process_with_both_batches(tmp_path,
                                                                               monkeypatch):
    """The claim behind data-parallel training, free of float32 rounding: two gloo ranks with
    one sample each average to exactly the gradients of one process with both samples (the
    GAN's losses, the single D pass DDP needs against the three passes of one process), and
    three steps later give the same generator and weight average, the same on every rank."""
    from helpers.model import write_manifest

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    manifest = write_manifest(tmp_path / "pairs", n_train=6, n_eval=1, n=64)
    steps, world = 3, 2
    mp.spawn(_float64_gan_worker, args=(world, _free_port(), str(manifest), str(tmp_path), steps),
             nprocs=world, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")

    def one_process(batches):
        trainer = _float64_trainer(manifest, tmp_path / "single")
        assert not trainer.dist.enabled and not trainer.single_d_pass
        return _float64_gan_steps(trainer, batches)

    batches = _float64_batches(_float64_trainer(manifest, tmp_path / "data"), steps, world)
    single = one_process(batches)
    # float64: eps 1.1e-16; a gradient is a sum over ~1e5 products per weight and the two
    # layouts add them in other orders, so 1e-10 leaves a margin of ~1000 over that rounding.
    # (In float32 the same runs differ by up to 3.4e-4 after 4 steps: Adam divides tiny
    # gradients by their own size, so a rounding difference can flip a step's sign.)
    tolerance = 1e-10
    print("float64 data-parallel vs one process:",
          *(f"{net} gradient {_relative(ddp['gradients'][net], single['gradients'][net]):.1e}"
            for net in ("G", "D")), f"output {_relative(ddp['output'], single['output']):.1e}")
    for net in ("G", "D"):
        assert _relative(ddp["gradients"][net], single["gradients"][net]) < tolerance, net
    assert _relative(ddp["output"], single["output"]) < tolerance
    assert _relative(ddp["average"], single["average"]) < tolerance
    assert _relative(ddp["average"], ddp["output"]) > 1e6 * tolerance  # an average, not G
    assert torch.equal(torch.load(tmp_path / "rank1.pt")["average"], ddp["average"])
    # Negative control: the same batches in another order fail the comparison by far.
    reordered = one_process(batches[::-1])
    assert _relative(reordered["gradients"]["G"], single["gradients"]["G"]) > 1e6 * tolerance
    assert _relative(reordered["output"], single["output"]) > 1e6 * tolerance


def _train_cli(manifest, out_dir, batch_size):
    from farside_gan.cli import main
    sets = [f"{k}={v}" for k, v in {**TINY_GAN, "batch_size": batch_size}.items()]
    args = ["train", "--manifest", str(manifest), "--out-dir", str(out_dir), "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0


def test_train_command_under_two_gloo_ranks_equals_one_process_with_batch_two(tmp_path):
    from helpers.model import assert_same_generator, other_sample_manifest, write_manifest

    from farside_gan.training.trainer import load_checkpoint
    manifest = write_manifest(tmp_path / "pairs", n_train=4, n_eval=1, n=64)
    # Exactly how the Snakemake train rule launches it on a host with 2 GPUs, here on CPU (gloo).
    sets = [a for k, v in {**TINY_GAN, "batch_size": 1}.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "farside_gan.training.distributed", "--nproc-per-node=2",
           "train", "--manifest", str(manifest), "--out-dir",
           str(tmp_path / "ddp"), "--device", "cpu", *sets]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data-parallel training: 2 processes, backend gloo" in done.stderr
    _train_cli(manifest, tmp_path / "single", batch_size=2)
    _train_cli(other_sample_manifest(manifest), tmp_path / "other_data", batch_size=2)

    ddp, single, other_data = (load_checkpoint(tmp_path / d / "generator.pt")
                              for d in ("ddp", "single", "other_data"))
    assert_same_generator(ddp, single, steps=4, other_data=other_data)  # 2 epochs x 2 steps of 2
    # Only rank 0 logs: one row per step, not two.
    rows = (tmp_path / "ddp" / "losses.csv").read_text().splitlines()
    assert len(rows) == 1 + 4


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_local_launcher_listens_on_loopback_only(tmp_path):
    """The train rule's launcher for several GPUs of one host: its store and the workers'
    sockets listen on 127.0.0.1 only (torchrun --standalone's listen on every interface)."""
    out = tmp_path / "listening.json"
    from helpers import TESTS
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "farside_gan.training.distributed", "--nproc-per-node=2",
                           "-m", "helpers.listen_probe", str(out)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    listening = json.loads(out.read_text())
    assert len(listening) >= 1 + 2  # the launcher's store and each gloo worker's
    assert all(a.startswith(("127.0.0.1:", "::1:")) for a in listening), listening


def test_local_launcher_stops_the_others_when_one_worker_fails(tmp_path):
    probe = tmp_path / "fail_one.py"
    probe.write_text("import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(3)\n"
                     "time.sleep(300)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "farside_gan.training.distributed", "--nproc-per-node=2",
                           "-m", "fail_one"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 3
    assert "worker 1 exited with status 3; stopping the others" in done.stderr


def test_sampler_gives_each_rank_a_disjoint_shard():
    data = list(range(10))
    shards = [list(fd.make_sampler(data, fd.DistContext(rank=r, world_size=2), seed=3))
              for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == data


# ------------------------------------------------------------ several hosts: srun inside Slurm

SRUN_TASK = {"SLURM_JOB_ID": "1234567", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
             "SLURM_NTASKS": "8", "SLURM_STEP_NODELIST": "gpu[07-08]"}


def test_slurm_task_environment_from_what_srun_sets():
    hosts = {"gpu[07-08]": "gpu07"}
    env = fd.slurm_task_environment(SRUN_TASK, first_host=hosts.__getitem__)
    # rank 0 (the first task on the first host) hosts the store at a port of the job's own
    assert env == {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "gpu07",
                   "MASTER_PORT": str(10000 + 1234567 % 20000)}
    assert 10000 <= int(env["MASTER_PORT"]) < 32768  # below Linux's ephemeral ports
    assert fd.slurm_task_environment({**SRUN_TASK, "MASTER_PORT": "29400"},
                                     first_host=hosts.__getitem__)["MASTER_PORT"] == "29400"
    with pytest.raises(RuntimeError, match="SLURM_PROCID, SLURM_STEP_NODELIST unset"):
        fd.slurm_task_environment({k: v for k, v in SRUN_TASK.items()
                                   if k not in ("SLURM_PROCID", "SLURM_STEP_NODELIST")})


@pytest.mark.skipif(not shutil.which("scontrol"), reason="needs Slurm's scontrol")
def test_first_host_expands_a_slurm_node_list():
    assert fd.first_host("gpu[07-08],cpu01") == "gpu07"


def test_srun_command_starts_one_rank_per_task():
    command = fd.srun_command(["train", "--device", "auto"], nodes=2, ntasks=8, cpus_per_task=8,
                              ntasks_per_gpu=1, python="/env/bin/python")
    assert command == ["srun", "--nodes=2", "--ntasks=8", "--ntasks-per-gpu=1",
                       "--cpus-per-task=8", "--kill-on-bad-exit=1", "/env/bin/python", "-m",
                       "farside_gan.training.distributed", "--slurm-task", "-m", "farside_gan", "train",
                       "--device", "auto"]
    cpu = fd.srun_command(["train"], nodes=2, ntasks=2, cpus_per_task=4, python="python")
    assert not [a for a in cpu if a.startswith("--ntasks-per-gpu")]


def test_srun_launcher_outside_a_slurm_job_says_what_it_needs(monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(SystemExit) as info:
        fd.main(["--srun", "--nodes=2", "--ntasks=8", "--ntasks-per-gpu=1", "train"])
    assert info.value.code == 2
    assert "SLURM_JOB_ID is unset: run the workflow with the SLURM executor" in \
        capsys.readouterr().err
    for var in SRUN_TASK:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit):
        fd.main(["--slurm-task", "train"])
    assert "not a task started by srun" in capsys.readouterr().err
