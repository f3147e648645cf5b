"""The execution profiles: the local default and the SLURM one (snakemake-executor-plugin-slurm).

The SLURM profile is loaded by Snakemake itself in a dry run of a small workspace (the whole DAG
is planned up front, GPU rules included), so that the rules' resources can be read; the
plugin's own code turns them into sbatch arguments.
"""

from __future__ import annotations

import pytest
import yaml
from helpers.workflow import (REPO, SLURM_PROFILE, dry_run_resources, run_snakemake,
                              site_slurm_profile, write_config)

DEFAULT_PROFILE = REPO / "workflow/profiles/default"


def test_slurm_profile_settings():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["jobs"] >= 1
    defaults = profile["default-resources"]
    assert defaults["mem_mb"] > 0 and defaults["runtime"] > 0
    for rule in ("train", "predict_nearside", "predict_farside"):
        assert profile["set-resources"][rule]["cpus_per_gpu"] >= 1


def test_default_profile_is_local():
    profile = yaml.safe_load((DEFAULT_PROFILE / "config.yaml").read_text())
    assert "executor" not in profile and profile["rerun-incomplete"] is True


def test_workflow_profile_overrides_nothing_of_the_slurm_profile():
    """Snakemake loads workflow/profiles/default with every --profile, and each of its keys
    replaces the same key of the other profile: it must set nothing an execution profile sets
    differently (it once replaced the SLURM profile's default-resources, account and all)."""
    workflow = yaml.safe_load((DEFAULT_PROFILE / "config.yaml").read_text())
    slurm = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert not {"default-resources", "set-resources", "set-threads", "executor"} & set(workflow)
    assert {k: workflow[k] for k in set(workflow) & set(slurm)} == \
        {k: slurm[k] for k in set(workflow) & set(slurm)}


@pytest.fixture
def fetched_workspace(tmp_path):
    """A real-style config (fido, 1 day): the whole DAG is planned up front, GPU rules included."""
    # February 2011 is an evaluation month (dataset seed 0): near-side inference and evaluate
    config = {"start": "2011-02-01T00:00", "end": "2011-02-01T00:00",
              "fetch": {"source": "fido"},
              "farside": {"spacecraft": {"euvi_a": {"start": "2011-02-01T00:00",
                                                    "end": "2011-02-01T00:00"}}}}
    return tmp_path, write_config(tmp_path / "config.yaml", config)


def slurm_dry_run(workdir, configs):
    # the fixture's files have no Snakemake provenance: judge them by modification times only
    proc = run_snakemake(workdir, "-n", "--profile", SLURM_PROFILE, "--rerun-triggers", "mtime",
                         configfiles=configs)
    return proc.stdout + proc.stderr


def test_slurm_profile_gives_gpu_rules_their_gpus(fetched_workspace):
    workdir, config = fetched_workspace
    output = slurm_dry_run(workdir, [config])
    resources = dry_run_resources(output)
    assert {"train", "predict_farside", "fetch", "prepare"} <= set(resources)
    train = resources["train"]
    assert (train["gpu"], train["cpus_per_gpu"], train["mem_mb"], train["runtime"]) == \
        ("1", "8", "64000", "2880")
    assert (resources["predict_farside"]["gpu"], resources["predict_farside"]["cpus_per_gpu"]) == ("1", "4")
    for rule in ("fetch", "prepare"):
        assert resources[rule].get("gpu", "0") == "0"
        assert resources[rule]["mem_mb"] != "" and int(resources[rule]["runtime"]) > 0


def test_slurm_dry_run_prints_no_python_warning(fetched_workspace):
    """Snakemake's full default resources under the SLURM executor abandon a coroutine while the
    DAG is built (snakemake/snakemake#4280); the Snakefile silences exactly that warning."""
    workdir, config = fetched_workspace
    output = slurm_dry_run(workdir, [config])
    assert "This was a dry-run" in output
    assert "Warning:" not in output and "never awaited" not in output, output


def test_slurm_profile_site_settings_reach_the_planned_jobs(fetched_workspace, tmp_path):
    """The README's set-up: account and partitions filled into the SLURM profile; the dry run
    (with the workflow profile loaded too, as always) plans every job with them."""
    workdir, config = fetched_workspace
    profile = site_slurm_profile(tmp_path / "site", account="solar", cpu_partition="short",
                                 gpu_partition="gpu")
    proc = run_snakemake(workdir, "-n", "--profile", profile, "--rerun-triggers", "mtime",
                         configfiles=[config])
    output = proc.stdout + proc.stderr
    assert "workflow specific profile" in output  # the combination users get
    resources = dry_run_resources(output)
    train = resources["train"]
    assert {k: train.get(k) for k in ("slurm_account", "slurm_partition", "mem_mb", "runtime",
                                      "gpu", "cpus_per_gpu")} == \
        {"slurm_account": "solar", "slurm_partition": "gpu", "mem_mb": "64000",
         "runtime": "2880", "gpu": "1", "cpus_per_gpu": "8"}
    assert "cpus_per_task" not in train  # it would override cpus_per_gpu in the plugin
    for rule in ("fetch", "prepare", "manifest", "evaluate", "quicklook"):
        assert (resources[rule]["slurm_account"], resources[rule]["slurm_partition"]) == \
            ("solar", "short"), rule
    for rule in ("predict_nearside", "predict_farside"):
        assert (resources[rule]["slurm_account"], resources[rule]["slurm_partition"]) == \
            ("solar", "gpu"), rule


def test_slurm_profile_multi_gpu_training_uses_the_local_launcher(fetched_workspace, tmp_path):
    workdir, config = fetched_workspace
    gpus4 = write_config(tmp_path / "gpus4.yaml", {"training": {"gpus": 4}})
    output = slurm_dry_run(workdir, [config, gpus4])
    assert dry_run_resources(output)["train"]["gpu"] == "4"
    # one process per GPU, rendezvous on 127.0.0.1 (not torchrun --standalone: all interfaces)
    assert "python -m farside_gan.training.distributed --nproc-per-node=4 train" in output
    assert "torchrun" not in output


def test_slurm_profile_trains_on_several_hosts_with_a_task_per_gpu(fetched_workspace, tmp_path):
    """training.nodes: 2 hosts of 4 GPUs: the plugin asks Slurm for the two hosts, 8 GPUs and a
    task per GPU, and the job starts its 8 ranks itself with srun (an `mpi` job: the plugin runs
    its command on the first host as it is, not as one srun task)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    workdir, config = fetched_workspace
    nodes2 = write_config(tmp_path / "nodes2.yaml", {"training": {"gpus": 4, "nodes": 2}})
    output = slurm_dry_run(workdir, [config, nodes2])
    train = dry_run_resources(output)["train"]
    assert {k: train.get(k) for k in ("gpu", "nodes", "tasks", "tasks_per_gpu", "mpi",
                                      "cpus_per_gpu")} == \
        {"gpu": "8", "nodes": "2", "tasks": "8", "tasks_per_gpu": "1", "mpi": "srun",
         "cpus_per_gpu": "8"}
    assert ("python -m farside_gan.training.distributed --srun --nodes=2 --ntasks=8 --ntasks-per-gpu=1 "
            "--cpus-per-task=8 train ") in output
    job = _Job(**{k: int(v) if v.isdigit() else v for k, v in train.items()})
    job.threads = 16
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "train", "account": "",
              "partition": "", "workdir": "."}
    sbatch = get_submit_command(job, params) + set_gres_string(job)
    for flag in ("--nodes=2", "--ntasks-per-gpu=1", "--ntasks=8", "--cpus-per-gpu=8",
                 "--gpus=8", "--mem 64000"):
        assert f" {flag}" in sbatch, (flag, sbatch)


def test_cpu_training_asks_for_no_gpu(fetched_workspace, tmp_path):
    workdir, config = fetched_workspace
    cpu = write_config(tmp_path / "cpu.yaml", {"training": {"device": "cpu"}})
    resources = dry_run_resources(slurm_dry_run(workdir, [config, cpu]))
    assert resources["train"]["gpu"] == "0" and resources["predict_farside"]["gpu"] == "0"


class _Resources(dict):
    __getattr__ = dict.__getitem__


class _Job:
    def __init__(self, **resources):
        self.resources = _Resources(resources)


@pytest.mark.parametrize("resources, sbatch", [
    ({"gpu": 1}, " --gpus=1"),
    ({"gpu": 4, "gpu_model": "a100"}, " --gpus=a100:4"),
    ({"gpu": 0}, ""),
])
def test_plugin_turns_gpu_resources_into_sbatch_gpus(resources, sbatch):
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    assert set_gres_string(_Job(**resources)) == sbatch
