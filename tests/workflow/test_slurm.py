"""Submit workflow jobs to a real Slurm through the SLURM profile (skipped without Slurm).

`.ci/start-slurm` starts a single-node Slurm (Debian's slurm-wlm 22.05) on localhost, with a
`gpu` partition and one (pretend) GPU. One test runs the first stages of a tiny config
(synthetic archive, one HMI fetch batch, its preparation) as sbatch jobs and checks their
outputs and what Slurm was asked for; another submits the train job through the profile as a
user sets it up (account, partitions) and reads back from Slurm what it got; a third trains on
two srun tasks, as on several hosts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from helpers.workflow import (MANIFEST, MODEL_DIR, REPO, TINY_MODEL, TINY_TRAINING, TRAIN_LOG,
                              run_snakemake, site_slurm_profile, train_workspace, write_config)


def slurm_node_up() -> bool:
    if not (shutil.which("sbatch") and shutil.which("sinfo")):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return proc.returncode == 0 and any(s.strip() in ("idle", "mix") for s in proc.stdout.split())


pytestmark = pytest.mark.skipif(not slurm_node_up(),
                                reason="no Slurm node up (start one with .ci/start-slurm)")

T = "20110131T0000"
# localhost Slurm has no accounting database: job status from squeue, short waits; its one node
# has this machine's CPUs, so no job may ask for more (prepare asks for 4: on a 2-CPU machine it
# would pend for ever, Reason=PartitionConfig)
LOCAL_SLURM = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks",
               "1", "--seconds-between-status-checks", "2", "--latency-wait", "5",
               "--max-threads", str(os.cpu_count()))


def slurm_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as {key: value}."""
    info = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                          text=True, check=True).stdout
    return dict(item.split("=", 1) for item in info.split() if "=" in item)


def test_slurm_profile_runs_jobs_through_sbatch(tmp_path):
    config = write_config(tmp_path / "config.yaml", {
        "start": "2011-01-31T00:00", "end": "2011-01-31T12:00",
        "synthetic": {"enabled": True, "size": 64, "euvi_size": 64, "seed": 0},
        "fetch": {"source": "local", "euvi_source": "local", "archive": "data/archive",
                  "batch": "day"},
        "image": {"size": 64, "rsun_px": 28.125},
        "training": {"device": "cpu", "gpus": 0},
        "farside": {"spacecraft": {}},
    })
    # localhost Slurm has no accounting database: no account
    proc = run_snakemake(tmp_path, "--profile", REPO / "workflow/profiles/slurm",
                         "--slurm-no-account", *LOCAL_SLURM, "data/prepared/hmi/20110131",
                         configfiles=[config], timeout=600)
    output = proc.stdout + proc.stderr
    # log paths: slurm_logs/rule_<rule>/... or, for the profile's job groups, group_<group>_<rules>/
    job_ids = {name: jid for jid, name in re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: \S+/slurm_logs/(?:rule|group)_(\w+)/",
        output)}
    assert set(job_ids) == {"synth_archive", "fetch", "prepare"}

    record = json.loads((tmp_path / f"data/raw/hmi/20110131/magnetogram/{T}/record.json").read_text())
    assert record["status"] == "ok"
    prepared = json.loads((tmp_path / "data/prepared/hmi/20110131/records.json").read_text())
    assert [e["status"] for e in prepared["times"]] == ["ok", "ok"]
    assert (tmp_path / f"data/prepared/hmi/20110131/targets/{T}.fits").stat().st_size > 64 * 64 * 4

    # what Slurm ran: completed jobs with the profile's and the rules' resources
    for rule, jid in job_ids.items():
        info = subprocess.run(["scontrol", "show", "job", "-o", jid], capture_output=True,
                              text=True).stdout
        assert "JobState=COMPLETED" in info, info
        if rule == "fetch":  # runtime 480 min from the profile, mem_mb 2000 from the rule
            assert "TimeLimit=08:00:00" in info and "MinMemoryNode=2000M" in info, info


def train_job(workdir, profile, config) -> dict[str, str]:
    """Run the train rule through ``profile`` on the localhost Slurm: its one job's record."""
    proc = run_snakemake(workdir, "--profile", profile, "--allowed-rules", "train",
                         *LOCAL_SLURM, MODEL_DIR / "generator.pt", configfiles=[config],
                         timeout=600)
    [job_id] = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
    return slurm_job(job_id)


def test_slurm_profile_site_settings_reach_sbatch(tmp_path):
    """The profile as the README says to set it up, the workflow profile loaded with it as
    always: the train job reaches Slurm with the account, the GPU partition, the memory, the
    time limit and the GPU asked for (the job itself runs on the CPU: no CUDA here)."""
    config = train_workspace(tmp_path, {"device": "auto", "gpus": 1, "max_steps": 4})
    # the site's values; memory, time and CPUs per GPU small enough for this one-node cluster
    profile = site_slurm_profile(tmp_path / "site", account="farside-test",
                                 cpu_partition="debug", gpu_partition="gpu",
                                 train={"mem_mb": 1500, "runtime": 7, "cpus_per_gpu": 1})
    job = train_job(tmp_path, profile, config)
    assert job["JobState"] == "COMPLETED", job
    assert (job["Account"], job["Partition"], job["TimeLimit"], job["MinMemoryNode"]) == \
        ("farside-test", "gpu", "00:07:00", "1500M"), job
    assert job["TresPerJob"] == "gres:gpu:1" and job["CpusPerTres"] == "gres:gpu:1", job
    assert (tmp_path / MODEL_DIR / "generator.pt").stat().st_size > 0


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])
def test_training_on_two_slurm_tasks_equals_one_process_with_both_batches(tmp_path, threads):
    """Training as on several hosts: the profile asks for two tasks (the plugin's `tasks`,
    `tasks_per_gpu` and `mpi`, which training.nodes > 1 sets), the job starts a rank in each with
    srun and they meet at the job's first host. Here the two tasks share the one-node cluster's
    pretend GPU and train on the CPU with gloo, one sample a step each: the same generator as one
    process with two samples a step (within float32 rounding as Adam amplifies it, with 1 and 2
    threads a task), and not the generator of one process with one of the samples replaced."""
    from helpers.model import assert_same_generator, other_sample_manifest

    from farside_gan.cli import main
    from farside_gan.config.training import WORKFLOW_KEYS
    from farside_gan.training.trainer import load_checkpoint

    # no augmentation: each rank draws its own, which one process cannot reproduce
    training = {"device": "auto", "gpus": 1, "epochs": 2, "epoch_decay": 1, "max_steps": 0,
                "augment_rotation_deg": 0.0, "num_threads": threads}
    config = train_workspace(tmp_path, training)
    profile = site_slurm_profile(
        tmp_path / "site", account="farside-test", cpu_partition="debug", gpu_partition="gpu",
        train={"mem_mb": 1500, "runtime": 7, "cpus_per_gpu": 2, "tasks": 2, "tasks_per_gpu": 2,
               "mpi": "srun"})
    job = train_job(tmp_path, profile, config)
    assert job["JobState"] == "COMPLETED", job
    assert (job["NumTasks"], job["TresPerJob"], job["Partition"]) == ("2", "gres:gpu:1", "gpu"), job
    log = (tmp_path / TRAIN_LOG).read_text()
    assert "srun --nodes=1 --ntasks=2 --ntasks-per-gpu=2 --cpus-per-task=1 " in log, log
    assert "data-parallel training: 2 processes, backend gloo" in log, log
    # Only rank 0 logs: one row per step (2 epochs x 2 steps of one sample per rank).
    assert len((tmp_path / MODEL_DIR / "losses.csv").read_text().splitlines()) == 1 + 4

    settings = {**TINY_MODEL, **TINY_TRAINING, **training, "batch_size": 2}
    sets = [a for key, value in settings.items() if key not in WORKFLOW_KEYS
            for a in ("--set", f"{key}={value}")]
    manifest = tmp_path / MANIFEST
    for out, pairs in (("single", manifest), ("other_data", other_sample_manifest(manifest))):
        assert main(["train", "--manifest", str(pairs), "--out-dir", str(tmp_path / out),
                     "--device", "cpu", *sets]) == 0
    single, other_data = (load_checkpoint(tmp_path / out / "generator.pt")
                         for out in ("single", "other_data"))
    assert_same_generator(load_checkpoint(tmp_path / MODEL_DIR / "generator.pt"), single,
                          steps=4, other_data=other_data)
